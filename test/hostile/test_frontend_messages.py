"""Frontend messages say what is actually wrong: a FIFO as external data is not "missing", a
negative dimension is not "dynamic", block_size=0 is not a ZeroDivisionError."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from test.hostile.conftest import assert_one_line_error, run_lutc


def _compile(path, out, timeout=300):
    return run_lutc("compile", path, "-o", out, "--emit", "c", timeout=timeout)


def test_external_data_fifo(tmp_path):
    w = numpy_helper.from_array(np.ones((64, 32), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 32])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, location="w.bin",
              size_threshold=0)
    os.unlink(tmp_path / "w.bin")
    os.mkfifo(tmp_path / "w.bin")  # opening it would block forever
    assert_one_line_error(_compile(tmp_path / "m.onnx", tmp_path / "o"), "w.bin",
                          "not a regular file")


def test_negative_dimension_is_not_dynamic(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-8, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-8, 64])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    line = assert_one_line_error(_compile(path, tmp_path / "o"), "-8", "axis 0")
    assert "dynamic" not in line


def test_negative_shape_option(mlp_path, tmp_path):
    proc = run_lutc("compile", mlp_path, "-o", tmp_path / "o", "--emit", "c",
                    "--shape", "x=-2x64")
    assert_one_line_error(proc, "positive")


def test_matmulnbits_block_size_zero(tmp_path):
    k, n = 64, 32
    b = numpy_helper.from_array(np.zeros((n, 2, 16), np.uint8), "B")
    s = numpy_helper.from_array(np.ones((n * 2,), np.float32), "scales")
    node = helper.make_node("MatMulNBits", ["x", "B", "scales"], ["y"], domain="com.microsoft",
                            K=k, N=n, bits=4, block_size=0, name="mm")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, n])], [b, s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    line = assert_one_line_error(_compile(path, tmp_path / "o"), "block_size", "got 0")
    assert "ZeroDivision" not in line


def test_non_finite_linear_weight_is_named(tmp_path):
    """A MatMul weight with a NaN (with or without --weights) is one line naming the node, not
    a model whose outputs are silently NaN or whose quantizer masks the value."""
    w = np.ones((64, 32), np.float32)
    w[3, 5] = np.nan
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 32])],
        [numpy_helper.from_array(w, "proj_weight")])
    graph.node[0].input[1] = "proj_weight"
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    for extra in ((), ("--weights", "w4g32")):
        proc = run_lutc("compile", path, "-o", tmp_path / "o", "--emit", "c", *extra)
        assert_one_line_error(proc, "'proj'", "weight 'proj_weight' has non-finite values")
