"""The tensor-level ops of the `lut` dialect.

Shapes: activations x[M, K] (K % 4 == 0), T = K / 4 tables per row, weights W[N, K] with
B bit planes (B = bits; ternary is 2), NG = ceil(K / G) scale groups of G weights.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    Float32Type,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, SSAValue
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

from lutc.dialects.mma_base import LutMmaBase
from lutc.dialects.table_type import TableType
from lutc.dialects.weight_format import WeightFormatAttr


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType)
    return tuple(typ.get_shape())


def _expect_shape(op: IRDLOperation, what: str, value: SSAValue, expected: Sequence[int]):
    actual = _shape(value)
    if actual != tuple(expected):
        raise VerifyException(
            f"'{op.name}' op expects {what} of shape {list(expected)} but got {list(actual)}"
        )


def _expect_element(op: IRDLOperation, what: str, value: SSAValue, kind: type, width: int = 0):
    elem = value.type.get_element_type()  # type: ignore[attr-defined]
    ok = isinstance(elem, kind) and (not width or getattr(elem.width, "data", 0) == width)
    if not ok:
        want = "f32" if kind is Float32Type else f"i{width}"
        raise VerifyException(f"'{op.name}' op expects {what} of element type {want} but got {elem}")


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A constant tensor read from the model's weight store by name.

    Weights stay out of the IR text: `%w = lut.weight "blk0.q.codes" : tensor<2x64x16xi8>`.
    """

    name = "lut.weight"
    weight_name = prop_def(StringAttr, prop_name="name")
    result = result_def(TensorType)
    assembly_format = "$name attr-dict `:` type($result)"
    traits = traits_def(Pure())

    def __init__(self, name: str, typ: TensorType):
        super().__init__(properties={"name": StringAttr(name)}, result_types=[typ])


@irdl_op_definition
class DequantizeOp(IRDLOperation):
    """Low-bit weight to float: w[n, k] = s[n, k/G] * (q[n, k] - z[n, k/G]).

    codes q: [N, K] unsigned values in [0, 2^bits - 1] stored in i8; scales s and the optional
    zeros z: [N, ceil(K/G)] f32; without zeros z is the format's implicit zero point.
    """

    name = "lut.dequantize"
    codes = operand_def(TensorType)
    scales = operand_def(TensorType)
    zeros = opt_operand_def(TensorType)
    format = prop_def(WeightFormatAttr)
    result = result_def(TensorType)
    assembly_format = (
        "$codes `,` $scales (`,` $zeros^)? `as` $format attr-dict `:` type($codes) `,` type($scales)"
        " (`,` type($zeros)^)? `->` type($result)"
    )
    traits = traits_def(Pure())

    def __init__(self, codes: SSAValue, scales: SSAValue, zeros: SSAValue | None,
                 fmt: WeightFormatAttr):
        n, k = _shape(codes)
        super().__init__(
            operands=[codes, scales, [zeros] if zeros is not None else []],
            properties={"format": fmt},
            result_types=[TensorType(Float32Type(), [n, k])],
        )

    def verify_(self) -> None:
        fmt = self.format
        if len(_shape(self.codes)) != 2:
            raise VerifyException(f"'{self.name}' op expects codes of rank 2 [N, K]")
        n, k = _shape(self.codes)
        _expect_element(self, "codes", self.codes, IntegerType, 8)
        _expect_shape(self, "scales", self.scales, [n, fmt.num_groups(k)])
        if fmt.has_zero_point != (self.zeros is not None):
            raise VerifyException(
                f"'{self.name}' op format {'has' if fmt.has_zero_point else 'has no'} zero points "
                f"but {'none were' if self.zeros is None else 'a zeros operand was'} given"
            )
        if self.zeros is not None:
            _expect_shape(self, "zeros", self.zeros, [n, fmt.num_groups(k)])
        _expect_shape(self, "result", self.result, [n, k])


