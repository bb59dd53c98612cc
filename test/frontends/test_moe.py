"""Mixture-of-experts routing (issue 11.17): a tiny random Qwen3-MoE (2 layers, 4 experts, top-2)
exported by torch.export with transformers' batched_mm experts and with its default grouped_mm
experts (sort, histc, grouped_mm_fallback), compiled to C by lutc.compile against transformers'
eager logits; float weights, and 4-bit weights (every expert quantized as a
linear layer: LUT GEMMs, counted by --stats) against eager with the dequantized weights."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch

import lutc
from lutc.compiler.api import compile_model
from lutc.compiler.frontends.quantize import WeightSpec, quantize
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.runtime.errors import LutcError
from lutc.runtime.model_loader import CompiledModel

from .conftest import rel_max_abs

transformers = pytest.importorskip("transformers")

LOSSLESS = ("lut-quantize-table",)  # f32 tables: the only error left is the weights' own
N_LAYERS, N_EXPERTS, TOP_K, HIDDEN, MOE_FFN = 2, 4, 2, 32, 16


def tiny_qwen3_moe(experts_implementation: str = "batched_mm"):
    config = transformers.Qwen3MoeConfig(
        vocab_size=96, hidden_size=HIDDEN, intermediate_size=64, moe_intermediate_size=MOE_FFN,
        num_hidden_layers=N_LAYERS, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        num_experts=N_EXPERTS, num_experts_per_tok=TOP_K, norm_topk_prob=True,
        max_position_embeddings=64, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = transformers.Qwen3MoeForCausalLM._from_config(
        config, experts_implementation=experts_implementation).eval()
    with torch.no_grad():  # spread the router so that the top-2 choice differs per token
        for layer in model.model.layers:
            layer.mlp.gate.weight.normal_(0.0, 0.5)
    return model


class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(ids, use_cache=False).logits


def dequantized(model, fmt: str):
    """A copy whose linear weights (2-D projections, router, lm_head, and each expert's slice of
    the stacked [E, N, K] expert parameters) are their dequantized `fmt` values."""
    model = copy.deepcopy(model)
    spec = WeightSpec.parse(fmt)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_tokens" in name or p.ndim < 2:
                continue
            if p.ndim == 2:
                p.copy_(torch.from_numpy(quantize(p.numpy(), spec).dequantize()))
            else:
                for e in range(p.shape[0]):
                    p[e].copy_(torch.from_numpy(quantize(p[e].numpy(), spec).dequantize()))
    return model


@pytest.fixture(scope="module")
def moe():
    model = tiny_qwen3_moe()
    ids = torch.randint(0, 96, (1, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ep = torch.export.export(Logits(model), (ids,))
        want = Logits(model)(ids).numpy()
        # the routing really differs between tokens (else a dense bug could hide)
        probs = model.model.layers[0].mlp.gate(model.model.embed_tokens(ids)[0])[2]
    assert len({tuple(sorted(r)) for r in probs.tolist()}) > 1
    return model, ids, ep, want


def test_moe_float_matches_transformers(moe, tmp_path):
    _, ids, ep, want = moe
    (got,) = lutc.compile(ep, outdir=tmp_path / "f32")(ids.numpy())
    assert got.shape == want.shape
    assert rel_max_abs(got, want) <= 1e-4, rel_max_abs(got, want)


def test_moe_quantized_experts_are_lut_gemms(moe, tmp_path):
    model, ids, ep, _ = moe
    lines: list[str] = []
    compile_model(ep, tmp_path / "w4", weights="w4g16", disabled=LOSSLESS, stats=True,
                  out=lines.append)
    text = "\n".join(lines)
    quantized = re.findall(r"quantized (\S+):", text)
    experts = [q for q in quantized if ".experts." in q]
    # gate_up and down of every expert of every layer, each its own quantized linear layer
    assert len(experts) == 2 * N_LAYERS * N_EXPERTS, quantized
    assert any(q.endswith("experts.gate_up_proj.3") for q in experts), experts
    # every expert is a LUT GEMM on the S = tokens * top-k routed rows, in --stats as
    # "gemm i: MxNxK"; each layer's expert GEMMs read one table each for gate_up and down, so
    # lut-fuse-siblings merges them: gate_up [E * 2F, H], down [E * H, F] per layer
    gemms = re.findall(r"gemm \d+: (\d+)x(\d+)x(\d+)", text)
    rows = ids.shape[1] * TOP_K
    shapes = [tuple(map(int, g)) for g in gemms]
    assert shapes.count((rows, N_EXPERTS * 2 * MOE_FFN, HIDDEN)) == N_LAYERS, shapes
    assert shapes.count((rows, N_EXPERTS * HIDDEN, MOE_FFN)) == N_LAYERS, shapes
    (got,) = CompiledModel(tmp_path / "w4")(ids.numpy())
    with torch.no_grad():
        want = Logits(dequantized(model, "w4g16"))(ids).numpy()
    assert rel_max_abs(got, want) <= 1e-4, rel_max_abs(got, want)
    # and the quantization is real: the float model differs
    with torch.no_grad():
        float_logits = Logits(model)(ids).numpy()
    assert rel_max_abs(got, float_logits) > 1e-3


def test_moe_ir_has_one_dequantize_per_expert(moe):
    _, _, ep, _ = moe
    im = import_exported_program(ep, weights=WeightSpec.parse("w4g16"))
    text = str(im.module)
    # per layer: q, k, v, o, router, 2 per expert; plus lm_head
    assert text.count("lut.dequantize") == N_LAYERS * (5 + 2 * N_EXPERTS) + 1


@pytest.fixture(scope="module")
def moe_grouped():
    """transformers' default experts on CPU: sort by expert, histc, grouped_mm_fallback."""
    model = tiny_qwen3_moe("grouped_mm")
    ids = torch.randint(0, 96, (1, 7), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ep = torch.export.export(Logits(model), (ids,))
        want = Logits(model)(ids).numpy()
    assert any("grouped_mm" in str(n.target) for n in ep.graph.nodes)
    return model, ids, ep, want


def test_grouped_mm_moe_float_matches_transformers(moe_grouped, tmp_path):
    _, ids, ep, want = moe_grouped
    (got,) = lutc.compile(ep, outdir=tmp_path / "f32")(ids.numpy())
    assert rel_max_abs(got, want) <= 1e-4, rel_max_abs(got, want)


def test_grouped_mm_moe_quantized(moe_grouped, tmp_path):
    model, ids, ep, _ = moe_grouped
    lines: list[str] = []
    compile_model(ep, tmp_path / "w4", weights="w4g16", disabled=LOSSLESS, out=lines.append)
    experts = [q for q in re.findall(r"quantized (\S+):", "\n".join(lines)) if ".experts." in q]
    assert len(experts) == 2 * N_LAYERS * N_EXPERTS, experts
    (got,) = CompiledModel(tmp_path / "w4")(ids.numpy())
    with torch.no_grad():
        want = Logits(dequantized(model, "w4g16"))(ids).numpy()
    assert rel_max_abs(got, want) <= 1e-4, rel_max_abs(got, want)


class HistcFloorDiv(torch.nn.Module):
    def forward(self, x, i):
        return torch.histc(x, bins=5, min=-1.0, max=3.0), i // 3, torch.div(i, -2, rounding_mode="floor")


def test_histc_and_integer_floor_division():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.2, 0.8, 1.0, 2.99, 3.0, 3.01, 2.0, 2.0])
    i = torch.tensor([-7, -6, -1, 0, 1, 5, 6, 7])
    ep = torch.export.export(HistcFloorDiv(), (x, i))
    from lutc.compiler.interp.interpret import run_module

    im = import_exported_program(ep)
    got = run_module(im.module, im.weights, [x.numpy(), i.numpy()])
    for g, w in zip(got, HistcFloorDiv()(x, i)):
        np.testing.assert_array_equal(g, w.numpy())


def test_decoder_builder_refuses_qwen3_moe_in_one_line():
    """lutc.compile(hf_model) builds generating decoders; MoE ones go through torch.export."""
    with pytest.raises(LutcError, match=r"model type 'qwen3_moe' is not one lutc can generate "
                                        r"with .*through torch.export") as info:
        lutc.compile(tiny_qwen3_moe())
    assert "\n" not in str(info.value)
