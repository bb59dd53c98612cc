"""llama.cpp's architectures as transformers models: the config dict and the parameter names.

GGUF stores a model's config as `{arch}.*` metadata and its weights under llama.cpp names
(`blk.0.attn_q.weight`). This maps both onto what transformers' `config.json` and `state_dict()`
would say for the same model, and undoes the two layout changes llama.cpp's converter makes:

  * llama: Q and K rows are permuted per head from the half-split RoPE layout to the interleaved
    one. Undone with the row permutation transformers' GGUF loader uses (reverse_permute):
        rows.reshape(n_head, head_dim // 2, 2).swapaxes(1, 2)
  * phi3: `attn_qkv` holds q, k and v rows stacked, `ffn_up` holds gate and up rows stacked (there
    is no `ffn_gate`). Split by rows into q_proj/k_proj/v_proj and gate_proj/up_proj.

Both are row selections, so they apply to quantized weights exactly (codes, scales and zeros).
"""

from __future__ import annotations

import re

import numpy as np

from lutc.runtime.errors import LutcError

from lutc.compiler.frontends.quantize import QuantizedWeight

SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "qwen3", "phi3")

_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
LAYER_RE = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|bias)$")
# Tensors that carry RoPE frequency factors, not parameters: they go into hf_config["rope_scaling"].
ROPE_TENSORS = ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight")


