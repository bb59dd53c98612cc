"""The IR of one decoder chunk: C token rows in, C rows of logits out, the KV cache updated.

    @main(tokens: i64[C], positions: i64[C], rows: i64[1], kv_cache: f32|f16[L, 2, KVH, T, D],
          logit_rows: i64[1], logit_index: i64[C]) -> logits f32[C, V]

One compiled function serves every prompt length and every decode step (docs/design.md,
"Generation"): `rows[0]` = R <= C says how many rows are real, and the generated C loops,
LUT GEMMs and attention cover R rows only (the function carries `lutc.rows_arg` /
`lutc.row_args`, read by the C emitter). The final norm and the LM head run on
`logit_rows[0]` = S <= C rows only: logits row i is that of token row `logit_index[i]`
(clamped to 0..C-1; `lutc.select_rows`). Generation asks for the last row alone (S = 1,
index R - 1), so a 128-token prefill does not pay 128 rows of the vocabulary-sized head;
perplexity asks for all R. A prompt longer than C runs as several calls. The KV
cache is an argument the caller owns and keeps between calls; `lut.kv_attention` appends each
chunk's keys/values in place, so nothing is copied per step and attention work follows the
current context length.

The graph is the transformers reference implementation of the supported families
(config.py), written with lutc's graph builder: linear layers whose weight is a
`QuantizedWeight` become `lut.dequantize` + matmul (lowered to LUT mpGEMM by the passes),
float weights stay float (or are quantized when a `WeightSpec` is given).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, ModuleOp, f16, f32, i64

from lutc.compiler.codegen.emit_c import ROW_ARGS_ATTR, ROWS_ARG_ATTR, SELECT_ROWS_ATTR, tag_layer
from lutc.compiler.frontends.graph_builder import GraphBuilder
from lutc.compiler.frontends.quantize import (QuantizedWeight, WeightSpec, finite_weight,
                                              quantize_with_error)
from lutc.compiler.imported_model import ImportedModel, TensorSpec
from lutc.compiler.llm.config import KV_CACHE_DTYPES, DecoderConfig
from lutc.compiler.weight_store import WeightStore
from lutc.dialects.attention_ops import KvAttentionOp
from lutc.runtime.errors import LutcError

Weight = np.ndarray | QuantizedWeight


def rope_tables(cfg: DecoderConfig, max_context: int, theta: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [T, R/2] of position * theta^(-2i/R), R = the rotary dims (head_dim, or
    partial_rotary_factor * head_dim) (Su et al., RoFormer; transformers' default rotary
    embedding, in float32 as transformers computes it)."""
    d = cfg.rotary_dim
    theta = cfg.rope_theta if theta is None else theta
    inv_freq = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.int64).astype(np.float32) / d))
    angles = np.arange(max_context, dtype=np.float32)[:, None] * inv_freq[None, :].astype(np.float32)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _take_rows(w: Weight, rows) -> Weight:
    """Rows (a slice or an index array) of a float [out, in] array (or a 1-D bias) or of a
    QuantizedWeight (codes, scales and zeros are all row-wise, so the selection is exact)."""
    if isinstance(w, np.ndarray):
        return np.ascontiguousarray(w[rows])
    if hasattr(w, "take_rows") and isinstance(rows, slice):
        return w.take_rows(rows)
    zeros = None if w.zeros is None else np.ascontiguousarray(w.zeros[rows])
    return dataclasses.replace(w, codes=np.ascontiguousarray(w.codes[rows]),
                               scales=np.ascontiguousarray(w.scales[rows]), zeros=zeros)


