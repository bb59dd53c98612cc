"""Model data is validated at import (issue 11.6): an initializer whose data does not fit its
declared shape, and tensors over the per-tensor element cap (2^32, LUTC_MAX_TENSOR_ELEMENTS),
are one-line errors naming the initializer / input / node and the size."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from test.hostile.conftest import assert_one_line_error, run_lutc

F = TensorProto.FLOAT


def _save(path, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs], list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _compile(path, out, *extra, env=None):
    return run_lutc("compile", path, "-o", out, "--emit", "c", *extra, timeout=300,
                    env={**os.environ, **(env or {})})


def test_initializer_data_shorter_than_its_shape(tmp_path):
    for data in ({"raw_data": np.ones(10, np.float32).tobytes()}, {"float_data": [1.0] * 10}):
        w = TensorProto(name="w", data_type=F, dims=[32, 16], **data)
        path = _save(tmp_path / "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])],
                     [("x", F, [2, 32])], [("y", F, [2, 16])], [w])
        assert_one_line_error(_compile(path, tmp_path / "o"), "initializer 'w'", "[32, 16]",
                              "512 elements")


def test_huge_input_is_refused(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                 [("x", F, [1, 2**40])], [("y", F, [1, 2**40])])
    assert_one_line_error(_compile(path, tmp_path / "o"), "input 'x'", "1099511627776 elements",
                          "LUTC_MAX_TENSOR_ELEMENTS")


def test_huge_shape_option_is_refused(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                 [("x", F, ["n", 64])], [("y", F, ["n", 64])])
    assert_one_line_error(_compile(path, tmp_path / "o", "--shape", "x=4294967296x64"),
                          "input 'x'", "[4294967296, 64]")


def test_huge_expand_names_the_node(tmp_path):
    s = numpy_helper.from_array(np.array([2**20, 2**20], np.int64), "s")
    path = _save(tmp_path / "m.onnx", [helper.make_node("Expand", ["x", "s"], ["y"], name="ex")],
                 [("x", F, [1, 1])], [("y", F, [2**20, 2**20])], [s])
    assert_one_line_error(_compile(path, tmp_path / "o"), "Expand node 'ex'",
                          "[1048576, 1048576]")


def test_cap_is_an_option(tmp_path):
    s = numpy_helper.from_array(np.array([64, 64], np.int64), "s")
    path = _save(tmp_path / "m.onnx", [helper.make_node("Expand", ["x", "s"], ["y"], name="ex")],
                 [("x", F, [1, 64])], [("y", F, [64, 64])], [s])
    assert _compile(path, tmp_path / "a").returncode == 0
    assert_one_line_error(_compile(path, tmp_path / "b", env={"LUTC_MAX_TENSOR_ELEMENTS": "1000"}),
                          "Expand node 'ex'", "4096 elements", "limit of 1000")
    assert_one_line_error(_compile(path, tmp_path / "c", env={"LUTC_MAX_TENSOR_ELEMENTS": "x"}),
                          "LUTC_MAX_TENSOR_ELEMENTS")
