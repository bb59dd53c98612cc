"""Attention ops: `lut.kv_attention` (over a KV cache the model owns) and `lut.attention`
(whole sequences, see AttentionOp).

`lut.kv_attention`: causal grouped-query attention over a KV cache the model owns.

Not a LUT op, but the op that makes one compiled decoder serve every prompt length and every
decode step (docs/design.md, "Generation"): the chunk's keys and values are appended to the
cache in place, and attention reads only the cache rows that exist, so its work follows the
current context length, never the cache's capacity.

    %o = lut.kv_attention %q, %k, %v, %cache, %positions, %rows layer 3 scale 0.125
           : (tensor<CxHxDxf32>, tensor<CxKxDxf32>, tensor<CxKxDxf32>,
              tensor<Lx2xKxTxDxf32>, tensor<Cxi64>, tensor<1xi64>) -> tensor<CxHxDxf32>

Shapes: C chunk rows, H query heads, K = KVH key/value heads (H % K == 0, head h reads kv head
h / (H / K)), D head dim, L layers, T = max_context. `rows[0]` = R is how many of the C rows
are real tokens (1 <= R <= C); `positions[0]` = P is the absolute position of row 0, rows are
consecutive positions. Effect: cache[layer, 0, :, P + r] = k[r], cache[layer, 1, :, P + r] =
v[r] for r < R (P + R <= T), then for r < R
    o[r, h] = sum_{j <= P + r, P + r - j < window} softmax_j(s_j) * V[j],
    s_j = cap * tanh(scale * q[r, h] . K[j] / cap) (cap = softcap, or plain scale * q . K when 0)
Rows r >= R of the result are unspecified. The op writes its cache operand in place: it is
not Pure, and the cache must be a function argument (the generated C receives its pointer).
The cache is f32, or f16 (`tensor<Lx2xKxTxDxf16>`: half the memory and bytes read per step;
k and v are rounded to nearest even on append, scores and sums stay f32; error ~2^-11
relative per cached element, lutrt.h `lutrt_attention_kv_f16`).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    I64,
    Float16Type,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    TensorType,
)
from xdsl.ir import SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType)
    return tuple(typ.get_shape())


@irdl_op_definition
class KvAttentionOp(IRDLOperation):
    name = "lut.kv_attention"
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    cache = operand_def(TensorType)
    positions = operand_def(TensorType)
    rows = operand_def(TensorType)
    layer = prop_def(IntegerAttr[I64])
    scale = prop_def(FloatAttr)
    sliding_window = prop_def(IntegerAttr[I64])
    softcap = prop_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$q `,` $k `,` $v `,` $cache `,` $positions `,` $rows attr-dict `:` "
        "`(` type($q) `,` type($k) `,` type($v) `,` type($cache) `,` type($positions) `,` "
        "type($rows) `)` `->` type($result)"
    )
    irdl_options = (ParsePropInAttrDict(),)

    def __init__(self, q: SSAValue, k: SSAValue, v: SSAValue, cache: SSAValue,
                 positions: SSAValue, rows: SSAValue, layer: int, scale: float,
                 sliding_window: int = 0, softcap: float = 0.0):
        super().__init__(
            operands=[q, k, v, cache, positions, rows],
            properties={
                "layer": IntegerAttr(layer, 64),
                "scale": FloatAttr(scale, Float32Type()),
                "sliding_window": IntegerAttr(sliding_window, 64),
                "softcap": FloatAttr(softcap, Float32Type()),
            },
            result_types=[q.type],
        )

    @property
    def heads(self) -> tuple[int, int, int]:
        """(H, KVH, D)."""
        _, h, d = _shape(self.q)
        return h, _shape(self.k)[1], d

    @property
    def max_context(self) -> int:
        return _shape(self.cache)[3]

    @property
    def f16_cache(self) -> bool:
        return isinstance(self.cache.type.get_element_type(), Float16Type)

    def verify_(self) -> None:
        def fail(msg: str):
            raise VerifyException(f"'{self.name}' op {msg}")

        for what in ("q", "k", "v"):
            typ = getattr(self, what).type
            if not isinstance(typ.get_element_type(), Float32Type):
                fail(f"expects f32 {what}")
        if not isinstance(self.cache.type.get_element_type(), (Float32Type, Float16Type)):
            fail("expects an f32 or f16 cache")
        if len(_shape(self.q)) != 3:
            fail("expects q of rank 3 [C, H, D]")
        c, h, d = _shape(self.q)
        kshape = _shape(self.k)
        if len(kshape) != 3 or kshape[0] != c or kshape[2] != d:
            fail(f"expects k of shape [{c}, KVH, {d}] but got {list(kshape)}")
        kvh = kshape[1]
        if kvh < 1 or h % kvh:
            fail(f"expects the query heads ({h}) to be a multiple of the kv heads ({kvh})")
        if _shape(self.v) != kshape:
            fail(f"expects v of the shape of k {list(kshape)} but got {list(_shape(self.v))}")
        cshape = _shape(self.cache)
        if len(cshape) != 5 or cshape[1] != 2 or cshape[2] != kvh or cshape[4] != d:
            fail(f"expects a cache of shape [L, 2, {kvh}, T, {d}] but got {list(cshape)}")
        if not 0 <= self.layer.value.data < cshape[0]:
            fail(f"layer {self.layer.value.data} is outside the cache's {cshape[0]} layers")
        if cshape[3] < c:
            fail(f"expects the cache to hold at least one chunk ({c} rows), got {cshape[3]}")
        for what, want in (("positions", [c]), ("rows", [1])):
            value = getattr(self, what)
            typ = value.type
            if not isinstance(typ.get_element_type(), IntegerType) or list(_shape(value)) != want:
                fail(f"expects {what} of type tensor<{'x'.join(map(str, want))}xi64>")
        if self.sliding_window.value.data < 0:
            fail("expects a sliding window >= 0 (0: none)")
        if _shape(self.result) != (c, h, d):
            fail(f"expects a result of shape {[c, h, d]}")


# ---- lut.attention: attention on whole sequences (no cache) ------------------------------

CAUSAL_MODES = {0: "none", 1: "bottom-right", 2: "top-left"}


@irdl_op_definition
class AttentionOp(IRDLOperation):
    """`lut.attention`: softmax(scale * Q K^T [+ mask], causal) V on whole sequences, what
    lut-fuse-attention makes of the frontends' matmul-softmax-matmul chains.

        %o = lut.attention %q, %k, %v mask %m {causal = 2 : i64, scale = 0.125 : f32, ...}
               : tensor<BxHxSqxDxf32>, tensor<BxKxSkvxDxf32>, tensor<BxKxSkvxDxf32>,
                 tensor<SqxSkvxf32> -> tensor<BxHxSqxDxf32>

    q [B, H, Sq, D], k and v [B, KVH, Skv, D] (B may be absent: rank 3; H % KVH == 0, query
    head h reads kv head h / (H / KVH)). Per batch element, for query i and key j:
        s = scale * q_i . k_j;  if softcap: s = softcap * tanh(s / softcap);  s += mask[i, j]
    keys outside the causal range are dropped (causal 1: j <= i + Skv - Sq, bottom-right;
    2: j <= i, top-left; 0: all) and, with a sliding window w, those with p - j >= w (p the
    query's position: i + Skv - Sq or i); out_i = softmax(s) . V. The optional mask is
    [Sq, Skv] (shared by the batch) or [B, Sq, Skv]: f32 is added, i1 keeps the keys where
    it is true. A query that sees no key gives zeros. This is lutrt_attention's contract
    (runtime/lutrt.h), called once per batch element."""

    name = "lut.attention"
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    mask = opt_operand_def(TensorType)
    scale = prop_def(FloatAttr)
    causal = prop_def(IntegerAttr[I64])
    sliding_window = prop_def(IntegerAttr[I64])
    softcap = prop_def(FloatAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$q `,` $k `,` $v (`mask` $mask^)? attr-dict `:` type($q) `,` type($k) `,` type($v) "
        "(`,` type($mask)^)? `->` type($result)"
    )
    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())

    def __init__(self, q: SSAValue, k: SSAValue, v: SSAValue, mask: SSAValue | None,
                 scale: float, causal: int = 0, sliding_window: int = 0, softcap: float = 0.0):
        super().__init__(
            operands=[q, k, v, [mask] if mask is not None else []],
            properties={
                "scale": FloatAttr(scale, Float32Type()),
                "causal": IntegerAttr(causal, 64),
                "sliding_window": IntegerAttr(sliding_window, 64),
                "softcap": FloatAttr(softcap, Float32Type()),
            },
            result_types=[q.type],
        )

    @property
    def dims(self) -> tuple[int, int, int, int, int, int]:
        """(B, H, KVH, Sq, Skv, D); B = 1 for rank-3 operands."""
        qs, ks = _shape(self.q), _shape(self.k)
        b = qs[0] if len(qs) == 4 else 1
        return b, qs[-3], ks[-3], qs[-2], ks[-2], qs[-1]

    def verify_(self) -> None:
        def fail(msg: str):
            raise VerifyException(f"'{self.name}' op {msg}")

        for what in ("q", "k", "v"):
            if not isinstance(getattr(self, what).type.get_element_type(), Float32Type):
                fail(f"expects f32 {what}")
        qs, ks, vs = _shape(self.q), _shape(self.k), _shape(self.v)
        if len(qs) not in (3, 4):
            fail(f"expects q of rank 3 [H, Sq, D] or 4 [B, H, Sq, D] but got {list(qs)}")
        want = "[B, KVH, Skv, D]" if len(qs) == 4 else "[KVH, Skv, D]"
        if len(ks) != len(qs) or ks[:-3] != qs[:-3] or ks[-1] != qs[-1]:
            fail(f"expects k of shape {want} with q's batch and D = {qs[-1]} but got {list(ks)}")
        b, h, kvh, sq, skv, d = self.dims
        if vs != ks:
            fail(f"expects v of the shape of k {list(ks)} but got {list(vs)}")
        if kvh < 1 or h % kvh:
            fail(f"expects the query heads ({h}) to be a multiple of the kv heads ({kvh})")
        if self.mask is not None:
            ms = list(_shape(self.mask))
            elem = self.mask.type.get_element_type()
            if not (isinstance(elem, Float32Type) or elem == IntegerType(1)):
                fail("expects an f32 (additive) or i1 (keep where true) mask")
            if ms != [sq, skv] and not (len(qs) == 4 and ms == [b, sq, skv]):
                shapes = f"[{sq}, {skv}]" + (f" or [{b}, {sq}, {skv}]" if len(qs) == 4 else "")
                fail(f"expects a mask of shape {shapes} but got {ms}")
        causal = self.causal.value.data
        if causal not in CAUSAL_MODES:
            fail(f"expects causal 0 (none), 1 (bottom-right) or 2 (top-left) but got {causal}")
        window = self.sliding_window.value.data
        if window < 0 or (window and not causal):
            fail(f"expects a sliding window >= 0 that comes with causal attention, got "
                 f"window {window} with causal {causal}")
        if self.softcap.value.data < 0:
            fail(f"expects softcap >= 0 (0: none), got {self.softcap.value.data}")
        if _shape(self.result) != qs:
            fail(f"expects a result of q's shape {list(qs)} but got {list(_shape(self.result))}")


def visible_keys(sq: int, skv: int, causal: int, window: int = 0) -> np.ndarray:
    """[Sq, Skv] bool: the keys query i may see under a causal mode and sliding window."""
    i = np.arange(sq)[:, None]
    j = np.arange(skv)[None, :]
    if causal == 0:
        return np.ones((sq, skv), bool)
    p = i + (skv - sq if causal == 1 else 0)
    keep = j <= p
    if window:
        keep &= p - j < window
    return keep


def causal_mode_of(keep: np.ndarray) -> tuple[int, int] | None:
    """(causal, window) whose visible keys are exactly the bool matrix `keep` [Sq, Skv], or
    None. Top-left (2) is preferred when Sq == Skv, where both alignments agree."""
    sq, skv = keep.shape
    for causal in (2, 1):
        base = visible_keys(sq, skv, causal)
        if not (keep & ~base).any():
            if (keep == base).all():
                return causal, 0
            window = int(keep[-1].sum())
            if window and (keep == visible_keys(sq, skv, causal, window)).all():
                return causal, window
    return None


def attention_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None,
                        scale: float, causal: int = 0, window: int = 0,
                        softcap: float = 0.0) -> np.ndarray:
    """lut.attention in numpy (float64 inside, f32 out)."""
    squeeze = q.ndim == 3
    if squeeze:
        q, k, v = q[None], k[None], v[None]
        mask = mask[None] if mask is not None and mask.ndim == 3 else mask
    b, h, sq, d = q.shape
    kvh, skv = k.shape[1], k.shape[2]
    rep = h // kvh
    kk = np.repeat(k.astype(np.float64), rep, axis=1)
    vv = np.repeat(v.astype(np.float64), rep, axis=1)
    s = scale * np.einsum("bhid,bhjd->bhij", q.astype(np.float64), kk)
    if softcap:
        s = softcap * np.tanh(s / softcap)
    if mask is not None:
        m = mask if mask.ndim == 2 else mask[:, None]  # [B, Sq, Skv] -> one per batch element
        if mask.dtype == np.bool_:
            s = np.where(m, s, -np.inf)
        else:
            s = s + m.astype(np.float64)
    s = np.where(visible_keys(sq, skv, causal, window), s, -np.inf)
    top = s.max(-1, keepdims=True)
    seen = np.isfinite(top)
    p = np.exp(s - np.where(seen, top, 0.0))
    total = p.sum(-1, keepdims=True)
    out = np.einsum("bhij,bhjd->bhid", np.where(seen, p / np.where(seen, total, 1.0), 0.0), vv)
    out = out.astype(np.float32)
    return out[0] if squeeze else out
