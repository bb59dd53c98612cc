"""The decoder hyper-parameters lutc builds a generating graph from, read from a transformers
config (a `PretrainedConfig`, a config.json dict, or the one a GGUF reader derives).

Supported families (all "pre-norm decoder, RMSNorm, RoPE, gated MLP, grouped-query attention"):
llama (SmolLM, SmolLM2, Mistral), qwen2 (q/k/v biases), qwen3 (per-head q/k RMSNorm), gemma
(embedding scaled by sqrt(hidden), RMSNorm weights as 1 + w, GELU-tanh MLP). Anything else is
refused with a LutcError naming the model type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lutc.runtime.errors import LutcError

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma")


@dataclass(frozen=True)
class DecoderConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    tie_word_embeddings: bool
    max_position_embeddings: int
    attention_bias: bool = False        # qwen2: biases on q/k/v projections
    qk_norm: bool = False               # qwen3: RMSNorm over each head of q and k
    norm_plus_one: bool = False         # gemma: RMSNorm weight applied as (1 + w)
    embed_scale: float = 1.0            # gemma: sqrt(hidden)
    activation: str = "silu"            # silu | gelu_tanh
    sliding_window: int = 0             # mistral / qwen2 with use_sliding_window: 0 = none
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()

    @property
    def attention_scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim)

    @staticmethod
    def from_hf(config) -> DecoderConfig:
        """From a transformers `PretrainedConfig` or a config.json dict.

        Raises LutcError for an architecture or a feature (e.g. a RoPE scaling type) lutc
        does not build, naming it."""
        get = (config.get if isinstance(config, dict)
               else (lambda key, default=None: getattr(config, key, default)))
        model_type = get("model_type")
        if model_type not in FAMILIES:
            raise LutcError(f"model type '{model_type}' is not one lutc can generate with "
                            f"(supported: {', '.join(FAMILIES)})")
        required = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads")
        missing = [k for k in required if get(k) is None]
        if missing:
            raise LutcError(f"the model config lacks {', '.join(missing)}")
        rope_scaling = get("rope_scaling")
        if rope_scaling and (rope_scaling.get("rope_type") or rope_scaling.get("type")) \
                not in (None, "default"):
            raise LutcError(f"RoPE scaling '{rope_scaling}' is not supported yet")
        hidden = int(get("hidden_size"))
        heads = int(get("num_attention_heads"))
        eos = get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else ((eos,) if eos is not None
                                                                   else ())
        window = get("sliding_window") if get("use_sliding_window", model_type == "mistral") else 0
        gemma = model_type == "gemma"
        act = get("hidden_activation") or get("hidden_act") or "silu"
        if act not in ("silu", "gelu_pytorch_tanh", "gelu"):
            raise LutcError(f"MLP activation '{act}' is not supported yet")
        return DecoderConfig(
            model_type=model_type,
            vocab_size=int(get("vocab_size")),
            hidden_size=hidden,
            intermediate_size=int(get("intermediate_size")),
            num_layers=int(get("num_hidden_layers")),
            num_heads=heads,
            num_kv_heads=int(get("num_key_value_heads") or heads),
            head_dim=int(get("head_dim") or hidden // heads),
            rms_norm_eps=float(get("rms_norm_eps") or 1e-6),
            rope_theta=float(get("rope_theta") or 10000.0),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            max_position_embeddings=int(get("max_position_embeddings") or 2048),
            attention_bias=bool(get("attention_bias", model_type == "qwen2")),
            qk_norm=model_type == "qwen3",
            norm_plus_one=gemma,
            embed_scale=math.sqrt(hidden) if gemma else 1.0,
            activation="silu" if act == "silu" else "gelu_tanh",
            sliding_window=int(window or 0),
            bos_token_id=get("bos_token_id"),
            eos_token_ids=tuple(int(e) for e in eos_ids),
        )
