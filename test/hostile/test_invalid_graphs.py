"""Invalid graphs are refused at import in one line (issue 11.7): a tensor written twice, a
graph output listed twice, a declared output shape the graph contradicts, an opset above 23
(older ones go through onnx's version converter), MatMulNBits zero points of a type the spec
does not allow."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module
from test.hostile.conftest import assert_one_line_error, run_lutc

F = TensorProto.FLOAT


def _save(path, nodes, outputs, inits=(), opset=17, x_shape=(2, 8), extra_opsets=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, x_shape)],
                              [helper.make_tensor_value_info(*o) for o in outputs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    *extra_opsets])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _compile(path, out):
    return run_lutc("compile", path, "-o", out, "--emit", "c", timeout=300)


def test_tensor_written_twice(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="a"),
                                       helper.make_node("Neg", ["x"], ["y"], name="b")],
                 [("y", F, [2, 8])])
    assert_one_line_error(_compile(path, tmp_path / "o"), "tensor 'y'", "Relu node 'a'",
                          "Neg node 'b'")


def test_names_that_are_not_utf8(tmp_path):
    """protobuf hands strings that are not UTF-8 over as bytes: one line naming the first."""
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"], name="nodeQQQ")],
                 [("y", F, [2, 8])])
    path.write_bytes(path.read_bytes().replace(b"nodeQQQ", b"nod\xc3\x28QQ"))
    assert_one_line_error(_compile(path, tmp_path / "o"), "m.onnx", "the name of node #0",
                          "not valid UTF-8")


def test_no_outputs(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])], [])
    assert_one_line_error(_compile(path, tmp_path / "o"), "no outputs")


@pytest.mark.parametrize("delta, message", [(0.0, "delta 0"), (1e-30, "Range's output"),
                                            (float("nan"), "three finite scalars")])
def test_range_bounds(tmp_path, delta, message):
    """Range's length is max(ceil((limit - start) / delta), 0): a zero step, a length past the
    tensor cap and non-finite bounds are one line each (not numpy's warnings and errors)."""
    inits = [numpy_helper.from_array(np.array(v, np.float32), n)
             for n, v in (("s", 0.0), ("l", 8.0), ("d", delta))]
    path = _save(tmp_path / "m.onnx", [helper.make_node("Range", ["s", "l", "d"], ["r"]),
                                       helper.make_node("Add", ["x", "r"], ["y"])],
                 [("y", F, [2, 8])], inits)
    assert_one_line_error(_compile(path, tmp_path / "o"), "Range node", message)


def test_graph_output_listed_twice(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                 [("y", F, [2, 8]), ("y", F, [2, 8])])
    assert_one_line_error(_compile(path, tmp_path / "o"), "graph output 'y'", "twice")


def test_declared_output_shape_contradicted(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                 [("y", F, [2, 9])])
    assert_one_line_error(_compile(path, tmp_path / "o"), "graph output 'y'", "[2, 9]",
                          "computes [2, 8]")


def test_opset_above_23_is_refused(tmp_path):
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                 [("y", F, [2, 8])], opset=99)
    assert_one_line_error(_compile(path, tmp_path / "o"), "opset 99", "17-23")


def test_opset_7_is_converted(tmp_path):
    w = numpy_helper.from_array(np.random.default_rng(7).standard_normal((8, 5), np.float32),
                                "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Softmax", ["h"], ["s"], axis=0),  # opset < 13: 2-D coercion
             helper.make_node("Unsqueeze", ["s"], ["y"], axes=[0])]
    path = _save(tmp_path / "m.onnx", nodes, [("y", F, [1, 2, 5])], [w], opset=7)
    model = onnx.load(path)
    x = np.random.default_rng(8).standard_normal((2, 8)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    im = import_onnx(model)
    out = run_module(im.module, im.weights, [x])[0]
    assert out.shape == ref.shape and float(np.max(np.abs(out - ref))) <= 1e-6


def test_matmulnbits_float64_zero_points(tmp_path):
    k, n, bs = 16, 8, 16
    inits = [numpy_helper.from_array(np.zeros((n, 1, bs // 2), np.uint8), "B"),
             numpy_helper.from_array(np.ones((n,), np.float32), "scales"),
             numpy_helper.from_array(np.full((n,), 8.0), "zp")]  # float64
    node = helper.make_node("MatMulNBits", ["x", "B", "scales", "zp"], ["y"],
                            domain="com.microsoft", K=k, N=n, bits=4, block_size=bs, name="mm")
    path = _save(tmp_path / "m.onnx", [node], [("y", F, [2, n])], inits, x_shape=(2, k),
                 extra_opsets=[helper.make_opsetid("com.microsoft", 1)])
    assert_one_line_error(_compile(path, tmp_path / "o"), "MatMulNBits node 'mm'",
                          "zero points", "DOUBLE")


@pytest.mark.parametrize("op, other", [("MatMul", TensorProto.INT64), ("Add", TensorProto.INT32),
                                       ("Concat", TensorProto.DOUBLE)])
def test_inputs_of_mismatched_types_are_refused(tmp_path, op, other):
    """An operator whose inputs break its type constraints (T bound to float and int64): one
    line naming the node, as onnxruntime refuses the model (it used to compile, casting)."""
    shape = [8, 8] if op == "MatMul" else [2, 8]
    w = helper.make_tensor("w", other, shape, [1] * int(np.prod(shape)))
    attrs = {"axis": 0} if op == "Concat" else {}
    out = [4, 8] if op == "Concat" else [2, 8]
    path = _save(tmp_path / "m.onnx", [helper.make_node(op, ["x", "w"], ["y"], name="bad", **attrs)],
                 [("y", F, out)], [w])
    with pytest.raises(Exception, match="Type"):
        ort.InferenceSession(str(path))
    assert_one_line_error(_compile(path, tmp_path / "o"), f"{op} node 'bad'", "type",
                          "invalid")


def test_unnamed_node_of_mismatched_types_is_named_by_position(tmp_path):
    w = helper.make_tensor("w", TensorProto.INT64, [8, 8], [1] * 64)
    path = _save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["r"]),
                                       helper.make_node("MatMul", ["r", "w"], ["y"])],
                 [("y", F, [2, 8])], [w])
    assert_one_line_error(_compile(path, tmp_path / "o"), "MatMul node 'MatMul_1'",
                          "inconsistent type")
