"""Decoder families beyond llama/qwen (issue 8 §1): each one's tiny random transformers model
against eager, logits on 21 tokens (rel <= 1e-4) and 16 greedy tokens identical.

What each family adds to the graph: phi3 fused qkv/gate_up projections (split by rows) and
partial rotary; granite embedding/residual/attention/logit multipliers; olmo2 RMSNorm after
each sublayer and q/k RMSNorm over the whole projection; smollm3 layers without RoPE; gemma2
sandwich norms, attention and final logit softcapping, sliding window on alternating layers;
gpt_neox LayerNorm with bias, fused per-head qkv, partial rotary, parallel residual, GELU MLP
without gate; stablelm LayerNorm + partial rotary; gpt2 learned positions, Conv1D weights,
gelu_new, no RoPE; opt learned positions offset by 2, ReLU; falcon fused qkv (multi-query, per
head, grouped), parallel attention; cohere bias-free LayerNorm, parallel block, interleaved RoPE,
logit_scale."""

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


MHA = dict(COMMON, num_key_value_heads=4)  # the families without grouped-query attention


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
        "gpt_neox": lambda: t.GPTNeoXForCausalLM(t.GPTNeoXConfig(
            rotary_pct=0.5, hidden_act="gelu", use_parallel_residual=True, **MHA)),
        "gpt_neox-sequential": lambda: t.GPTNeoXForCausalLM(t.GPTNeoXConfig(
            rotary_pct=0.25, hidden_act="gelu_new", use_parallel_residual=False, **MHA)),
        "stablelm": lambda: t.StableLmForCausalLM(t.StableLmConfig(
            partial_rotary_factor=0.25, use_qkv_bias=True, **COMMON)),
        "stablelm-parallel": lambda: t.StableLmForCausalLM(t.StableLmConfig(
            use_parallel_residual=True, **COMMON)),
        "gpt2": lambda: t.GPT2LMHeadModel(t.GPT2Config(
            vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=1024, n_inner=96,
            activation_function="gelu_new", bos_token_id=1, eos_token_id=2)),
        "opt": lambda: t.OPTForCausalLM(t.OPTConfig(
            vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, ffn_dim=96,
            num_attention_heads=4, max_position_embeddings=1024, word_embed_proj_dim=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2)),
        "falcon": lambda: t.FalconForCausalLM(t.FalconConfig(
            vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            multi_query=True, parallel_attn=True, bias=True, ffn_hidden_size=96,
            max_position_embeddings=1024, bos_token_id=1, eos_token_id=2)),
        "falcon-new": lambda: t.FalconForCausalLM(t.FalconConfig(
            vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_kv_heads=2, new_decoder_architecture=True, bias=False,
            max_position_embeddings=1024, bos_token_id=1, eos_token_id=2)),
        "falcon-sequential": lambda: t.FalconForCausalLM(t.FalconConfig(
            vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            multi_query=False, parallel_attn=False, bias=True,
            max_position_embeddings=1024, bos_token_id=1, eos_token_id=2)),
        "cohere": lambda: t.CohereForCausalLM(t.CohereConfig(
            logit_scale=0.3, attention_bias=True, **dict(COMMON, tie_word_embeddings=True))),
    }


def tiny(family: str):
    torch.manual_seed(0)
    model = configs()[family]()
    with torch.no_grad():  # biases are zero and norms one at init: make them matter
        for name, p in model.named_parameters():
            norm = "norm" in name or ".ln" in name
            if name.endswith(".bias") or norm:
                p.normal_(0.5 if norm and name.endswith(".weight") else 0.0, 0.5)
    return model.eval()


def eager_logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(np.asarray(ids))[None]).logits[0].float().numpy()


def rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("family", list(configs()))
def test_family_matches_eager(family, tmp_path):
    model = tiny(family)
    assert DecoderConfig.from_hf(model.config).model_type == family.split("-")[0]
    llm = LLM(model, max_context=96, chunk=16, cache_dir=tmp_path)
    ids = np.random.default_rng(2).integers(0, VOCAB, size=21)
    assert rel(llm.logits(ids), eager_logits(model, ids)) <= 1e-4
    assert_greedy_matches(llm, model, list(ids[:11]), 16)


