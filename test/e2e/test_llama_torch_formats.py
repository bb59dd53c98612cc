"""The tiny Llama with its decoder linears stored in each torch low-bit format: imported
losslessly (codes, scales, zeros read back off the dequantize subgraph) and compiled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from test.frontends.torch_models import LogitsOnly, tiny_llama, token_ids
from test.frontends.torch_quant_models import GroupDequantLinear, TernaryLinear

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _bitlinear(k: int, n: int, seed: int):
    from transformers.integrations.bitnet import BitLinear

    g = torch.Generator().manual_seed(seed)
    layer = BitLinear(k, n, bias=False, dtype=torch.float32)
    codes = torch.randint(0, 3, (4, *layer.weight.shape), generator=g, dtype=torch.uint8)
    layer.weight.copy_(codes[0] | (codes[1] << 2) | (codes[2] << 4) | (codes[3] << 6))
    layer.weight_scale.fill_(40.0)  # keeps activations in a sane range through 2 layers
    return layer


FORMATS = {
    "uint8 codes w4g32 zp": (lambda k, n, s: GroupDequantLinear(k, n, 4, 32, seed=s), "<w4, g32, zp>"),
    "packed 4x2-bit g32": (lambda k, n, s: GroupDequantLinear(k, n, 2, 32, pack=True, seed=s),
                           "<w2, g32, zp>"),
    "int8 symmetric w4g32": (lambda k, n, s: GroupDequantLinear(k, n, 4, 32, signed=True,
                                                                zeros=False, seed=s), "<w4, g32>"),
    "BitNet b1.58 ternary": (lambda k, n, s: TernaryLinear(k, n, seed=s), "<ternary, g"),
    "transformers BitLinear": (_bitlinear, "<ternary, g"),
}


def quantized_llama(make) -> torch.nn.Module:
    model = tiny_llama()
    seed = 0
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name in LINEARS:
                old = getattr(parent, name, None)
                if old is not None:
                    seed += 1
                    setattr(parent, name, make(old.in_features, old.out_features, seed))
    return LogitsOnly(model).eval()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_llama_torch_low_bit_formats(fmt, tmp_path):
    make, expected = FORMATS[fmt]
    model = quantized_llama(make)
    ids = token_ids()
    ep = torch.export.export(model, (ids,)).run_decompositions()
    imported = import_exported_program(ep)
    text = str(imported.module)
    assert text.count("lut.dequantize") == 14 and expected in text
    (logits,) = run_module(imported.module, imported.weights, [ids.numpy()])
    with torch.no_grad():
        reference = model(ids).numpy()
    error = float(np.abs(logits - reference).max() / np.abs(reference).max())
    print(f"tiny Llama, torch {fmt}: rel max-abs {error:.1e} vs eager")
    assert error <= 1e-3, error
