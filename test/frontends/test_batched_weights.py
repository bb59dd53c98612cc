"""Products with a constant weight that are linear layers in disguise: bmm(x, expand(W^T)) (a
linear layer torch decomposed on a non-contiguous input; an ONNX MatMul on a repeated 3-D
initializer) and W @ x (= (x^T W^T)^T; MatMul or Gemm with the constant first) are quantized
like any linear layer; a constant that stays float although a weight format was asked for is
named in ImportedModel.float_notes (and printed by compile)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from lutc.compiler.api import compile_model
from lutc.compiler.frontends.linear_policy import shared_batch_weight
from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.frontends.quantize import WeightSpec, quantize
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module

from .conftest import max_abs, rel_max_abs
from .ir_contract import check_contract

SPEC = "w4g32"


class TransposedLinear(torch.nn.Module):
    """linear(x.transpose(1, 2)) on a 4-D x: torch's decomposition expands W^T to a bmm."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(64, 48)

    def forward(self, x):
        return self.proj(x.transpose(1, 2))


class HeadWeights(torch.nn.Module):
    """A different [K, N] matrix per head (not a linear layer), a constant left operand with
    K = 3 (stays float) and a small one with K = 8 (W @ x: quantized)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.heads = torch.nn.Parameter(torch.randn(5, 64, 32, generator=g))
        self.mix = torch.nn.Parameter(torch.randn(8, 3, generator=g))
        self.rows = torch.nn.Parameter(torch.randn(6, 8, generator=g))

    def forward(self, x):  # x [2, 5, 3, 64]
        return torch.matmul(self.rows, torch.matmul(self.mix, torch.matmul(x, self.heads)))


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 5, 3, 64, generator=torch.Generator().manual_seed(seed))


def test_shared_batch_weight():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.broadcast_to(w, (2, 5, 3, 4))
    assert np.array_equal(shared_batch_weight((2, 5, 7, 3), b), w)
    assert shared_batch_weight((10, 7, 3), b.reshape(10, 3, 4)) is not None
    # b's batch dims must broadcast to x's: x [1, 7, 3] @ b [10, 3, 4] is [10, 7, 4]
    assert shared_batch_weight((1, 7, 3), b.reshape(10, 3, 4)) is None
    assert np.array_equal(shared_batch_weight((4, 7, 3), w[None]), w)  # b [1, 3, 4]
    assert np.array_equal(shared_batch_weight((2, 5, 7, 3), b[:1, :1]), w)
    assert shared_batch_weight((5, 7, 3), b.reshape(10, 3, 4)[:2]) is None  # 5 against 2
    assert shared_batch_weight((7, 3), w[None]) is None  # x [7, 3] @ b [1, 3, 4] is [1, 7, 4]
    different = np.array(b.reshape(10, 3, 4))
    different[9, 0, 0] += 1
    assert shared_batch_weight((10, 7, 3), different) is None
    assert shared_batch_weight((7, 3), w) is None


@pytest.mark.parametrize("decompose", [True, False])
def test_torch_linear_on_transposed_input_is_quantized(decompose):
    model = TransposedLinear().eval()
    x = _x()
    ep = torch.export.export(model, (x,))
    if decompose:
        ep = ep.run_decompositions()
        assert "aten.bmm.default" in [str(n.target) for n in ep.graph.nodes]
    spec = WeightSpec.parse(SPEC)
    im = import_exported_program(ep, spec)
    check_contract(im.module)
    assert [name for name, _ in im.quantization_report] == ["proj"]
    assert im.float_notes == []
    with torch.no_grad():
        model.proj.weight.copy_(torch.from_numpy(quantize(model.proj.weight.numpy(), spec).dequantize()))
        want = model(x).numpy()
    out = run_module(im.module, im.weights, [x.numpy()])[0]
    assert out.shape == (2, 3, 5, 48)
    assert rel_max_abs(out, want) <= 1e-5


@pytest.mark.parametrize("decompose", [True, False])
def test_torch_float_products_are_named(decompose):
    model = HeadWeights().eval()
    x = _x(2)
    ep = torch.export.export(model, (x,))
    if decompose:
        ep = ep.run_decompositions()
    spec = WeightSpec.parse(SPEC)
    im = import_exported_program(ep, spec)
    assert [name for name, _ in im.quantization_report] == ["rows"]
    # the parameter's shape, also where the decomposition expanded it to [10, 64, 32]
    assert sorted(im.float_notes) == [
        "heads [5, 64, 32]: kept float, its batches hold different matrices (a batched weight, "
        "not a linear layer)",
        "mix: kept float, its K = 3 input features (for 8 outputs) are not a multiple of 4"]
    with torch.no_grad():
        model.rows.copy_(torch.from_numpy(quantize(model.rows.numpy(), spec).dequantize()))
        want = model(x).numpy()
    assert rel_max_abs(run_module(im.module, im.weights, [x.numpy()])[0], want) <= 1e-5
    # without a weight format nothing was asked for: no notes
    assert import_exported_program(ep).float_notes == []


def test_compile_prints_float_products(tmp_path):
    lines = []
    ep = torch.export.export(HeadWeights().eval(), (_x(),))
    compile_model(ep, tmp_path / "m", weights=SPEC, emit="mlir", out=lines.append)
    notes = [line for line in lines if line.startswith("note: ")]
    assert len(notes) == 2 and any("heads" in n for n in notes), lines
    assert "quantized rows: relative weight error" in " ".join(lines), lines


def _onnx_matmul(b: np.ndarray) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [x], [y], [numpy_helper.from_array(b, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_matmul_on_repeated_weight():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((64, 48)).astype(np.float32)
    x = rng.standard_normal((4, 3, 64)).astype(np.float32)
    spec = WeightSpec.parse(SPEC)
    im = import_onnx(_onnx_matmul(np.ascontiguousarray(np.broadcast_to(w, (4, 64, 48)))),
                     weights=spec)
    check_contract(im.module)
    assert [name for name, _ in im.quantization_report] == ["w"] and im.float_notes == []
    want = x @ quantize(np.ascontiguousarray(w.T), spec).dequantize().T
    assert rel_max_abs(run_module(im.module, im.weights, [x])[0], want) <= 1e-5

    heads = rng.standard_normal((4, 64, 48)).astype(np.float32)
    im = import_onnx(_onnx_matmul(heads), weights=spec)
    assert im.quantization_report == [] and len(im.float_notes) == 1
    assert im.float_notes[0].startswith("w [4, 64, 48]: kept float")
    assert max_abs(run_module(im.module, im.weights, [x])[0], x @ heads) <= 1e-4


def _onnx_graph(nodes, inputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                                           for n, s in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op, attrs", [("MatMul", {}), ("Gemm", {}), ("Gemm", {"transB": 1}),
                                       ("Gemm", {"transA": 1, "alpha": 0.5, "beta": 2.0})])
def test_onnx_constant_left_operand_is_a_linear_layer(op, attrs):
    """W @ x (MatMul / Gemm with the constant first) = (x^T W^T)^T: quantized like a linear
    layer, W's rows the output features."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((48, 64)).astype(np.float32)  # [M, K]
    x = rng.standard_normal((64, 5)).astype(np.float32)   # [K, N]
    c = rng.standard_normal((48, 1)).astype(np.float32)
    w_model = w.T.copy() if attrs.get("transA") else w
    x_model = x.T.copy() if attrs.get("transB") else x
    inits = {"w": w_model}
    ins = ["w", "x"]
    if op == "Gemm" and "beta" in attrs:
        inits["c"] = c
        ins.append("c")
    model = _onnx_graph([helper.make_node(op, ins, ["y"], name="n", **attrs)],
                        [("x", list(x_model.shape))], inits)
    spec = WeightSpec.parse(SPEC)
    im = import_onnx(model, weights=spec)
    check_contract(im.module)
    assert [name for name, _ in im.quantization_report] == ["w"] and im.float_notes == []
    wq = quantize(w * np.float32(attrs.get("alpha", 1.0)), spec).dequantize()
    want = wq @ x + (attrs.get("beta", 1.0) * c if "c" in inits else 0)
    out = run_module(im.module, im.weights, [x_model])[0]
    assert out.shape == (48, 5) and rel_max_abs(out, want) <= 1e-5


def test_onnx_small_constants_are_named():
    """Every constant weight kept float is reported, whatever its size: a batched [2, 4, 4]."""
    rng = np.random.default_rng(7)
    heads = rng.standard_normal((2, 4, 4)).astype(np.float32)
    model = _onnx_graph([helper.make_node("MatMul", ["x", "h"], ["y"])], [("x", [2, 3, 4])],
                        {"h": heads})
    im = import_onnx(model, weights=WeightSpec.parse(SPEC))
    assert im.float_notes == ["h [2, 4, 4]: kept float, its batches hold different matrices "
                              "(a batched weight, not a linear layer)"]