def assert_greedy_matches(llm, model, prompt: list[int], n: int, tie: float = 1e-5) -> None:
    """lutc's greedy tokens equal transformers' for `n` steps. Where they differ, the two
    tokens' reference logits must be tied (within `tie` of the largest |logit|: float32
    rounding decides, not the model); then both continue from the reference's token, so every
    one of the `n` steps is still checked."""
    prefix = list(prompt)
    while len(prefix) < len(prompt) + n:
        left = len(prompt) + n - len(prefix)
        got = llm.generate(prefix, max_new_tokens=left).token_ids
        with torch.no_grad():
            want = model.generate(torch.tensor(prefix)[None], max_new_tokens=left, do_sample=False,
                                  eos_token_id=None, pad_token_id=0)[0, len(prefix):].tolist()
        i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        if i is None:
            assert got == want
            return
        ref = eager_logits(model, prefix + want[:i])[-1]
        gap = abs(float(ref[want[i]]) - float(ref[got[i]]))
        assert gap <= tie * float(np.abs(ref).max()), \
            f"step {len(prefix) - len(prompt) + i}: lutc chose {got[i]}, transformers {want[i]} " \
            f"(reference logit gap {gap:.2e}: not a tie)"
        prefix += want[:i + 1]


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


@pytest.mark.parametrize("layout", ["per_head", "grouped"])
def test_split_fused_per_head_layouts_are_exact(layout):
    """gpt_neox's [H, 3, D] and falcon's [KVH, H/KVH + 2, D] fused qkv rows split the same for
    float arrays, biases and QuantizedWeight codes/scales/zeros."""
    import dataclasses

    cfg = dataclasses.replace(DecoderConfig.from_hf(transformers.GPTNeoXConfig(**MHA)),
                              qkv_layout=layout, num_kv_heads=4 if layout == "per_head" else 2)
    h, kvh, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    rng = np.random.default_rng(0)
    qkv = rng.normal(size=((h + 2 * kvh) * d, 64)).astype(np.float32)
    bias = rng.normal(size=(h + 2 * kvh) * d).astype(np.float32)
    qw = quantize(qkv, WeightSpec.parse("w4g32"))
    stem = "model.layers.0.self_attn.qkv_proj."
    floats = split_fused(cfg, {stem + "weight": qkv, stem + "bias": bias})
    quants = split_fused(cfg, {stem + "weight": qw})
    if layout == "per_head":
        blocks = qkv.reshape(h, 3, d, 64)
        want = {"q": blocks[:, 0], "k": blocks[:, 1], "v": blocks[:, 2]}
    else:
        blocks = qkv.reshape(kvh, h // kvh + 2, d, 64)
        want = {"q": blocks[:, :-2], "k": blocks[:, -2], "v": blocks[:, -1]}
    for part, rows in want.items():
        key = f"model.layers.0.self_attn.{part}_proj."
        rows = rows.reshape(-1, 64)
        np.testing.assert_array_equal(floats[key + "weight"], rows)
        np.testing.assert_array_equal(
            floats[key + "bias"], bias[np.isin(qkv[:, 0], rows[:, 0])])
        assert isinstance(quants[key + "weight"], QuantizedWeight)
        full = qw.dequantize()
        np.testing.assert_array_equal(quants[key + "weight"].dequantize(),
                                      full[[int(np.flatnonzero(qkv[:, 0] == r)[0])
                                            for r in rows[:, 0]]])


@pytest.mark.parametrize("config, message", [
    (lambda t: t.FalconConfig(alibi=True), "falcon: ALiBi positions"),
    (lambda t: t.OPTConfig(hidden_size=64, word_embed_proj_dim=32, ffn_dim=96),
     "opt: project_in/project_out"),
    (lambda t: t.OPTConfig(do_layer_norm_before=False), "opt: LayerNorm after"),
    (lambda t: t.StableLmConfig(qk_layernorm=True), "stablelm: per-head q/k LayerNorm"),
    (lambda t: t.CohereConfig(use_qk_norm=True), "cohere: q/k LayerNorm"),
    (lambda t: t.BloomConfig(), "model type 'bloom' is not one lutc can generate with"),
])
def test_unsupported_variants_are_one_line_errors(config, message):
    with pytest.raises(LutcError, match=message):
        DecoderConfig.from_hf(config(transformers))
