"""Reductions over every axis with kept dims (issue 11.8): the [1, .., 1] result of a rank-0
reduction used to be an expand_shape that xDSL refuses to verify; now it imports and computes
like onnxruntime / eager."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module

from .conftest import max_abs

RNG = np.random.default_rng(8)


def _vs_onnxruntime(nodes, inits, out_shape, opset):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    x = RNG.standard_normal((2, 3, 8)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    im = import_onnx(model)
    out = run_module(im.module, im.weights, [x])[0]
    assert out.shape == ref.shape
    assert max_abs(out, ref) <= 1e-5


def test_reduce_mean_every_axis_keepdims():
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)
    _vs_onnxruntime([node], {"axes": np.array([0, 1, 2], np.int64)}, [1, 1, 1], 18)


def test_layer_normalization_axis0():
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=0)
    inits = {"g": RNG.standard_normal((2, 3, 8)).astype(np.float32),
             "b": RNG.standard_normal((2, 3, 8)).astype(np.float32)}
    _vs_onnxruntime([node], inits, [2, 3, 8], 17)


def test_torch_layer_norm_over_whole_shape():
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.layer_norm(x, x.shape)

    x = torch.randn(2, 3, 8)
    ep = torch.export.export(M(), (x,))
    im = import_exported_program(ep)
    out = run_module(im.module, im.weights, [x.numpy()])[0]
    assert max_abs(out, M()(x).numpy()) <= 1e-5
