"""The decoder hyper-parameters lutc builds a generating graph from, read from a transformers
config (a `PretrainedConfig`, a config.json dict, or the one a GGUF reader derives).

Supported families (all "pre-norm decoder, RMSNorm, RoPE, gated MLP, grouped-query attention"):
llama (SmolLM, SmolLM2, Mistral), qwen2 (q/k/v biases), qwen3 (per-head q/k RMSNorm), gemma
(embedding scaled by sqrt(hidden), RMSNorm weights as 1 + w, GELU-tanh MLP), phi3 (fused
qkv_proj / gate_up_proj, split by rows when loading; partial rotary), granite (embedding,
residual, attention and logit multipliers), olmo2 (RMSNorm after each sublayer, q/k RMSNorm over
the whole projection), smollm3 (no RoPE on some layers), gemma2 / gemma3 (sandwich norms,
attention and final logit softcapping, sliding window on alternating layers).
Outside that mould (LayerNorm, with its bias where stored): gpt_neox (fused per-head
query_key_value, partial rotary, parallel residual, GELU MLP without gate), stablelm (partial
rotary, optional parallel residual), gpt2 (learned positions, Conv1D weights, fused c_attn,
gelu_new, no RoPE), opt (learned positions offset by 2, ReLU MLP), falcon (fused qkv: per head,
multi-query or grouped; parallel attention), cohere (LayerNorm without bias, parallel block,
interleaved RoPE, logit_scale). Anything else, or a variant of these lutc does not build, is
refused with a LutcError naming the model type.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lutc.compiler.llm.value_checks import is_integer, is_number
from lutc.runtime.errors import LutcError

#: element types of the KV cache: f32 (exact), or f16 (half the memory and half the bytes
#: attention reads; runtime lutrt_attention_kv_f16)
KV_CACHE_DTYPES = {"f32": np.dtype(np.float32), "f16": np.dtype(np.float16)}

FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "granite", "olmo2", "smollm3",
            "gemma2", "gemma3_text", "gpt_neox", "stablelm", "gpt2", "opt", "falcon", "cohere")
# outside the llama mould: LayerNorm, ungated MLPs, parallel blocks, learned positions, fused qkv
LAYERNORM_FAMILIES = ("gpt_neox", "stablelm", "gpt2", "opt", "falcon", "cohere")
# config.json keys of the older families (transformers' attribute_map covers config objects)
_ALIASES = {"hidden_size": ("n_embd",), "num_hidden_layers": ("n_layer",),
            "num_attention_heads": ("n_head",), "max_position_embeddings": ("n_positions",),
            "intermediate_size": ("ffn_dim", "ffn_hidden_size", "n_inner")}
_ACTIVATIONS = {"silu": "silu", "gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh",
                "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh"}


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
    norm: str = "rms"                   # rms | layer (LayerNorm: mean removed; bias if stored)
    gated_mlp: bool = True              # False: down(act(up(x))) (gpt_neox, gpt2, opt, falcon)
    parallel_residual: bool = False     # x + attn(ln1(x)) + mlp(ln2(x)) (ln2 = ln1 if not stored)
    position_embedding: str = "rope"    # rope | learned (gpt2, opt: a table gathered by position)
    qkv_layout: str = "stacked"         # fused qkv rows: stacked q|k|v (phi3, gpt2, falcon-mq),
                                        # per_head [H, 3, D] (gpt_neox, falcon), grouped
                                        # [KVH, H/KVH + 2, D] (falcon new_decoder_architecture)
    rope_interleaved: bool = False      # cohere: RoPE on (2i, 2i+1) pairs (rows permuted on load)
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
        if self.position_embedding != "rope":
            return False
        return not self.rope_layers or bool(self.rope_layers[layer])

    def window(self, layer: int) -> int:
        return self.layer_windows[layer] if self.layer_windows else self.sliding_window

    @staticmethod
    def from_hf(config) -> DecoderConfig:
        """From a transformers `PretrainedConfig` or a config.json dict.

        Raises LutcError for an architecture or a feature (e.g. a RoPE scaling type) lutc
        does not build, naming it."""
        raw = (config.get if isinstance(config, dict)
               else (lambda key, default=None: getattr(config, key, default)))

        def get(key, default=None):
            value = raw(key)
            for alias in _ALIASES.get(key, ()):
                if value is None:
                    value = raw(alias)
            return default if value is None else value

        model_type = get("model_type")
        if model_type not in FAMILIES:
            moe = ("; a mixture-of-experts model compiles as a forward pass through torch.export"
                   if get("num_experts") or get("num_local_experts") else "")
            raise LutcError(f"model type '{model_type}' is not one lutc can generate with "
                            f"(supported: {', '.join(FAMILIES)}){moe}")
        _check_values(get)
        extra = _family_fields(model_type, get)
        required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads") + \
            (() if model_type in ("gpt2", "falcon") else ("intermediate_size",))
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
        rope_theta = rope_theta if model_type != "gpt_neox" else \
            (get("rotary_emb_base") or rope_theta)
        partial_rotary = get("partial_rotary_factor") or rope_params.get("partial_rotary_factor") \
            or get("rotary_pct") or 1.0
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
        act = get("hidden_activation") or get("hidden_act") or get("activation_function") or \
            get("activation") or "silu"
        new_family = model_type in LAYERNORM_FAMILIES
        if act not in (_ACTIVATIONS if new_family else ("silu", "gelu_pytorch_tanh", "gelu")):
            raise LutcError(f"MLP activation '{act}' is not supported yet")
        qk_norm = {"qwen3": "head", "gemma3_text": "head", "olmo2": "full"}.get(model_type, "")
        norm_placement = {"olmo2": "post", "gemma2": "sandwich",
                          "gemma3_text": "sandwich"}.get(model_type, "pre")
        rope_layers = tuple(bool(u) for u in get("no_rope_layers") or ()) \
            if model_type == "smollm3" else ()
        granite = model_type == "granite"
        eps = get("rms_norm_eps") or 1e-6
        if new_family:
            eps = get("layer_norm_eps") or get("layer_norm_epsilon") or 1e-5
        inter = get("intermediate_size") or 4 * hidden
        cfg = DecoderConfig(
            model_type=model_type,
            vocab_size=int(get("vocab_size")),
            hidden_size=hidden,
            intermediate_size=int(inter),
            num_layers=int(get("num_hidden_layers")),
            num_heads=heads,
            num_kv_heads=int(get("num_key_value_heads") or heads),
            head_dim=int(get("head_dim") or hidden // heads),
            rms_norm_eps=float(eps),
            rope_theta=float(rope_theta),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            max_position_embeddings=int(get("max_position_embeddings") or 2048),
            attention_bias=bool(get("attention_bias", model_type == "qwen2")),
            qk_norm=qk_norm,
            norm_plus_one=gemma,
            embed_scale=math.sqrt(hidden) if gemma else
            float(get("embedding_multiplier") or 1.0) if granite else 1.0,
            activation=_ACTIVATIONS[act] if new_family else
            "silu" if act == "silu" else "gelu_tanh",
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
        cfg = dataclasses.replace(cfg, **extra) if extra else cfg
        cfg.check()
        return cfg

    def check(self) -> None:
        """The derived sizes lutc builds from: LutcError naming the first inconsistent one."""
        if self.num_heads % self.num_kv_heads:
            raise LutcError(f"the model config has {self.num_heads} attention heads, not a "
                            f"multiple of its {self.num_kv_heads} key/value heads")
        if self.position_embedding == "rope" and (self.rotary_dim < 2 or self.rotary_dim % 2
                                                  or self.rotary_dim > self.head_dim):
            raise LutcError(f"the model config's RoPE covers {self.rotary_dim} of {self.head_dim} "
                            f"head dims: RoPE needs an even number, at least 2, at most head_dim")


# config keys lutc reads, by the type their value must have (None always means "not set")
_INT_KEYS = {  # key: least value
    "vocab_size": 1, "hidden_size": 1, "intermediate_size": 1, "num_hidden_layers": 1,
    "num_attention_heads": 1, "num_key_value_heads": 1, "num_kv_heads": 1, "head_dim": 1,
    "max_position_embeddings": 1, "sliding_window": 0}
_POSITIVE_FLOAT_KEYS = ("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "rope_theta",
                        "rotary_emb_base", "partial_rotary_factor", "rotary_pct", "logit_scale",
                        "logits_scaling")
_FLOAT_KEYS = ("query_pre_attn_scalar", "embedding_multiplier", "residual_multiplier",
               "attention_multiplier", "attn_logit_softcapping", "final_logit_softcapping")
_BOOL_KEYS = ("tie_word_embeddings", "attention_bias", "use_sliding_window",
              "use_parallel_residual", "new_decoder_architecture", "multi_query", "parallel_attn")


def _check_values(get) -> None:
    """Every config value lutc reads has the type and range it must: LutcError naming the key
    (a string where a number belongs, a NaN epsilon, a zero RoPE base, "no" for a boolean)."""
    def bad(key, value, what):
        raise LutcError(f"the model config's {key} is {value!r}: {what}")

    for key, least in _INT_KEYS.items():
        v = get(key)
        if v is not None and (not is_integer(v) or v < least):
            bad(key, v, f"expected an integer >= {least}")
    for key in _POSITIVE_FLOAT_KEYS + _FLOAT_KEYS:
        v = get(key)
        if v is None:
            continue
        if not is_number(v):
            bad(key, v, "expected a finite number")
        if key in _POSITIVE_FLOAT_KEYS and v <= 0:
            bad(key, v, "expected a number > 0")
    for key in ("partial_rotary_factor", "rotary_pct"):
        v = get(key)
        if v is not None and v > 1:
            bad(key, v, "expected a fraction of head_dim in (0, 1]")
    for key in _BOOL_KEYS:
        v = get(key)
        if v is not None and not isinstance(v, (bool, np.bool_)):
            bad(key, v, "expected true or false")
    for key in ("rope_scaling", "rope_parameters"):
        v = get(key)
        if v is not None and not isinstance(v, dict):
            bad(key, v, "expected an object")
        # the object itself, and (gemma3) one object per layer type inside it
        for params in [v or {}, *(s for s in (v or {}).values() if isinstance(s, dict))]:
            for k2 in ("rope_theta", "partial_rotary_factor"):
                x = params.get(k2)
                if x is not None and (not is_number(x) or x <= 0):
                    bad(f"{key}.{k2}", x, "expected a finite number > 0")
    eos = get("eos_token_id")
    for e in eos if isinstance(eos, (list, tuple)) else [eos]:
        if e is not None and (not is_integer(e) or e < 0):
            bad("eos_token_id", eos, "expected a token id or a list of them")
    bos = get("bos_token_id")
    if bos is not None and (not is_integer(bos) or bos < 0):
        bad("bos_token_id", bos, "expected a token id")
    for key in ("layer_types", "no_rope_layers"):
        v = get(key)
        if v is not None and not isinstance(v, (list, tuple)):
            bad(key, v, "expected a list")
    for key in ("hidden_activation", "hidden_act", "activation_function", "activation"):
        act = get(key)
        if act is not None and not isinstance(act, str):
            bad(key, act, "expected the name of an activation")


def _family_fields(model_type: str, get) -> dict:
    """The DecoderConfig fields of the families outside the llama mould; LutcError (naming the
    model type) for the variants lutc does not build."""
    def refuse(what: str):
        raise LutcError(f"{model_type}: {what} is not supported yet")

    if model_type not in LAYERNORM_FAMILIES:
        return {}
    out: dict = {"norm": "layer"}
    if model_type == "gpt_neox":
        out.update(gated_mlp=False, qkv_layout="per_head",
                   parallel_residual=bool(get("use_parallel_residual", True)),
                   attention_bias=bool(get("attention_bias", True)))
    elif model_type == "stablelm":
        if get("qk_layernorm"):
            refuse("per-head q/k LayerNorm (qk_layernorm)")
        out.update(parallel_residual=bool(get("use_parallel_residual", False)))
    elif model_type == "gpt2":
        if get("scale_attn_by_inverse_layer_idx") or not get("scale_attn_weights", True):
            refuse("attention scaling other than 1/sqrt(head_dim)")
        out.update(gated_mlp=False, position_embedding="learned", tie_word_embeddings=True,
                   num_kv_heads=int(get("num_attention_heads")))
    elif model_type == "opt":
        if not get("do_layer_norm_before", True):
            refuse("LayerNorm after the sublayers (do_layer_norm_before=False)")
        if get("word_embed_proj_dim") not in (None, get("hidden_size")):
            refuse("project_in/project_out (word_embed_proj_dim != hidden_size)")
        out.update(gated_mlp=False, position_embedding="learned",
                   num_kv_heads=int(get("num_attention_heads")))
    elif model_type == "falcon":
        if get("alibi"):
            refuse("ALiBi positions")
        new_arch = bool(get("new_decoder_architecture", False))
        heads = int(get("num_attention_heads"))
        kvh = int(get("num_kv_heads") or heads) if new_arch else \
            (1 if get("multi_query", True) else heads)
        out.update(gated_mlp=False, num_kv_heads=kvh,
                   qkv_layout="grouped" if new_arch else
                   "stacked" if get("multi_query", True) else "per_head",
                   parallel_residual=new_arch or bool(get("parallel_attn", True)))
    elif model_type == "cohere":
        if get("use_qk_norm"):
            refuse("q/k LayerNorm (use_qk_norm)")
        out.update(parallel_residual=True, rope_interleaved=True,
                   logits_scaling=1.0 / float(get("logit_scale") or 1.0))
    return out
