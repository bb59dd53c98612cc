"""softplus (aten.softplus with beta / threshold, ONNX Softplus) and depthwise conv1d
(aten.conv1d / aten.convolution with groups == in_channels, ONNX Conv 1-D with group == C)
(issue 11.17): against torch and onnxruntime, through the interpreter and compiled C; other
convolutions are one-line errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import lutc
from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from lutc.runtime.errors import LutcError

from .conftest import max_abs
from .ir_contract import check_contract

F = TensorProto.FLOAT
RNG = np.random.default_rng(23)


def _torch_check(module, *xs, tol=1e-6, tmp_path=None):
    ep = torch.export.export(module, tuple(torch.from_numpy(x) for x in xs))
    with torch.no_grad():
        want = module(*(torch.from_numpy(x) for x in xs)).numpy()
    im = import_exported_program(ep)
    check_contract(im.module)
    (got,) = run_module(im.module, im.weights, list(xs))
    assert got.shape == want.shape
    assert max_abs(got, want) <= tol, max_abs(got, want)
    if tmp_path is not None:
        (got,) = lutc.compile(ep, outdir=tmp_path / "c")(*xs)
        assert max_abs(got, want) <= tol, max_abs(got, want)
    return im


def _wide_range() -> np.ndarray:
    """Large negative / positive values (overflow, log1p precision) and the threshold edges."""
    x = np.concatenate([np.linspace(-120, 120, 97), [-30, -17.3, -1e-4, 0, 1e-6, 9.99, 10.01,
                                                     19.99, 20, 20.01, 88.8, 100]])
    return x.astype(np.float32).reshape(1, -1)


class Softplus(torch.nn.Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return torch.nn.functional.softplus(x, beta=self.beta, threshold=self.threshold)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0), (1.0, 1.0)])
def test_torch_softplus(beta, threshold):
    x = _wide_range()
    want = Softplus(beta, threshold)(torch.from_numpy(x)).numpy()
    im = _torch_check(Softplus(beta, threshold), x, tol=2e-5)
    (got,) = run_module(im.module, im.weights, [x])
    # tiny outputs keep their relative precision (log1p, not log(1 + t))
    small = np.abs(want) < 1e-3
    assert np.all(np.abs(got[small] - want[small]) <= 1e-6 * np.abs(want[small]) + 1e-30)


def test_torch_softplus_c(tmp_path):
    _torch_check(Softplus(2.0, 10.0), _wide_range(), tol=2e-5, tmp_path=tmp_path)


def test_onnx_softplus_vs_onnxruntime(tmp_path):
    x = _wide_range()
    graph = helper.make_graph([helper.make_node("Softplus", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", F, list(x.shape))],
                              [helper.make_tensor_value_info("y", F, list(x.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    im = import_onnx(model)
    (got,) = run_module(im.module, im.weights, [x])
    assert np.all(np.isfinite(want)) and np.all(np.isfinite(got))  # no overflow at x = 120
    assert max_abs(got, want) <= 2e-5
    (got_c,) = lutc.compile(model, outdir=tmp_path / "c")(x)
    assert max_abs(got_c, got) <= 2e-5


# -- depthwise conv1d -----------------------------------------------------------------------


class DepthwiseConv(torch.nn.Module):
    def __init__(self, c, k, m=1, padding=0, stride=1, dilation=1, bias=True, causal=False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(c, c * m, k, groups=c, padding=padding, stride=stride,
                                    dilation=dilation, bias=bias)
        self.causal = causal

    def forward(self, x):
        y = self.conv(x)
        return y[..., :x.shape[-1]] if self.causal else y  # Mamba: pad K-1, keep the first L


@pytest.mark.parametrize("kw", [
    dict(k=4, padding=3, causal=True),                  # Mamba's causal conv
    dict(k=3, padding=1),
    dict(k=5, padding=2, stride=2, dilation=1),
    dict(k=3, padding=4, dilation=2, m=2, bias=False),  # channel multiplier 2, no bias
    dict(k=3, padding="same"),
    dict(k=4, padding="valid"),
])
def test_torch_depthwise_conv1d(kw):
    c = 6
    model = DepthwiseConv(c, **kw).eval()
    _torch_check(model, RNG.standard_normal((2, c, 11)).astype(np.float32), tol=1e-5)


def test_torch_depthwise_conv1d_decomposed_and_c(tmp_path):
    """aten.convolution (after run_decompositions), compiled to C."""
    model = DepthwiseConv(8, 4, padding=3, causal=True).eval()
    x = RNG.standard_normal((1, 8, 9)).astype(np.float32)
    ep = torch.export.export(model, (torch.from_numpy(x),)).run_decompositions()
    assert any("convolution" in str(n.target) for n in ep.graph.nodes)
    im = import_exported_program(ep)
    (got,) = run_module(im.module, im.weights, [x])
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert max_abs(got, want) <= 1e-5
    (got,) = lutc.compile(ep, outdir=tmp_path / "c")(x)
    assert max_abs(got, want) <= 1e-5


def test_torch_other_convolutions_are_one_line():
    class Dense(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 6, 3)

        def forward(self, x):
            return self.conv(x)

    class Conv2d(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, groups=4)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(LutcError, match=r"only depthwise conv1d is supported .*groups=1") as e:
        import_exported_program(torch.export.export(Dense(), (torch.randn(1, 4, 8),)))
    assert "\n" not in str(e.value) and "node 'conv1d'" in str(e.value)
    with pytest.raises(LutcError, match=r"only 1-D convolution is supported"):
        import_exported_program(torch.export.export(Conv2d(), (torch.randn(1, 4, 8, 8),)))


def _onnx_conv(xshape, wshape, with_bias=True, **attrs):
    w = RNG.standard_normal(wshape).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    inputs = ["x", "w"]
    if with_bias:
        inits.append(numpy_helper.from_array(RNG.standard_normal(wshape[0]).astype(np.float32),
                                             "b"))
        inputs.append("b")
    graph = helper.make_graph([helper.make_node("Conv", inputs, ["y"], name="conv", **attrs)],
                              "g", [helper.make_tensor_value_info("x", F, list(xshape))],
                              [helper.make_tensor_value_info("y", F, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("attrs", [
    dict(pads=[3, 0]),
    dict(pads=[1, 2], strides=[2]),
    dict(pads=[2, 2], dilations=[2], kernel_shape=[3]),
    dict(auto_pad="SAME_UPPER", strides=[2]),
    dict(auto_pad="SAME_LOWER"),
    dict(auto_pad="VALID"),
])
def test_onnx_depthwise_conv_vs_onnxruntime(attrs):
    c, k = 5, 3 if "dilations" in attrs else 4
    model = _onnx_conv((2, c, 10), (c, 1, k), group=c, **attrs)
    x = RNG.standard_normal((2, c, 10)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    im = import_onnx(model)
    check_contract(im.module)
    (got,) = run_module(im.module, im.weights, [x])
    assert got.shape == want.shape and max_abs(got, want) <= 1e-5


def test_onnx_depthwise_conv_multiplier_no_bias_c(tmp_path):
    c = 4
    model = _onnx_conv((1, c, 12), (2 * c, 1, 3), with_bias=False, group=c, pads=[2, 0])
    x = RNG.standard_normal((1, c, 12)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    (got,) = lutc.compile(model, outdir=tmp_path / "c")(x)
    assert got.shape == want.shape and max_abs(got, want) <= 1e-5


def test_onnx_other_convs_are_one_line():
    with pytest.raises(LutcError, match=r"Conv node 'conv'.*only depthwise 1-D Conv .*group=1"):
        import_onnx(_onnx_conv((1, 4, 8), (6, 4, 3), group=1))
    with pytest.raises(LutcError, match=r"Conv node 'conv'.*only 1-D Conv is supported"):
        import_onnx(_onnx_conv((1, 4, 8, 8), (4, 1, 3, 3), group=4))
    with pytest.raises(LutcError, match=r"shorter than the dilated kernel"):
        import_onnx(_onnx_conv((1, 4, 3), (4, 1, 5), group=4))
