"""Low-bit weights dequantized in a torch forward pass, recovered losslessly as lut.dequantize."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module

from .conftest import rel_max_abs
from .ir_contract import check_contract
from .torch_quant_models import GroupDequantLinear, QuantMLP, TernaryLinear, bitnet_linear_mlp

FORMATS = {
    "uint8 codes, w4 g32, zeros": (lambda k, n, i: GroupDequantLinear(k, n, 4, 32, seed=i),
                                   ["<w4, g32, zp>", "<w4, g32, zp>"]),
    "uint8 codes, w2 g16, zeros": (lambda k, n, i: GroupDequantLinear(k, n, 2, 16, seed=i),
                                   ["<w2, g16, zp>", "<w2, g16, zp>"]),
    "int8 codes, w4 g32, symmetric": (
        lambda k, n, i: GroupDequantLinear(k, n, 4, 32, signed=True, zeros=False, seed=i),
        ["<w4, g32>", "<w4, g32>"]),
    "packed 2x4-bit, g32": (lambda k, n, i: GroupDequantLinear(k, n, 4, 32, pack=True, seed=i),
                            ["<w4, g32, zp>", "<w4, g32, zp>"]),
    "packed 4x2-bit, g32": (lambda k, n, i: GroupDequantLinear(k, n, 2, 32, pack=True, seed=i),
                            ["<w2, g32, zp>", "<w2, g32, zp>"]),
    "BitNet b1.58 float ternary": (lambda k, n, i: TernaryLinear(k, n, seed=i),
                                   ["<ternary, g64>", "<ternary, g96>"]),
}


def _check(model, expected_formats):
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(4))
    ep = torch.export.export(model.eval(), (x,)).run_decompositions()
    im = import_exported_program(ep)
    check_contract(im.module)
    assert re.findall(r"as (<[^>]*>)", str(im.module)) == expected_formats
    assert im.quantization_report == []
    out = run_module(im.module, im.weights, [x.numpy()])[0]
    with torch.no_grad():
        ref = model(x).numpy()
    err = rel_max_abs(out, ref)
    assert err <= 1e-3
    return err


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_dequant_in_forward(fmt):
    make, expected = FORMATS[fmt]
    _check(QuantMLP(make), expected)


def test_transformers_bitnet_bitlinear():
    _check(bitnet_linear_mlp(), ["<ternary, g64>", "<ternary, g96>"])


def test_float_weights_are_not_mistaken_for_low_bit():
    model = QuantMLP(lambda k, n, i: torch.nn.Linear(k, n))
    x = torch.randn(2, 64)
    im = import_exported_program(torch.export.export(model.eval(), (x,)).run_decompositions())
    assert "lut.dequantize" not in str(im.module)
    np.testing.assert_allclose(run_module(im.module, im.weights, [x.numpy()])[0],
                               model(x).detach().numpy(), atol=1e-5)
