"""ONNX Attention (opset 23) against onnxruntime and onnx's reference evaluator (issue 11.9):
without a past the causal mask is top-left aligned; 3-D [batch, seq, heads*head_dim] inputs
are split into heads with q_num_heads / kv_num_heads; a short mask is padded."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module

from .conftest import max_abs

RNG = np.random.default_rng(9)
F = TensorProto.FLOAT


def _check(inputs, out_shape, ort_too=True, **attrs):
    names = [n for n, _ in inputs]
    node = helper.make_node("Attention", names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.BOOL if s is bool else F,
                                                    s if s is not bool else None)
                      for n, s in inputs],
        [helper.make_tensor_value_info("y", F, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    onnx.checker.check_model(model)
    feeds = {n: RNG.standard_normal(s).astype(np.float32) for n, s in inputs}
    ref = ReferenceEvaluator(model).run(None, feeds)[0]
    if ort_too:  # the two references agree
        rt = ort.InferenceSession(model.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        assert max_abs(rt, ref) <= 1e-5
    im = import_onnx(model)
    out = run_module(im.module, im.weights, [feeds[n] for n in names])[0]
    assert out.shape == ref.shape
    assert max_abs(out, ref) <= 1e-5, max_abs(out, ref)


def test_causal_without_past_is_top_left():
    _check([("q", [1, 4, 3, 8]), ("k", [1, 2, 5, 8]), ("v", [1, 2, 5, 8])], [1, 4, 3, 8],
           is_causal=1)


@pytest.mark.parametrize("causal", [0, 1])
def test_three_d_inputs(causal):
    _check([("q", [2, 3, 4 * 8]), ("k", [2, 5, 2 * 8]), ("v", [2, 5, 2 * 6])], [2, 3, 4 * 6],
           is_causal=causal, q_num_heads=4, kv_num_heads=2)


def test_short_float_mask_is_padded():  # onnxruntime 1.32 refuses it; the spec pads
    _check([("q", [1, 2, 3, 8]), ("k", [1, 2, 5, 8]), ("v", [1, 2, 5, 8]), ("m", [3, 4])],
           [1, 2, 3, 8], ort_too=False)