@irdl_op_definition
class PrecomputeOp(IRDLOperation):
    """Activations to lookup tables (the DFG split's first half, docs/design.md §2–3).

    For x[M, K], table j of row m covers x[m, 4j .. 4j+3]:
      16 entries: T[m, j, p] = sum_i x[m, 4j+i] * bit_i(p)                 p in 0..15
       8 entries: T[m, j, p] = sum_i x[m, 4j+i] * (2 bit_i(p) - 1)         p in 0..7
                  (mirrored: the other half is T(p) = -T(~p); bit 3 of p is the sign bit)
    int8 tables: scale[m, t] = max_{j in t} (sum_i |x[m, 4j+i]|) / 127 over each group of
                 `sg` activations, entries round_half_even(T / scale). With sg = 4 (one
                 scale per table) the scales are then rounded up onto a power-of-two grid
                 per 8 tables, scale = mult * 2^e with integer mult < 2^7 (runtime/lutrt.h;
                 lut_semantics.grid_scales), so kernels can multiply lookups by mult as a
                 byte and sum in int32; a table's step is then at most (1 + 1/mult) x its
                 own max / 127, and an entry's error at most half a step.
    sums[m, g] = sum_{k in group g} x[m, k], groups of `sum_group` activations, used by the
    zero-point term of `lut.mma`.
    """

    name = "lut.precompute"
    input = operand_def(TensorType)
    sum_group = prop_def(IntegerAttr[I64])
    table = result_def(TableType)
    sums = result_def(TensorType)
    assembly_format = (
        "$input `sums` $sum_group attr-dict `:` type($input) `->` type($table) `,` type($sums)"
    )
    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())

    def __init__(self, x: SSAValue, sum_group: int, table_type: TableType):
        m, k = _shape(x)
        super().__init__(
            operands=[x],
            properties={"sum_group": IntegerAttr(sum_group, 64)},
            result_types=[table_type, TensorType(Float32Type(), [m, -(-k // sum_group)])],
        )

    def verify_(self) -> None:
        shape = _shape(self.input)
        if len(shape) != 2:
            raise VerifyException(f"'{self.name}' op expects activations of rank 2 [M, K]")
        m, k = shape
        _expect_element(self, "activations", self.input, Float32Type)
        if k % 4:
            raise VerifyException(f"'{self.name}' op expects K to be a multiple of 4, got {k}")
        table = self.table.type
        assert isinstance(table, TableType)
        if table.shape[:2] != (m, k // 4):
            raise VerifyException(
                f"'{self.name}' op expects a table of shape [{m}, {k // 4}, E] but got "
                f"{list(table.shape)}"
            )
        sg = self.sum_group.value.data
        if sg <= 0 or sg % 4:
            raise VerifyException(f"'{self.name}' op expects sums over a multiple of 4, got {sg}")
        if table.is_quantized and sg % table.scale_group.data and sg != k:
            raise VerifyException(
                f"'{self.name}' op expects the table scale group ({table.scale_group.data}) "
                f"to divide the sum group ({sg})"
            )
        _expect_shape(self, "sums", self.sums, [m, -(-k // sg)])


@irdl_op_definition
class MmaOp(LutMmaBase):
    """LUT mpGEMM: out[M, N] = x[M, K] @ W[N, K]^T from tables and bit-plane codes.

    codes c: [B, N, K/4], c[b, n, j] = the 4-bit pattern whose bit i is bit b of q[n, 4j+i]
    (mirrored formats: if bit 3 is set the code is 8 | (~p & 7) and looks up -T[code & 7]).
    Bit-serial (§2): L(m, n, j) = sum_b 2^b * T[m, j, c[b, n, j]], then
        out[m, n] = sum_g s[n, g] * sum_{j in g} (L(m, n, j) - z[n, g] * F[m, j])
    with z the zeros operand or the format's implicit zero point and F[m, j] the all-ones
    entry of table j as stored (plain T[15], mirrored -T[0]: the sum of its 4 activations).
    For int8 tables each table-scale group t contributes scale[m, t] * (I - z * S), I its
    integer lookup sum and S = sum_{j in t} Fq[m, j] — the zero-point term uses the same
    rounded entries as the lookups, so codes equal to an integer zero point (W = 0) give exactly
    0, and the error against the exact product is at most
        sum_g |s[n, g]| sum_{j in g} scale[m, t(j)] / 2 * (2^B - 1 + |z[n, g]|)
    (each entry rounded by at most half a step). `sums` is not read (the correction needs no
    float sums; the operand stays for the precompute's interface).

    At large M (runtime/lutrt.h): for int8 tables, from lutrt_i8act_min_m(B) tokens on
    (AVX512-VNNI CPUs) the runtime multiplies two-pass int8 activations instead of looking up
    the tables: the precompute also stores each row as xq = round(x * 16256 / max|x|) = 128 hi
    + lo (int8 hi, lo) with ascale = max|x| / 16256 per activation group t (the largest multiple
    of 4 <= 32 dividing G), and
        out[m, n] = sum_g s[n, g] * sum_{t in g} ascale[m, t] *
                    (128 (I_hi - z[n, g] S_hi[m, t]) + (I_lo - z[n, g] S_lo[m, t]))
    with I_hi = sum_{k in t} q[n, k] * hi[m, k] (unsigned codes; I_lo alike) and S_hi, S_lo the
    sums of hi, lo: W = 0 still gives exactly 0, inf / NaN rows still give NaN, and the error
    is at most sum_g |s[n, g]| sum_{t in g} ascale[m, t] / 2 * sum_{k in t} |q[n, k] - z[n, g]|
    (one rounding of at most max|x| / 32512 per activation; NMSE ~1e-9). The interpreter
    (lut_semantics.mma) asks the runtime for that threshold and evaluates the same formula.
    """

    name = "lut.mma"
    assembly_format = (
        "$table `,` $sums `,` $codes `,` $scales (`,` $zeros^)? `as` $format attr-dict `:`"
        " type($table) `,` type($sums) `,` type($codes) `,` type($scales) (`,` type($zeros)^)?"
        " `->` type($result)"
    )

    def __init__(self, table: SSAValue, sums: SSAValue, codes: SSAValue, scales: SSAValue,
                 zeros: SSAValue | None, fmt: WeightFormatAttr,
                 attributes: dict[str, Attribute] | None = None):
        m = table.type.rows.data  # type: ignore[attr-defined]
        n = _shape(codes)[1]
        super().__init__(
            operands=[table, sums, codes, scales, [zeros] if zeros is not None else []],
            properties={"format": fmt},
            attributes=attributes or {},
            result_types=[TensorType(Float32Type(), [m, n])],
        )

    def verify_weights(self, m: int, t: int, ng: int) -> int:
        """Bit-plane codes [B, N, K/4] (i8), scales and zeros [N, NG]."""
        codes_shape = _shape(self.codes)
        if len(codes_shape) != 3:
            raise VerifyException(f"'{self.name}' op expects codes of rank 3 [B, N, K/4]")
        n = codes_shape[1]
        _expect_shape(self, "codes", self.codes, [self.format.nbits, n, t])
        _expect_element(self, "codes", self.codes, IntegerType, 8)
        _expect_shape(self, "scales", self.scales, [n, ng])
        if self.zeros is not None:
            _expect_shape(self, "zeros", self.zeros, [n, ng])
        return n


@irdl_op_definition
class BitPlanesOp(IRDLOperation):
    """Unsigned codes q[N, K] to bit-plane patterns for `lut.mma` (a weight-only op).

    out[b, n, j] = sum_i 2^i * bit_b(q[n, 4j+i]); with a mirrored format the pattern p is then
    replaced by 8 | (~p & 7) when its bit 3 (the sign bit) is set. Weights are constants, so
    the driver folds this op into the weight store (numpy), never into IR text.
    """

    name = "lut.bitplanes"
    codes = operand_def(TensorType)
    format = prop_def(WeightFormatAttr)
    result = result_def(TensorType)
    assembly_format = "$codes `as` $format attr-dict `:` type($codes) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, codes: SSAValue, fmt: WeightFormatAttr):
        n, k = _shape(codes)
        super().__init__(
            operands=[codes],
            properties={"format": fmt},
            result_types=[TensorType(IntegerType(8), [fmt.nbits, n, k // 4])],
        )

    def verify_(self) -> None:
        shape = _shape(self.codes)
        if len(shape) != 2:
            raise VerifyException(f"'{self.name}' op expects codes of rank 2 [N, K]")
        n, k = shape
        if k % 4:
            raise VerifyException(f"'{self.name}' op expects K to be a multiple of 4, got {k}")
        _expect_element(self, "codes", self.codes, IntegerType, 8)
        _expect_shape(self, "result", self.result, [self.format.nbits, n, k // 4])