class Architecture:
    """One GGUF file's architecture: reads its config and renames/splits its tensors."""

    def __init__(self, metadata: dict, tensor_names: set[str], path):
        self.path = path
        self.metadata = metadata
        self.tensor_names = tensor_names
        arch = metadata.get("general.architecture")
        if arch is None:
            raise LutcError(f"{path}: missing metadata key 'general.architecture'")
        if arch not in SUPPORTED_ARCHITECTURES:
            raise LutcError(f"{path}: GGUF architecture {arch!r} is not supported by lutc "
                            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
        self.name = arch

    # -- config ----------------------------------------------------------------------------------

    def _key(self, suffix: str, kind=int, default=...):
        key = f"{self.name}.{suffix}"
        if key not in self.metadata:
            if default is ...:
                raise LutcError(f"{self.path}: missing metadata key '{key}'")
            return default
        value = self.metadata[key]
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) if kind is float \
            else isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            raise LutcError(f"{self.path}: metadata key '{key}' = {value!r} is not "
                            f"{'a number' if kind is float else 'an integer'}")
        return kind(value)

    def hf_config(self, vocab_rows: int | None, q_rows: int | None) -> dict:
        md = self.metadata
        heads = self._key("attention.head_count")
        kv_heads = self._key("attention.head_count_kv", default=heads)
        hidden = self._key("embedding_length")
        if heads <= 0 or kv_heads <= 0 or heads % kv_heads:
            raise LutcError(f"{self.path}: metadata says {heads} attention heads and {kv_heads} "
                            "key/value heads; heads must be a positive multiple of kv heads")
        head_dim = self._key("attention.key_length", default=None)
        if head_dim is None and q_rows is not None:
            head_dim = q_rows // heads
        if head_dim is None:
            head_dim = hidden // heads
        for what, value in (("head_dim", head_dim), ("embedding_length", hidden)):
            if value <= 0:
                raise LutcError(f"{self.path}: metadata gives {what} = {value}; it must be positive")
        tokens = md.get("tokenizer.ggml.tokens")
        vocab = vocab_rows or self._key("vocab_size", default=None) or (
            len(tokens) if tokens is not None else None)
        if vocab is None:
            raise LutcError(f"{self.path}: cannot tell the vocabulary size (no token_embd.weight, "
                            f"'{self.name}.vocab_size' or 'tokenizer.ggml.tokens')")
        config = {
            "model_type": self.name,
            "architectures": [_CAUSAL_LM[self.name]],
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": self._key("feed_forward_length"),
            "num_hidden_layers": self._key("block_count"),
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "rms_norm_eps": self._key("attention.layer_norm_rms_epsilon", float),
            "rope_theta": self._key("rope.freq_base", float, default=10000.0),
            "max_position_embeddings": self._key("context_length"),
            "tie_word_embeddings": "output.weight" not in self.tensor_names,
            "bos_token_id": md.get("tokenizer.ggml.bos_token_id"),
            "eos_token_id": md.get("tokenizer.ggml.eos_token_id"),
            "pad_token_id": md.get("tokenizer.ggml.padding_token_id"),
            "hidden_act": "silu",
        }
        has_qkv_bias = "blk.0.attn_q.bias" in self.tensor_names or \
            "blk.0.attn_qkv.bias" in self.tensor_names
        if self.name in ("llama", "qwen2", "qwen3"):
            config["attention_bias"] = has_qkv_bias
        if self.name == "llama":
            config["mlp_bias"] = "blk.0.ffn_down.bias" in self.tensor_names
        if self.name == "qwen2":
            config["use_sliding_window"] = False
        rotary = self._key("rope.dimension_count", default=head_dim)
        if rotary != head_dim:
            config["partial_rotary_factor"] = rotary / head_dim
        window = self._key("attention.sliding_window", default=None)
        if window:
            config["sliding_window"] = window
        scaling = self._rope_scaling()
        if scaling is not None:
            config["rope_scaling"] = scaling
        return config

    def _rope_scaling(self) -> dict | None:
        kind = self.metadata.get(f"{self.name}.rope.scaling.type")
        if kind in (None, "none"):
            return None
        scaling = {"rope_type": kind, "type": kind}
        factor = self._key("rope.scaling.factor", float, default=None)
        if factor is not None:
            scaling["factor"] = factor
        original = self._key("rope.scaling.original_context_length", default=None)
        if original is not None:
            scaling["original_max_position_embeddings"] = original
        return scaling

    def add_rope_factors(self, config: dict, factors: dict[str, np.ndarray]) -> None:
        """llama.cpp stores llama3/longrope frequency factors as tensors; transformers as config."""
        if not factors:
            return
        scaling = config.setdefault("rope_scaling", {})
        if "rope_factors_long.weight" in factors:
            scaling.setdefault("rope_type", "longrope")
            scaling.setdefault("type", "longrope")
            scaling["long_factor"] = factors["rope_factors_long.weight"].tolist()
        if "rope_factors_short.weight" in factors:
            scaling["short_factor"] = factors["rope_factors_short.weight"].tolist()
        if "rope_freqs.weight" in factors:
            # Per-dimension divisors of the rotary frequencies, already computed by llama.cpp.
            scaling["freq_factors"] = factors["rope_freqs.weight"].tolist()

    # -- tensors ---------------------------------------------------------------------------------

    def hf_tensors(self, gguf_name: str, value, config: dict) -> list[tuple[str, object]]:
        """(transformers name, value) pairs for one GGUF tensor, with llama.cpp's layout undone."""
        stem, _, suffix = gguf_name.rpartition(".")
        if stem in _GLOBAL_NAMES and suffix in ("weight", "bias"):
            return [(f"{_GLOBAL_NAMES[stem]}.{suffix}", value)]
        m = LAYER_RE.match(gguf_name)
        if m is None:
            raise LutcError(f"{self.path}: tensor '{gguf_name}' is not part of a {self.name} model "
                            "as lutc knows it")
        layer, part, suffix = m.groups()
        prefix = f"model.layers.{layer}."
        if self.name == "phi3" and part == "attn_qkv":
            q = config["num_attention_heads"] * config["head_dim"]
            kv = config["num_key_value_heads"] * config["head_dim"]
            self._check_rows(gguf_name, value, q + 2 * kv)
            return [(f"{prefix}self_attn.{p}_proj.{suffix}", _rows(value, slice(a, b)))
                    for p, a, b in (("q", 0, q), ("k", q, q + kv), ("v", q + kv, q + 2 * kv))]
        if self.name == "phi3" and part == "ffn_up" and \
                f"blk.{layer}.ffn_gate.weight" not in self.tensor_names:
            inter = config["intermediate_size"]
            self._check_rows(gguf_name, value, 2 * inter)
            return [(f"{prefix}mlp.gate_proj.{suffix}", _rows(value, slice(0, inter))),
                    (f"{prefix}mlp.up_proj.{suffix}", _rows(value, slice(inter, 2 * inter)))]
        if part not in _LAYER_NAMES:
            raise LutcError(f"{self.path}: tensor '{gguf_name}' is not part of a {self.name} model "
                            "as lutc knows it")
        if self.name == "llama" and part in ("attn_q", "attn_k"):
            heads = config["num_attention_heads" if part == "attn_q" else "num_key_value_heads"]
            self._check_rows(gguf_name, value, heads * config["head_dim"])
            if config["head_dim"] % 2:
                raise LutcError(f"{self.path}: tensor '{gguf_name}': head_dim {config['head_dim']} "
                                "is odd, so llama.cpp's RoPE row permutation cannot be undone")
            value = _rows(value, rope_unpermutation(_n_rows(value), heads))
        return [(f"{prefix}{_LAYER_NAMES[part]}.{suffix}", value)]

    def _check_rows(self, name: str, value, expected: int) -> None:
        if _n_rows(value) != expected:
            raise LutcError(f"{self.path}: tensor '{name}' has {_n_rows(value)} rows; the metadata's "
                            f"head counts and sizes say it should have {expected}")


def rope_unpermutation(n_rows: int, n_head: int) -> np.ndarray:
    """Row order that undoes llama.cpp's Q/K permute: new[h, a, j] = old[h, j, a]
    for h < n_head, a < 2, j < head_dim/2 (transformers' reverse_permute)."""
    assert n_rows % (2 * n_head) == 0, (n_rows, n_head)
    return np.arange(n_rows).reshape(n_head, n_rows // n_head // 2, 2).swapaxes(1, 2).reshape(-1)


def _n_rows(value) -> int:
    return value.shape[0]


def _rows(value, rows):
    if isinstance(value, QuantizedWeight):
        return value.take_rows(rows)
    return np.ascontiguousarray(value[rows])


_CAUSAL_LM = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
              "qwen3": "Qwen3ForCausalLM", "phi3": "Phi3ForCausalLM"}