def qkv_rows(cfg: DecoderConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of q, k and v in a fused qkv projection, per `cfg.qkv_layout`: stacked
    q (H*D) | k (KVH*D) | v (KVH*D) (phi3, gpt2, falcon multi-query); per_head [H, 3, D]
    (gpt_neox, falcon); grouped [KVH, H/KVH + 2, D] (falcon's new decoder architecture)."""
    h, kvh, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    r = np.arange(d)
    if cfg.qkv_layout == "per_head":
        base = np.arange(h)[:, None] * 3 * d + r[None, :]
        return base.ravel(), (base + d).ravel(), (base + 2 * d).ravel()
    if cfg.qkv_layout == "grouped":
        per = h // kvh + 2
        g = np.arange(kvh)[:, None, None] * per * d
        q = (g + np.arange(per - 2)[None, :, None] * d + r[None, None, :]).ravel()
        k = (np.arange(kvh)[:, None] * per * d + (per - 2) * d + r[None, :]).ravel()
        return q, k, k + d
    q = np.arange(h * d)
    return q, h * d + np.arange(kvh * d), (h + kvh) * d + np.arange(kvh * d)


def split_fused(cfg: DecoderConfig, weights: Mapping[str, Weight]) -> Mapping[str, Weight]:
    """Fused projections as the separate ones the graph reads: `qkv_proj` rows (weight and
    bias) split per `qkv_rows`; `gate_up_proj` rows are gate then up (transformers'
    Phi3Attention / Phi3MLP slice them the same way). Weights without fused tensors pass as
    they are."""
    if not any(".qkv_proj." in n or ".gate_up_proj." in n for n in weights):
        return weights
    q, k, v = qkv_rows(cfg)
    inter = cfg.intermediate_size
    parts = {"self_attn.qkv_proj": (("self_attn.q_proj", q), ("self_attn.k_proj", k),
                                    ("self_attn.v_proj", v)),
             "mlp.gate_up_proj": (("mlp.gate_proj", slice(0, inter)),
                                  ("mlp.up_proj", slice(inter, 2 * inter)))}
    expected = {"self_attn.qkv_proj": (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim,
                "mlp.gate_up_proj": 2 * inter}
    out = {}
    for name, w in weights.items():
        stem, _, suffix = name.rpartition(".")
        fused = next((f for f in parts if stem.endswith("." + f)), None)
        if fused is None:
            out[name] = w
            continue
        n_rows = (w.codes if hasattr(w, "codes") else np.asarray(w)).shape[0]
        if n_rows != expected[fused]:
            raise LutcError(f"tensor '{name}' has {n_rows} rows; the config's head counts and "
                            f"sizes say it should have {expected[fused]}")
        base = stem[:-len(fused)]
        for part, rows in parts[fused]:
            out[f"{base}{part}.{suffix}"] = _take_rows(w, rows)
    return out


# transformers' parameter names of the families outside the llama mould -> the llama names the
# graph reads (applied in order, first occurrence)
_RENAMES = {
    "gpt_neox": (("gpt_neox.embed_in.", "model.embed_tokens."),
                 ("gpt_neox.final_layer_norm.", "model.norm."), ("gpt_neox.", "model."),
                 (".attention.query_key_value.", ".self_attn.qkv_proj."),
                 (".attention.dense.", ".self_attn.o_proj."),
                 (".mlp.dense_h_to_4h.", ".mlp.up_proj."), (".mlp.dense_4h_to_h.", ".mlp.down_proj."),
                 ("embed_out.", "lm_head.")),
    "gpt2": (("transformer.wte.", "model.embed_tokens."),
             ("transformer.wpe.", "model.embed_positions."), ("transformer.ln_f.", "model.norm."),
             ("transformer.h.", "model.layers."), (".ln_1.", ".input_layernorm."),
             (".ln_2.", ".post_attention_layernorm."), (".attn.c_attn.", ".self_attn.qkv_proj."),
             (".attn.c_proj.", ".self_attn.o_proj."), (".mlp.c_fc.", ".mlp.up_proj."),
             (".mlp.c_proj.", ".mlp.down_proj.")),
    "opt": (("model.decoder.final_layer_norm.", "model.norm."), ("model.decoder.", "model."),
            (".self_attn.out_proj.", ".self_attn.o_proj."),
            (".self_attn_layer_norm.", ".input_layernorm."),
            (".final_layer_norm.", ".post_attention_layernorm."), (".fc1.", ".mlp.up_proj."),
            (".fc2.", ".mlp.down_proj.")),
    "falcon": (("transformer.word_embeddings.", "model.embed_tokens."),
               ("transformer.ln_f.", "model.norm."), ("transformer.h.", "model.layers."),
               (".ln_attn.", ".input_layernorm."), (".ln_mlp.", ".post_attention_layernorm."),
               (".self_attention.query_key_value.", ".self_attn.qkv_proj."),
               (".self_attention.dense.", ".self_attn.o_proj."),
               (".mlp.dense_h_to_4h.", ".mlp.up_proj."), (".mlp.dense_4h_to_h.", ".mlp.down_proj.")),
}
_CONV1D = (".self_attn.qkv_proj.weight", ".self_attn.o_proj.weight", ".mlp.up_proj.weight",
           ".mlp.down_proj.weight")


def canonical_weights(cfg: DecoderConfig, weights: Mapping[str, Weight]) -> Mapping[str, Weight]:
    """A family's tensors under the llama names the graph reads: renamed (_RENAMES), gpt2's
    Conv1D weights [in, out] transposed to [out, in], OPT's position table without its offset
    of 2 rows, cohere's q/k rows permuted per head so that its interleaved RoPE pairs (2i, 2i+1)
    become rotate_half's (i, i + D/2) (q.k is unchanged: q and k move alike); then fused
    projections split (split_fused)."""
    renames = _RENAMES.get(cfg.model_type, ())
    out = {}
    for name, w in weights.items():
        for old, new in renames:
            if old in name:
                name = name.replace(old, new, 1)
        if cfg.model_type == "gpt2" and name.endswith(_CONV1D):
            if not isinstance(w, np.ndarray):
                raise LutcError(f"gpt2: tensor '{name}' is quantized; its Conv1D layout [in, out] "
                                f"can only be transposed as a float array")
            w = np.ascontiguousarray(np.asarray(w).T)
        if cfg.model_type == "opt" and name == "model.embed_positions.weight":
            w = np.asarray(w)[2:]
        if cfg.rope_interleaved and (".self_attn.q_proj." in name or ".self_attn.k_proj." in name):
            heads = cfg.num_heads if ".q_proj." in name else cfg.num_kv_heads
            d, rd = cfg.head_dim, cfg.rotary_dim
            within = np.concatenate([np.arange(0, rd, 2), np.arange(1, rd, 2), np.arange(rd, d)])
            w = _take_rows(w, (np.arange(heads)[:, None] * d + within[None, :]).ravel())
        out[name] = w
    return split_fused(cfg, out)


def _gelu_tanh(s, g):
    inner = s.mul(s.const(0.7978845608028654, f32),
                  s.add(g, s.mul(s.const(0.044715, f32), s.mul(g, s.mul(g, g)))))
    return s.mul(s.mul(s.const(0.5, f32), g), s.add(s.const(1.0, f32), s.tanh(inner)))


_ACT = {  # the activations of the ungated MLPs, on one scalar of the map body
    "silu": lambda s, g: s.mul(g, s.sigmoid(g)),
    "relu": lambda s, g: s.relu(g),
    "gelu": lambda s, g: s.mul(s.mul(s.const(0.5, f32), g),
                               s.add(s.const(1.0, f32),
                                     s.erf(s.mul(g, s.const(0.7071067811865476, f32))))),
    "gelu_tanh": _gelu_tanh,
}


class DecoderGraph:
    """Builds the chunk function of a decoder from its config and weights.

    `weights` maps transformers' parameter names ("model.layers.0.self_attn.q_proj.weight",
    ...) to float arrays [out, in] or QuantizedWeights. `quantize_spec` quantizes float 2-D
    linear weights (not embeddings or norms); None keeps them as they are. `kv_cache`: the
    cache's element type, "f32" or "f16" (KV_CACHE_DTYPES).
    Raises LutcError naming a missing or mis-shaped tensor."""

    def __init__(self, cfg: DecoderConfig, weights: Mapping[str, Weight], chunk: int,
                 max_context: int, quantize_spec: WeightSpec | None = None,
                 kv_cache: str = "f32"):
        if not 1 <= chunk <= max_context:
            raise LutcError(f"chunk size {chunk} must be in 1..max_context ({max_context})")
        if kv_cache not in KV_CACHE_DTYPES:
            raise LutcError(f"kv_cache must be one of {', '.join(KV_CACHE_DTYPES)}, "
                            f"got {kv_cache!r}")
        self.kv_cache = kv_cache
        self.cfg, self.chunk, self.max_context = cfg, chunk, max_context
        self.weights = canonical_weights(cfg, weights)
        self.spec = quantize_spec
        self.gb = GraphBuilder(WeightStore())
        self.quantization_report: list[tuple[str, float]] = []
        self._finite: set[str] = set()  # tensors checked by finite_weight

    # -- weights ----------------------------------------------------------------------------
    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> Weight:
        w = self.weights.get(name)
        if w is None:
            raise LutcError(f"the model has no tensor '{name}'")
        got = w.codes.shape if isinstance(w, QuantizedWeight) else np.shape(w)
        if shape is not None and tuple(got) != tuple(shape):
            raise LutcError(f"tensor '{name}' has shape {list(got)}, expected {list(shape)}")
        if name not in self._finite:  # a tied embedding is read twice: checked once
            if not finite_weight(w):
                raise LutcError(f"tensor '{name}' has non-finite values (NaN or infinity)")
            self._finite.add(name)
        return w

    def float_tensor(self, name: str, shape=None) -> np.ndarray:
        w = self.tensor(name, shape)
        return w.dequantize() if isinstance(w, QuantizedWeight) else np.asarray(w, np.float32)

    def linear(self, x, name: str, n_out: int, n_in: int):
        w = self.tensor(name + ".weight", (n_out, n_in))
        bias = self.weights.get(name + ".bias")
        b = None if bias is None else self.gb.weight(np.asarray(bias, np.float32), name + ".bias")
        if isinstance(w, np.ndarray) and self.spec is not None:
            qw, err = quantize_with_error(np.asarray(w, np.float32), self.spec)
            self.quantization_report.append((name, err))
            w = qw
        if isinstance(w, QuantizedWeight):
            return self.gb.quantized_linear(x, w, b, hint=name, node=name)
        return self.gb.float_linear(x, w, b, hint=name + ".weight")

    # -- blocks -----------------------------------------------------------------------------
    def rms_norm(self, x, name: str, dim: int):
        """x / sqrt(mean(x^2) + eps) * w over the last axis (w as 1 + w for gemma)."""
        gb, eps = self.gb, self.cfg.rms_norm_eps
        w = self.float_tensor(name, (dim,))
        if self.cfg.norm_plus_one:
            w = (1.0 + w.astype(np.float32)).astype(np.float32)
        ms = gb.reduce(gb.map(lambda s, v: s.mul(v, v), [x]), [-1], "mean", keepdims=True)
        inv = gb.map(lambda s, m: s.rsqrt(s.add(m, s.const(eps, f32))), [ms])
        wt = gb.weight(w, name)
        return gb.map(lambda s, v, r, g: s.mul(s.mul(v, r), g), [x, inv, wt])

    def layer_norm(self, x, name: str, dim: int):
        """(x - mean) / sqrt(var + eps) * w (+ b when the model stores one) over the last axis
        (torch's LayerNorm: the biased variance)."""
        gb, eps = self.gb, self.cfg.rms_norm_eps
        w = gb.weight(self.float_tensor(name, (dim,)), name)
        mean = gb.reduce(x, [-1], "mean", keepdims=True)
        xc = gb.map(lambda s, v, m: s.sub(v, m), [x, mean])
        var = gb.reduce(gb.map(lambda s, v: s.mul(v, v), [xc]), [-1],
                        "mean", keepdims=True)
        inv = gb.map(lambda s, m: s.rsqrt(s.add(m, s.const(eps, f32))), [var])
        bias_name = name[:-len("weight")] + "bias"
        if bias_name in self.weights:
            b = gb.weight(self.float_tensor(bias_name, (dim,)), bias_name)
            return gb.map(lambda s, v, r, g, c: s.add(s.mul(s.mul(v, r), g), c),
                          [xc, inv, w, b])
        return gb.map(lambda s, v, r, g: s.mul(s.mul(v, r), g), [xc, inv, w])

    def norm(self, x, name: str, dim: int):
        """The model's block norm: RMSNorm or LayerNorm (cfg.norm)."""
        if self.cfg.norm == "layer":
            return self.layer_norm(x, name, dim)
        return self.rms_norm(x, name, dim)

    def rope(self, x, cos, sin):
        """transformers' rotate_half RoPE on x [C, heads, D] with cos/sin [C, 1, R/2]: the
        first R dims rotate, the rest pass through (partial rotary)."""
        gb = self.gb
        c, h, d = x.type.get_shape()
        rd = self.cfg.rotary_dim
        half = rd // 2
        x1 = gb.slice(x, [0, 0, 0], [c, h, half])
        x2 = gb.slice(x, [0, 0, half], [c, h, half])
        o1 = gb.map(lambda s, a, b, co, si: s.sub(s.mul(a, co), s.mul(b, si)), [x1, x2, cos, sin])
        o2 = gb.map(lambda s, a, b, co, si: s.add(s.mul(b, co), s.mul(a, si)), [x1, x2, cos, sin])
        parts = [o1, o2] if rd == d else [o1, o2, gb.slice(x, [0, 0, rd], [c, h, d - rd])]
        return gb.concat(parts, 2)

    def scaled(self, x, factor: float):
        if factor == 1.0:
            return x
        f = float(np.float32(factor))
        return self.gb.map(lambda s, v: s.mul(v, s.const(f, f32)), [x])

    def attention(self, h, layer: int, rope_cs):
        """Self-attention of one layer on the normed input h [C, hidden] -> [C, hidden]."""
        cfg, gb, c = self.cfg, self.gb, self.chunk
        h_, kvh, d, hid = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.hidden_size
        p = f"model.layers.{layer}.self_attn."
        q = self.linear(h, p + "q_proj", h_ * d, hid)
        k = self.linear(h, p + "k_proj", kvh * d, hid)
        if cfg.qk_norm == "full":  # olmo2: over the whole projection, before the head split
            q = self.rms_norm(q, p + "q_norm.weight", h_ * d)
            k = self.rms_norm(k, p + "k_norm.weight", kvh * d)
        q, k = gb.reshape(q, (c, h_, d)), gb.reshape(k, (c, kvh, d))
        v = gb.reshape(self.linear(h, p + "v_proj", kvh * d, hid), (c, kvh, d))
        if cfg.qk_norm == "head":
            q = self.rms_norm(q, p + "q_norm.weight", d)
            k = self.rms_norm(k, p + "k_norm.weight", d)
        if cfg.uses_rope(layer):
            cos, sin = rope_cs[cfg.window(layer) != 0 and cfg.rope_local_theta != 0]
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
        attn = gb._insert(KvAttentionOp(q, k, v, self._cache, self._positions, self._rows, layer,
                                        cfg.attention_scale, cfg.window(layer), cfg.attn_softcap))
        return self.linear(gb.reshape(attn, (c, h_ * d)), p + "o_proj", hid, h_ * d)

    def sublayer(self, x, out, post_norm: str):
        """x + out, with out normed first (olmo2, gemma2 post norms) and scaled (granite)."""
        if self.cfg.norm_placement != "pre":
            out = self.rms_norm(out, post_norm, self.cfg.hidden_size)
        return self.gb.binary("add", x, self.scaled(out, self.cfg.residual_multiplier))

    def mlp(self, h, prefix: str):
        cfg, gb = self.cfg, self.gb
        up = self.linear(h, prefix + "up_proj", cfg.intermediate_size, cfg.hidden_size)
        if not cfg.gated_mlp:  # down(act(up(h)))
            act = gb.map(lambda s, u: _ACT[cfg.activation](s, u), [up])
            return self.linear(act, prefix + "down_proj", cfg.hidden_size, cfg.intermediate_size)
        gate = self.linear(h, prefix + "gate_proj", cfg.intermediate_size, cfg.hidden_size)
        if cfg.activation in ("gelu", "relu"):
            act = gb.map(lambda s, g, u: s.mul(_ACT[cfg.activation](s, g), u), [gate, up])
        elif cfg.activation == "silu":
            act = gb.map(lambda s, g, u: s.mul(s.mul(g, s.sigmoid(g)), u), [gate, up])
        else:  # gelu, tanh approximation
            def gelu_mul(s, g, u):
                inner = s.mul(s.const(0.7978845608028654, f32),
                              s.add(g, s.mul(s.const(0.044715, f32), s.mul(g, s.mul(g, g)))))
                half = s.mul(s.const(0.5, f32), g)
                return s.mul(s.mul(half, s.add(s.const(1.0, f32), s.tanh(inner))), u)
            act = gb.map(gelu_mul, [gate, up])
        return self.linear(act, prefix + "down_proj", cfg.hidden_size, cfg.intermediate_size)

    # -- the function -----------------------------------------------------------------------
    def build(self) -> ImportedModel:
        cfg, gb, c = self.cfg, self.gb, self.chunk
        kvh, d, hid = cfg.num_kv_heads, cfg.head_dim, cfg.hidden_size
        cache_shape = (cfg.num_layers, 2, kvh, self.max_context, d)
        tokens = gb.add_input((c,), np.int64)
        positions = gb.add_input((c,), np.int64)
        rows = gb.add_input((1,), np.int64)
        cache = gb.add_input(cache_shape, np.float32, "the KV cache",
                             element=f16 if self.kv_cache == "f16" else f32)
        gb.add_input((1,), np.int64)  # logit_rows: read by the C emitter (lutc.select_rows)
        logit_index = gb.add_input((c,), np.int64)

        self._cache, self._positions, self._rows = cache, positions, rows

        embed = self.float_tensor("model.embed_tokens.weight", (cfg.vocab_size, hid))
        x = gb.gather(gb.weight(embed, "model.embed_tokens.weight"), tokens, 0)
        x = self.scaled(x, cfg.embed_scale)
        if cfg.position_embedding == "learned":  # gpt2 / opt: a table row per position
            table = self.float_tensor("model.embed_positions.weight")
            if table.ndim != 2 or table.shape[1] != hid or table.shape[0] < self.max_context:
                raise LutcError(f"{cfg.model_type}: the position table has shape "
                                f"{list(table.shape)}; max_context {self.max_context} needs "
                                f"[>= {self.max_context}, {hid}]")
            pos = gb.gather(gb.weight(np.ascontiguousarray(table[:self.max_context]),
                                      "model.embed_positions.weight"), positions, 0)
            x = gb.binary("add", x, pos)
        rope_cs = {}  # False: rope_theta; True: the sliding-window layers' rope_local_theta
        for local in {cfg.window(i) != 0 and cfg.rope_local_theta != 0
                      for i in range(cfg.num_layers) if cfg.uses_rope(i)}:
            cos_t, sin_t = rope_tables(cfg, self.max_context,
                                       cfg.rope_local_theta if local else None)
            tag = "rope.local." if local else "rope."
            r = cfg.rotary_dim // 2
            rope_cs[local] = (
                gb.reshape(gb.gather(gb.weight(cos_t, tag + "cos"), positions, 0), (c, 1, r)),
                gb.reshape(gb.gather(gb.weight(sin_t, tag + "sin"), positions, 0), (c, 1, r)))

        for layer in range(cfg.num_layers):
            start = gb.block.last_op  # tagged below: the C emitter shares one layer body
            p = f"model.layers.{layer}."
            if cfg.parallel_residual:  # x + attn(ln1(x)) + mlp(ln2(x)), ln2 = ln1 if not stored
                h1 = self.norm(x, p + "input_layernorm.weight", hid)
                ln2 = p + "post_attention_layernorm.weight"
                h2 = self.norm(x, ln2, hid) if ln2 in self.weights else h1
                both = gb.binary("add", self.attention(h1, layer, rope_cs), self.mlp(h2, p + "mlp."))
                x = gb.binary("add", x, self.scaled(both, cfg.residual_multiplier))
                tag_layer(gb.block, start, layer)
                continue
            post = cfg.norm_placement == "post"
            h = x if post else self.norm(x, p + "input_layernorm.weight", hid)
            x = self.sublayer(x, self.attention(h, layer, rope_cs),
                              p + "post_attention_layernorm.weight")
            if post:
                h = x
            elif cfg.norm_placement == "sandwich":
                h = self.rms_norm(x, p + "pre_feedforward_layernorm.weight", hid)
            else:
                h = self.norm(x, p + "post_attention_layernorm.weight", hid)
            x = self.sublayer(x, self.mlp(h, p + "mlp."), p + "post_feedforward_layernorm.weight")
            tag_layer(gb.block, start, layer)

        last = c - 1  # an index outside 0..C-1 must not read outside x
        logit_index = gb.map(lambda s, v: s.select(
            s.cmp("lt", v, s.const(0, i64)), s.const(0, i64),
            s.select(s.cmp("gt", v, s.const(last, i64)), s.const(last, i64), v)), [logit_index])
        x = self.norm(gb.gather(x, logit_index, 0), "model.norm.weight", hid)
        head = "model.embed_tokens" if cfg.tie_word_embeddings or "lm_head.weight" not in \
            self.weights else "lm_head"
        logits = self.scaled(self.linear(x, head, cfg.vocab_size, hid), 1.0 / cfg.logits_scaling)
        if cfg.final_softcap:  # gemma2: cap * tanh(logits / cap)
            cap = float(np.float32(cfg.final_softcap))
            logits = gb.map(lambda s, v: s.mul(s.tanh(s.mul(v, s.const(1.0 / cap, f32))),
                                               s.const(cap, f32)), [logits])
        module = gb.finish([logits])
        fn = next(iter(module.ops))
        fn.attributes[ROWS_ARG_ATTR] = IntegerAttr(2, i64)
        fn.attributes[ROW_ARGS_ATTR] = ArrayAttr([IntegerAttr(0, i64), IntegerAttr(1, i64)])
        fn.attributes[SELECT_ROWS_ATTR] = ArrayAttr([IntegerAttr(4, i64), IntegerAttr(5, i64)])
        inputs = [TensorSpec("tokens", (c,), np.dtype(np.int64)),
                  TensorSpec("positions", (c,), np.dtype(np.int64)),
                  TensorSpec("rows", (1,), np.dtype(np.int64)),
                  TensorSpec("kv_cache", cache_shape, KV_CACHE_DTYPES[self.kv_cache]),
                  TensorSpec("logit_rows", (1,), np.dtype(np.int64)),
                  TensorSpec("logit_index", (c,), np.dtype(np.int64))]
        outputs = [TensorSpec("logits", (c, cfg.vocab_size), np.dtype(np.float32))]
        return ImportedModel(module, gb.weights, inputs, outputs, self.quantization_report)


def build_decoder(cfg: DecoderConfig, weights: Mapping[str, Weight], chunk: int,
                  max_context: int, quantize_spec: WeightSpec | None = None) -> ModuleOp:
    return DecoderGraph(cfg, weights, chunk, max_context, quantize_spec).build()
