"""The IR of one decoder chunk: C token rows in, C rows of logits out, the KV cache updated.

    @main(tokens: i64[C], positions: i64[C], rows: i64[1], kv_cache: f32[L, 2, KVH, T, D])
        -> logits f32[C, V]

One compiled function serves every prompt length and every decode step (docs/design.md,
"Generation"): `rows[0]` = R <= C says how many rows are real, and the generated C loops,
LUT GEMMs and attention cover R rows only (the function carries `lutc.rows_arg` /
`lutc.row_args`, read by the C emitter). A prompt longer than C runs as several calls. The KV
cache is an argument the caller owns and keeps between calls; `lut.kv_attention` appends each
chunk's keys/values in place, so nothing is copied per step and attention work follows the
current context length.

The graph is the transformers reference implementation of the supported families
(config.py), written with lutc's graph builder: linear layers whose weight is a
`QuantizedWeight` become `lut.dequantize` + matmul (lowered to LUT mpGEMM by the passes),
float weights stay float (or are quantized when a `WeightSpec` is given).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, ModuleOp, f32, i64

from lutc.compiler.codegen.emit_c import ROW_ARGS_ATTR, ROWS_ARG_ATTR
from lutc.compiler.frontends.graph_builder import GraphBuilder
from lutc.compiler.frontends.quantize import QuantizedWeight, WeightSpec, quantize
from lutc.compiler.imported_model import ImportedModel, TensorSpec
from lutc.compiler.llm.config import DecoderConfig
from lutc.compiler.weight_store import WeightStore
from lutc.dialects.attention_ops import KvAttentionOp
from lutc.runtime.errors import LutcError

Weight = np.ndarray | QuantizedWeight


def rope_tables(cfg: DecoderConfig, max_context: int) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [T, D/2] of position * theta^(-2i/D) (Su et al., RoFormer; transformers'
    default rotary embedding, computed in float64 then rounded)."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, d, 2, dtype=np.int64).astype(np.float32) / d))
    angles = np.arange(max_context, dtype=np.float32)[:, None] * inv_freq[None, :].astype(np.float32)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


class DecoderGraph:
    """Builds the chunk function of a decoder from its config and weights.

    `weights` maps transformers' parameter names ("model.layers.0.self_attn.q_proj.weight",
    ...) to float arrays [out, in] or QuantizedWeights. `quantize_spec` quantizes float 2-D
    linear weights (not embeddings or norms); None keeps them as they are.
    Raises LutcError naming a missing or mis-shaped tensor."""

    def __init__(self, cfg: DecoderConfig, weights: Mapping[str, Weight], chunk: int,
                 max_context: int, quantize_spec: WeightSpec | None = None):
        if not 1 <= chunk <= max_context:
            raise LutcError(f"chunk size {chunk} must be in 1..max_context ({max_context})")
        self.cfg, self.weights, self.chunk, self.max_context = cfg, weights, chunk, max_context
        self.spec = quantize_spec
        self.gb = GraphBuilder(WeightStore())
        self.quantization_report: list[tuple[str, float]] = []

    # -- weights ----------------------------------------------------------------------------
    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> Weight:
        w = self.weights.get(name)
        if w is None:
            raise LutcError(f"the model has no tensor '{name}'")
        if not isinstance(w, (np.ndarray, QuantizedWeight)) and hasattr(w, "codes"):
            # a reader's own quantized-weight record (e.g. the GGUF reader's): same fields
            w = QuantizedWeight(w.codes, w.scales, w.zeros, w.bits, w.group, w.ternary)
        got = w.codes.shape if isinstance(w, QuantizedWeight) else np.shape(w)
        if shape is not None and tuple(got) != tuple(shape):
            raise LutcError(f"tensor '{name}' has shape {list(got)}, expected {list(shape)}")
        return w

    def float_tensor(self, name: str, shape=None) -> np.ndarray:
        w = self.tensor(name, shape)
        return w.dequantize() if isinstance(w, QuantizedWeight) else np.asarray(w, np.float32)

    def linear(self, x, name: str, n_out: int, n_in: int):
        w = self.tensor(name + ".weight", (n_out, n_in))
        bias = self.weights.get(name + ".bias")
        b = None if bias is None else self.gb.weight(np.asarray(bias, np.float32), name + ".bias")
        if isinstance(w, np.ndarray) and self.spec is not None:
            qw = quantize(np.asarray(w, np.float32), self.spec)
            from lutc.compiler.frontends.quantize import relative_error

            self.quantization_report.append((name, relative_error(np.asarray(w), qw)))
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

    def rope(self, x, cos, sin):
        """transformers' rotate_half RoPE on x [C, heads, D] with cos/sin [C, 1, D/2]."""
        gb = self.gb
        c, h, d = x.type.get_shape()
        half = d // 2
        x1 = gb.slice(x, [0, 0, 0], [c, h, half])
        x2 = gb.slice(x, [0, 0, half], [c, h, half])
        o1 = gb.map(lambda s, a, b, co, si: s.sub(s.mul(a, co), s.mul(b, si)), [x1, x2, cos, sin])
        o2 = gb.map(lambda s, a, b, co, si: s.add(s.mul(b, co), s.mul(a, si)), [x1, x2, cos, sin])
        return gb.concat([o1, o2], 2)

    def mlp(self, h, prefix: str):
        cfg, gb = self.cfg, self.gb
        gate = self.linear(h, prefix + "gate_proj", cfg.intermediate_size, cfg.hidden_size)
        up = self.linear(h, prefix + "up_proj", cfg.intermediate_size, cfg.hidden_size)
        if cfg.activation == "silu":
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
        h_, kvh, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        hid = cfg.hidden_size
        cache_shape = (cfg.num_layers, 2, kvh, self.max_context, d)
        tokens = gb.add_input((c,), np.int64)
        positions = gb.add_input((c,), np.int64)
        rows = gb.add_input((1,), np.int64)
        cache = gb.add_input(cache_shape, np.float32)

        embed = self.float_tensor("model.embed_tokens.weight", (cfg.vocab_size, hid))
        x = gb.gather(gb.weight(embed, "model.embed_tokens.weight"), tokens, 0)
        if cfg.embed_scale != 1.0:
            scale = float(np.float32(cfg.embed_scale))
            x = gb.map(lambda s, v: s.mul(v, s.const(scale, f32)), [x])
        cos_t, sin_t = rope_tables(cfg, self.max_context)
        cos = gb.reshape(gb.gather(gb.weight(cos_t, "rope.cos"), positions, 0), (c, 1, d // 2))
        sin = gb.reshape(gb.gather(gb.weight(sin_t, "rope.sin"), positions, 0), (c, 1, d // 2))

        for layer in range(cfg.num_layers):
            p = f"model.layers.{layer}."
            h = self.rms_norm(x, p + "input_layernorm.weight", hid)
            q = gb.reshape(self.linear(h, p + "self_attn.q_proj", h_ * d, hid), (c, h_, d))
            k = gb.reshape(self.linear(h, p + "self_attn.k_proj", kvh * d, hid), (c, kvh, d))
            v = gb.reshape(self.linear(h, p + "self_attn.v_proj", kvh * d, hid), (c, kvh, d))
            if cfg.qk_norm:
                q = self.rms_norm(q, p + "self_attn.q_norm.weight", d)
                k = self.rms_norm(k, p + "self_attn.k_norm.weight", d)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            attn = gb._insert(KvAttentionOp(q, k, v, cache, positions, rows, layer,
                                            cfg.attention_scale, cfg.sliding_window))
            o = self.linear(gb.reshape(attn, (c, h_ * d)), p + "self_attn.o_proj", hid, h_ * d)
            x = gb.binary("add", x, o)
            h = self.rms_norm(x, p + "post_attention_layernorm.weight", hid)
            x = gb.binary("add", x, self.mlp(h, p + "mlp."))

        x = self.rms_norm(x, "model.norm.weight", hid)
        head = "model.embed_tokens" if cfg.tie_word_embeddings or "lm_head.weight" not in \
            self.weights else "lm_head"
        logits = self.linear(x, head, cfg.vocab_size, hid)
        module = gb.finish([logits])
        fn = next(iter(module.ops))
        fn.attributes[ROWS_ARG_ATTR] = IntegerAttr(2, i64)
        fn.attributes[ROW_ARGS_ATTR] = ArrayAttr([IntegerAttr(0, i64), IntegerAttr(1, i64)])
        inputs = [TensorSpec("tokens", (c,), np.dtype(np.int64)),
                  TensorSpec("positions", (c,), np.dtype(np.int64)),
                  TensorSpec("rows", (1,), np.dtype(np.int64)),
                  TensorSpec("kv_cache", cache_shape, np.dtype(np.float32))]
        outputs = [TensorSpec("logits", (c, cfg.vocab_size), np.dtype(np.float32))]
        return ImportedModel(module, gb.weights, inputs, outputs, self.quantization_report)


def build_decoder(cfg: DecoderConfig, weights: Mapping[str, Weight], chunk: int,
                  max_context: int, quantize_spec: WeightSpec | None = None) -> ModuleOp:
    return DecoderGraph(cfg, weights, chunk, max_context, quantize_spec).build()
