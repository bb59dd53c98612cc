"""The decoder hyper-parameters lutc builds a generating graph from, read from a transformers
config (a `PretrainedConfig`, a config.json dict, or the one a GGUF reader derives).

Supported families (all "pre-norm decoder, RMSNorm, RoPE, gated MLP, grouped-query attention"):
llama (SmolLM, SmolLM2, Mistral), qwen2 (q/k/v biases), qwen3 (per-head q/k RMSNorm), gemma
(embedding scaled by sqrt(hidden), RMSNorm weights as 1 + w, GELU-tanh MLP), phi3 (fused
qkv_proj / gate_up_proj, split by rows when loading; partial rotary), granite (embedding,
residual, attention and logit multipliers), olmo2 (RMSNorm after each sublayer, q/k RMSNorm over
the whole projection), smollm3 (no RoPE on some layers), gemma2 / gemma3 (sandwich norms,
attention and final logit softcapping, sliding window on alternating layers). Anything else is
refused with a LutcError naming the model type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lutc.runtime.errors import LutcError

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "granite", "olmo2", "smollm3",
            "gemma2", "gemma3_text")


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
    qk_norm: str = ""                   # qwen3, gemma3: "head" (RMSNorm over each head of q and
                                        # k); olmo2: "full" (over the whole projection)
    norm_plus_one: bool = False         # gemma: RMSNorm weight applied as (1 + w)
    embed_scale: float = 1.0            # gemma: sqrt(hidden)
    activation: str = "silu"            # silu | gelu_tanh
    sliding_window: int = 0             # mistral / qwen2 with use_sliding_window: 0 = none
    partial_rotary_factor: float = 1.0  # phi3: RoPE on the first factor * head_dim dims only
    rope_local_theta: float = 0.0       # gemma3: RoPE base of sliding-window layers (0: rope_theta)
    residual_multiplier: float = 1.0    # granite: sublayer outputs scaled before the residual add
    attention_multiplier: float = 0.0   # granite: replaces 1/sqrt(head_dim) (0: not set)
    query_pre_attn_scalar: float = 0.0  # gemma2/3: scale = query_pre_attn_scalar^-0.5 (0: not set)
    logits_scaling: float = 1.0         # granite: logits divided by it
    attn_softcap: float = 0.0           # gemma2: attention logit softcapping (0: none)
    final_softcap: float = 0.0          # gemma2: logits = cap * tanh(logits / cap) (0: none)
    norm_placement: str = "pre"         # pre | post (olmo2) | sandwich (gemma2/3: pre and post)
    rope_layers: tuple[bool, ...] = ()  # smollm3: False where a layer skips RoPE (): all use it
    layer_windows: tuple[int, ...] = () # per-layer sliding window (): sliding_window everywhere
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()

    @property
    def attention_scale(self) -> float:
        if self.attention_multiplier:
            return self.attention_multiplier
        if self.query_pre_attn_scalar:
            return self.query_pre_attn_scalar ** -0.5
        return 1.0 / math.sqrt(self.head_dim)

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    def uses_rope(self, layer: int) -> bool:
        return not self.rope_layers or bool(self.rope_layers[layer])

    def window(self, layer: int) -> int:
        return self.layer_windows[layer] if self.layer_windows else self.sliding_window

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
        # RoPE: transformers >= 5 keeps theta and the scaling type in `rope_parameters` (gemma3:
        # one dict per layer type); older configs and config.json files have rope_theta/rope_scaling
        rope_params = get("rope_parameters") or {}
        local_params = {}
        if isinstance(rope_params.get("full_attention"), dict):
            local_params = rope_params.get("sliding_attention") or {}
            rope_params = rope_params["full_attention"]
        for params in (get("rope_scaling"), rope_params, local_params):
            if params and (params.get("rope_type") or params.get("type")) not in (None, "default"):
                raise LutcError(f"RoPE scaling '{params}' is not supported yet")
        rope_theta = get("rope_theta") or rope_params.get("rope_theta") or 10000.0
        partial_rotary = get("partial_rotary_factor") or rope_params.get("partial_rotary_factor") \
            or 1.0
        hidden = int(get("hidden_size"))
        heads = int(get("num_attention_heads"))
        eos = get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else ((eos,) if eos is not None
                                                                   else ())
        sliding_default = model_type in ("mistral", "phi3")
        window = get("sliding_window") if get("use_sliding_window", sliding_default) else 0
        layer_types = get("layer_types")
        layer_windows: tuple[int, ...] = ()
        if model_type in ("smollm3", "gemma2", "gemma3_text") and layer_types and \
                get("use_sliding_window", True):
            layer_windows = tuple(int(get("sliding_window") or 0) if t == "sliding_attention"
                                  else 0 for t in layer_types)
            window = 0
        gemma = model_type in ("gemma", "gemma2", "gemma3_text")
        act = get("hidden_activation") or get("hidden_act") or "silu"
        if act not in ("silu", "gelu_pytorch_tanh", "gelu"):
            raise LutcError(f"MLP activation '{act}' is not supported yet")
        qk_norm = {"qwen3": "head", "gemma3_text": "head", "olmo2": "full"}.get(model_type, "")
        norm_placement = {"olmo2": "post", "gemma2": "sandwich",
                          "gemma3_text": "sandwich"}.get(model_type, "pre")
        rope_layers = tuple(bool(u) for u in get("no_rope_layers") or ()) \
            if model_type == "smollm3" else ()
        granite = model_type == "granite"
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
            rope_theta=float(rope_theta),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            max_position_embeddings=int(get("max_position_embeddings") or 2048),
            attention_bias=bool(get("attention_bias", model_type == "qwen2")),
            qk_norm=qk_norm,
            norm_plus_one=gemma,
            embed_scale=math.sqrt(hidden) if gemma else
            float(get("embedding_multiplier") or 1.0) if granite else 1.0,
            activation="silu" if act == "silu" else "gelu_tanh",
            sliding_window=int(window or 0),
            partial_rotary_factor=float(partial_rotary),
            rope_local_theta=float(local_params.get("rope_theta") or 0.0),
            residual_multiplier=float(get("residual_multiplier") or 1.0) if granite else 1.0,
            attention_multiplier=float(get("attention_multiplier") or 0.0) if granite else 0.0,
            query_pre_attn_scalar=float(get("query_pre_attn_scalar") or 0.0)
            if model_type in ("gemma2", "gemma3_text") else 0.0,
            logits_scaling=float(get("logits_scaling") or 1.0) if granite else 1.0,
            attn_softcap=float(get("attn_logit_softcapping") or 0.0),
            final_softcap=float(get("final_logit_softcapping") or 0.0),
            norm_placement=norm_placement,
            rope_layers=rope_layers,
            layer_windows=layer_windows,
            bos_token_id=get("bos_token_id"),
            eos_token_ids=tuple(int(e) for e in eos_ids),
        )
