"""Decoder families beyond llama/qwen (issue 8 §1): each one's tiny random transformers model
against eager, logits on 21 tokens (rel <= 1e-4) and 16 greedy tokens identical.

What each family adds to the graph: phi3 fused qkv/gate_up projections (split by rows) and
partial rotary; granite embedding/residual/attention/logit multipliers; olmo2 RMSNorm after
each sublayer and q/k RMSNorm over the whole projection; smollm3 layers without RoPE; gemma2
sandwich norms, attention and final logit softcapping, sliding window on alternating layers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lutc.compiler.frontends.quantize import QuantizedWeight, WeightSpec, quantize  # noqa: E402
from lutc.compiler.llm.config import DecoderConfig  # noqa: E402
from lutc.compiler.llm.decoder_graph import split_fused  # noqa: E402
from lutc.compiler.llm.llm import LLM  # noqa: E402
from lutc.runtime.errors import LutcError  # noqa: E402

VOCAB = 300
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
              tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def configs():
    t = transformers
    return {
        "phi3": lambda: t.Phi3ForCausalLM(t.Phi3Config(partial_rotary_factor=0.5, **COMMON)),
        "granite": lambda: t.GraniteForCausalLM(t.GraniteConfig(
            embedding_multiplier=3.0, residual_multiplier=0.4, attention_multiplier=0.09,
            logits_scaling=2.5, **COMMON)),
        "olmo2": lambda: t.Olmo2ForCausalLM(t.Olmo2Config(**COMMON)),
        "smollm3": lambda: t.SmolLM3ForCausalLM(t.SmolLM3Config(no_rope_layers=[1, 0],
                                                                **COMMON)),
        "gemma2": lambda: t.Gemma2ForCausalLM(t.Gemma2Config(
            head_dim=16, query_pre_attn_scalar=24, sliding_window=6, attn_logit_softcapping=0.7,
            final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh",
            attn_implementation="eager", **COMMON)),
        "gemma3_text": lambda: t.Gemma3ForCausalLM(t.Gemma3TextConfig(
            head_dim=16, query_pre_attn_scalar=24, sliding_window=6,
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                             "sliding_attention": {"rope_type": "default",
                                                   "rope_theta": 1e4}},
            attn_implementation="eager", **COMMON)),
    }


def tiny(family: str):
    torch.manual_seed(0)
    model = configs()[family]()
    with torch.no_grad():  # biases are zero and norms one at init: make them matter
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "norm" in name:
                p.normal_(0.5 if "norm" in name else 0.0, 0.5)
    return model.eval()


def eager_logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(np.asarray(ids))[None]).logits[0].float().numpy()


def rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("family", list(configs()))
def test_family_matches_eager(family, tmp_path):
    model = tiny(family)
    assert DecoderConfig.from_hf(model.config).model_type == family
    llm = LLM(model, max_context=96, chunk=16, cache_dir=tmp_path)
    ids = np.random.default_rng(2).integers(0, VOCAB, size=21)
    assert rel(llm.logits(ids), eager_logits(model, ids)) <= 1e-4
    prompt = list(ids[:11])
    got = llm.generate(prompt, max_new_tokens=16).token_ids
    with torch.no_grad():
        want = model.generate(torch.tensor(prompt)[None], max_new_tokens=16, do_sample=False,
                              eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()
    assert got == want


def test_split_fused_is_exact_for_quantized_rows():
    """phi3's fused rows split the same for float arrays and QuantizedWeight codes/scales."""
    cfg = DecoderConfig.from_hf(transformers.Phi3Config(**COMMON))
    rng = np.random.default_rng(0)
    qkv = rng.normal(size=(64 + 2 * 32, 64)).astype(np.float32)
    qw = quantize(qkv, WeightSpec.parse("w4g32"))
    name = "model.layers.0.self_attn.qkv_proj.weight"
    floats, quants = split_fused(cfg, {name: qkv}), split_fused(cfg, {name: qw})
    for part, (a, b) in {"q": (0, 64), "k": (64, 96), "v": (96, 128)}.items():
        key = f"model.layers.0.self_attn.{part}_proj.weight"
        np.testing.assert_array_equal(floats[key], qkv[a:b])
        assert isinstance(quants[key], QuantizedWeight)
        np.testing.assert_array_equal(quants[key].dequantize(), qw.dequantize()[a:b])
    with pytest.raises(LutcError, match="qkv_proj.weight' has 100 rows"):
        split_fused(cfg, {name: qkv[:100]})
