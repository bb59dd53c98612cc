"""The size caps as `lutc compile` options (issue 11.17): `--max-tensor-elements N` sets the per-tensor
cap (LUTC_MAX_TENSOR_ELEMENTS, default 2^32) and `--max-model-bytes N` the cap on weights plus
activation arena (LUTC_MAX_MODEL_BYTES, default 2^36); each lowers and raises its cap, the option
wins over the variable, and going over is one `lutc: error:` line naming the node or the largest
weight and the size."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lutc.compiler.model_size import DEFAULT_MAX_MODEL_BYTES, check_compiled_model
from test.hostile.conftest import assert_one_line_error, run_lutc

F = TensorProto.FLOAT


def _expand_model(path, rows=64, cols=64):
    """x[1, cols] expanded to [rows, cols]: no weights, one [rows, cols] activation."""
    s = numpy_helper.from_array(np.array([rows, cols], np.int64), "s")
    graph = helper.make_graph([helper.make_node("Expand", ["x", "s"], ["y"], name="ex")], "g",
                              [helper.make_tensor_value_info("x", F, [1, cols])],
                              [helper.make_tensor_value_info("y", F, [rows, cols])], [s])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _matmul_model(path):
    """x[2, 32] @ w[32, 16]: one 2048-byte weight."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((32, 16)).astype(
        np.float32), "w")  # not ternary: it stays a float weight
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", F, [2, 32])],
                              [helper.make_tensor_value_info("y", F, [2, 16])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _compile(path, out, *extra, env=None):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LUTC_MAX_TENSOR_ELEMENTS", "LUTC_MAX_MODEL_BYTES")}
    return run_lutc("compile", path, "-o", out, "--emit", "c", *extra, timeout=300,
                    env={**clean, **(env or {})})


def test_max_tensor_elements_lowers_and_raises_the_cap(tmp_path):
    path = _expand_model(tmp_path / "m.onnx")
    assert_one_line_error(_compile(path, tmp_path / "a", "--max-tensor-elements", "1000"),
                          "Expand node 'ex'", "[64, 64] = 4096 elements", "limit of 1000",
                          "--max-tensor-elements")
    proc = _compile(path, tmp_path / "b", "--max-tensor-elements", "4096")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the option wins over the variable, both ways
    proc = _compile(path, tmp_path / "c", "--max-tensor-elements", "5000",
                    env={"LUTC_MAX_TENSOR_ELEMENTS": "1000"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_one_line_error(_compile(path, tmp_path / "d", "--max-tensor-elements", "4095",
                                   env={"LUTC_MAX_TENSOR_ELEMENTS": str(2**40)}),
                          "Expand node 'ex'", "limit of 4095")


def test_max_model_bytes_counts_the_weights(tmp_path):
    path = _matmul_model(tmp_path / "m.onnx")
    line = assert_one_line_error(_compile(path, tmp_path / "a", "--max-model-bytes", "2000"),
                                 "imported weights", "limit of 2000 bytes",
                                 "largest weight is 'w.weight' [16, 32] (2048 bytes)", "--max-model-bytes")
    assert "the model needs 2048 bytes (2 KiB: imported weights)" in line, line
    proc = _compile(path, tmp_path / "b", "--max-model-bytes", "100000",
                    env={"LUTC_MAX_MODEL_BYTES": "100"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_one_line_error(_compile(path, tmp_path / "c", env={"LUTC_MAX_MODEL_BYTES": "100"}),
                          "limit of 100 bytes", "LUTC_MAX_MODEL_BYTES")


def test_max_model_bytes_counts_the_activation_arena(tmp_path):
    """No weights at all, a 16 KiB activation: caught after C is emitted, before cc runs."""
    path = _expand_model(tmp_path / "m.onnx")
    line = assert_one_line_error(_compile(path, tmp_path / "a", "--max-model-bytes", "10000"),
                                 "activation arena", "limit of 10000 bytes")
    arena = int(line.split("activation arena ")[1].split(")")[0])
    assert arena >= 64 * 64 * 4, line
    assert not (tmp_path / "a").exists()  # nothing published
    proc = _compile(path, tmp_path / "b", "--max-model-bytes", str(arena + 1000))
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_default_model_cap_is_2_to_the_36():
    assert DEFAULT_MAX_MODEL_BYTES == 2**36
    check_compiled_model(2**35, 2**35, {})  # exactly at the cap: allowed


def test_bad_option_values_are_refused_by_the_parser(tmp_path):
    path = _expand_model(tmp_path / "m.onnx")
    for flag in ("--max-tensor-elements", "--max-model-bytes"):
        for bad in ("0", "-5", "lots"):
            proc = _compile(path, tmp_path / "a", flag, bad)
            assert_one_line_error(proc, f"{flag}: expected a positive integer, got '{bad}'",
                                  prefix="lutc compile: error: ")
