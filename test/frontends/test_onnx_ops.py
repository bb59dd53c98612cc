"""ONNX operators one by one: small graphs vs onnxruntime (shape subgraphs folded at import)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module

from .conftest import max_abs
from .ir_contract import check_contract

F, I, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
RNG = np.random.default_rng(11)


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _run(nodes, inputs, outputs, inits=(), opset=17, feeds=None, tol=1e-5):
    graph = helper.make_graph(nodes, "g", [_vi(*i) for i in inputs], [_vi(*o) for o in outputs],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    if feeds is None:
        feeds = {}
        for name, elem, shape in inputs:
            if elem == F:
                feeds[name] = RNG.standard_normal(shape).astype(np.float32)
            elif elem == I:
                feeds[name] = RNG.integers(0, 4, shape).astype(np.int64)
            else:
                feeds[name] = RNG.random(shape) > 0.5
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    refs = sess.run(None, feeds)
    im = import_onnx(model)
    check_contract(im.module)
    outs = run_module(im.module, im.weights, [feeds[i[0]] for i in inputs])
    for out, ref in zip(outs, refs):
        assert out.shape == ref.shape
        if ref.dtype == np.bool_ or np.issubdtype(ref.dtype, np.integer):
            np.testing.assert_array_equal(out, ref)
        else:
            assert max_abs(out, ref) <= tol, max_abs(out, ref)
    return im


N = helper.make_node


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
def test_binary_broadcast(op):
    nodes = [N("Abs", ["a"], ["aa"]), N(op, ["aa" if op == "Pow" else "a", "b"], ["y"])]
    _run(nodes, [("a", F, [2, 3, 4]), ("b", F, [3, 1])], [("y", F, [2, 3, 4])])


@pytest.mark.parametrize("op", ["Sqrt", "Reciprocal", "Neg", "Exp", "Tanh", "Erf", "Cos", "Sin",
                                "Sigmoid", "Relu", "Abs"])
def test_unary(op):
    pre = [N("Abs", ["x"], ["ax"]), N("Add", ["ax", "one"], ["p"])] if op in (
        "Sqrt", "Reciprocal") else [N("Identity", ["x"], ["p"])]
    _run(pre + [N(op, ["p"], ["y"])], [("x", F, [3, 5])], [("y", F, [3, 5])],
         [("one", np.float32(1.0))])


def test_gelu_both_forms():
    _run([N("Gelu", ["x"], ["y"]), N("Gelu", ["x"], ["z"], approximate="tanh")],
         [("x", F, [4, 8])], [("y", F, [4, 8]), ("z", F, [4, 8])], opset=20)


def test_logic_and_compare():
    nodes = [N("Equal", ["i", "j"], ["e"]), N("LessOrEqual", ["a", "b"], ["le"]),
             N("And", ["e", "le"], ["and"]), N("Not", ["and"], ["y"]),
             N("IsNaN", ["a"], ["nan"]), N("Where", ["y", "a", "b"], ["w"]),
             N("Cast", ["y"], ["yf"], to=F), N("Cast", ["a"], ["ai"], to=I)]
    _run(nodes, [("i", I, [2, 4]), ("j", I, [4]), ("a", F, [2, 4]), ("b", F, [2, 4])],
         [("y", B, [2, 4]), ("nan", B, [2, 4]), ("w", F, [2, 4]), ("yf", F, [2, 4]),
          ("ai", I, [2, 4])])


def test_reductions_softmax_norms():
    rms_scale = RNG.standard_normal(8).astype(np.float32)
    nodes = [
        N("ReduceMean", ["x"], ["m"], axes=[-1], keepdims=1),
        N("Softmax", ["x"], ["s"], axis=1),
        N("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5),
        N("CumSum", ["x", "ax"], ["cs"]),
        N("Max", ["x", "m", "s"], ["mx"]),
    ]
    _run(nodes, [("x", F, [2, 3, 8])],
         [("m", F, [2, 3, 1]), ("s", F, [2, 3, 8]), ("ln", F, [2, 3, 8]), ("cs", F, [2, 3, 8]),
          ("mx", F, [2, 3, 8])],
         [("g", rms_scale), ("b", np.ones(8, np.float32)), ("ax", np.array(2))])


def test_rms_normalization_opset23():
    _run([N("RMSNormalization", ["x", "g"], ["y"], epsilon=1e-6)], [("x", F, [2, 5, 8])],
         [("y", F, [2, 5, 8])], [("g", RNG.standard_normal(8).astype(np.float32))], opset=23)


def test_shape_ops_fold_to_static_reshapes():
    nodes = [
        N("Shape", ["x"], ["shp"]),
        N("Gather", ["shp", "zero"], ["d0"], axis=0),
        N("Unsqueeze", ["d0", "axes0"], ["d0u"]),
        N("Concat", ["d0u", "minus1"], ["newshape"], axis=0),
        N("Reshape", ["x", "newshape"], ["r"]),                     # [2, 12]
        N("Transpose", ["x"], ["t"], perm=[2, 0, 1]),               # [4, 2, 3]
        N("Slice", ["t", "st", "en", "ax", "sp"], ["sl"]),          # [4, 2, 2] step 2 on axis 2
        N("Flatten", ["sl"], ["fl"], axis=1),                       # [4, 4]
        N("Unsqueeze", ["fl", "axes0"], ["u"]),                     # [1, 4, 4]
        N("Squeeze", ["u", "axes0"], ["sq"]),
        N("Expand", ["sq", "eshape"], ["ex"]),                      # [2, 4, 4]
        N("Range", ["zero_s", "four", "one_s"], ["rng"]),
        N("Cast", ["rng"], ["rngf"], to=F),
        N("Add", ["ex", "rngf"], ["y"]),
        N("ConstantOfShape", ["eshape"], ["c"], value=numpy_helper.from_array(
            np.array([2.0], np.float32))),
        N("Mul", ["y", "c"], ["z"]),
        N("Split", ["z", "split"], ["z1", "z2"], axis=2),
    ]
    inits = [("zero", np.array(0)), ("axes0", np.array([0])), ("minus1", np.array([-1])),
             ("st", np.array([0])), ("en", np.array([3])), ("ax", np.array([2])),
             ("sp", np.array([2])), ("eshape", np.array([2, 4, 4])), ("zero_s", np.array(0)),
             ("four", np.array(4)), ("one_s", np.array(1)), ("split", np.array([1, 3]))]
    im = _run(nodes, [("x", F, [2, 3, 4])],
              [("r", F, [2, 12]), ("z1", F, [2, 4, 1]), ("z2", F, [2, 4, 3])], inits)
    assert "tensor.expand_shape" in str(im.module) or "tensor.collapse_shape" in str(im.module)


def test_gather_embedding_and_gathernd():
    table = RNG.standard_normal((10, 6)).astype(np.float32)
    nodes = [N("Gather", ["table", "ids"], ["e"], axis=0),
             N("GatherND", ["x", "idx"], ["g"])]
    feeds = {"ids": np.array([[1, 9, -1], [0, 2, 3]]), "x": RNG.standard_normal(
        (3, 4, 5)).astype(np.float32), "idx": np.array([[0, 1], [2, 3], [1, -1]])}
    _run(nodes, [("ids", I, [2, 3]), ("x", F, [3, 4, 5]), ("idx", I, [3, 2])],
         [("e", F, [2, 3, 6]), ("g", F, [3, 5])], [("table", table)], feeds=feeds)


def test_matmul_batched_and_gemm_variants():
    w = RNG.standard_normal((6, 5)).astype(np.float32)
    nodes = [N("MatMul", ["a", "b"], ["ab"]),                               # batched, broadcast
             N("Gemm", ["m", "w", "c"], ["g1"], alpha=0.5, beta=2.0),        # [4, 6] x [6, 5]
             N("Gemm", ["mt", "m2"], ["g2"], transA=1)]                      # two activations
    _run(nodes, [("a", F, [2, 3, 4, 6]), ("b", F, [3, 6, 2]), ("m", F, [4, 6]),
                 ("mt", F, [6, 4]), ("m2", F, [6, 3])],
         [("ab", F, [2, 3, 4, 2]), ("g1", F, [4, 5]), ("g2", F, [4, 3])],
         [("w", w), ("c", RNG.standard_normal(5).astype(np.float32))])


def test_attention_opset23_gqa_causal():
    nodes = [N("Attention", ["q", "k", "v"], ["y"], is_causal=1)]
    _run(nodes, [("q", F, [1, 4, 5, 8]), ("k", F, [1, 2, 5, 8]), ("v", F, [1, 2, 5, 8])],
         [("y", F, [1, 4, 5, 8])], opset=23)
