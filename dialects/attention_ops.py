"""`lut.kv_attention`: causal grouped-query attention over a KV cache the model owns.

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
"""

from __future__ import annotations

from xdsl.dialects.builtin import I64, Float32Type, FloatAttr, IntegerAttr, IntegerType, TensorType
from xdsl.ir import SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
)
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

    def verify_(self) -> None:
        def fail(msg: str):
            raise VerifyException(f"'{self.name}' op {msg}")

        for what in ("q", "k", "v", "cache"):
            typ = getattr(self, what).type
            if not isinstance(typ.get_element_type(), Float32Type):
                fail(f"expects f32 {what}")
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
