"""Nodes whose inputs are all constants fold before the unsupported-op check (issue 11.16):
an operator lutc has no handler for is evaluated with onnx.reference; GatherElements and Mod
are also handled on computed inputs. All vs onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module
from lutc.runtime.errors import LutcError

from .conftest import max_abs

F, I = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(16)
N = helper.make_node


def _model(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def _vs_onnxruntime(model, feeds):
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    im = import_onnx(model)
    out = run_module(im.module, im.weights, list(feeds.values()))[0]
    assert out.shape == ref.shape
    assert max_abs(out, ref) <= 1e-5, max_abs(out, ref)
    return im


def test_bert_position_ids_gather_elements_on_constants():
    buf = np.arange(16, dtype=np.int64).reshape(1, 16)
    idx = np.array([[3, 2, 1, 0, 7, 6, 5, 4]], np.int64)
    table = RNG.standard_normal((16, 8)).astype(np.float32)
    nodes = [N("GatherElements", ["buf", "idx"], ["pos"], axis=1),
             N("Gather", ["table", "pos"], ["emb"]), N("Add", ["x", "emb"], ["y"])]
    model = _model(nodes, [("x", F, [1, 8, 8])], [("y", F, [1, 8, 8])],
                   {"buf": buf, "idx": idx, "table": table})
    _vs_onnxruntime(model, {"x": RNG.standard_normal((1, 8, 8)).astype(np.float32)})


def test_unhandled_op_on_constants_is_folded():
    a, b = (RNG.standard_normal((4, 8)).astype(np.float32) for _ in range(2))
    nodes = [N("Einsum", ["a", "b"], ["ab"], equation="ij,kj->ik"), N("Sign", ["ab"], ["s"]),
             N("MatMul", ["x", "s"], ["y"])]
    model = _model(nodes, [("x", F, [2, 4])], [("y", F, [2, 4])], {"a": a, "b": b})
    _vs_onnxruntime(model, {"x": RNG.standard_normal((2, 4)).astype(np.float32)})


def test_unhandled_op_on_computed_input_is_one_line():
    model = _model([N("Sign", ["x"], ["y"], name="sg")], [("x", F, [2, 4])],
                   [("y", F, [2, 4])], {})
    with pytest.raises(LutcError, match=r"^unsupported ONNX ops: Sign \(x1, first at node 'sg'\)$"):
        import_onnx(model)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_computed(axis):
    idx = RNG.integers(-3, 3, (3, 3)).astype(np.int64)
    model = _model([N("GatherElements", ["x", "i"], ["y"], axis=axis)],
                   [("x", F, [3, 4]), ("i", I, [3, 3])], [("y", F, [3, 3])], {})
    _vs_onnxruntime(model, {"x": RNG.standard_normal((3, 4)).astype(np.float32), "i": idx})


@pytest.mark.parametrize("fmod,elem", [(0, I), (1, I), (1, F)])
def test_mod_computed(fmod, elem):
    if elem == I:
        a = RNG.integers(-20, 20, (3, 5)).astype(np.int64)
        b = RNG.choice([-7, -3, 2, 5], (3, 5)).astype(np.int64)
    else:
        a = (RNG.standard_normal((3, 5)) * 10).astype(np.float32)
        b = RNG.choice([-2.5, -1.0, 0.75, 3.0], (3, 5)).astype(np.float32)
    model = _model([N("Mod", ["a", "b"], ["y"], fmod=fmod)],
                   [("a", elem, [3, 5]), ("b", elem, [3, 5])], [("y", elem, [3, 5])], {})
    _vs_onnxruntime(model, {"a": a, "b": b})
