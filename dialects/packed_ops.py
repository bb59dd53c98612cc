"""Weights in the runtime's packed block layout (docs/design.md §3.6), added by
`lut-pack-weights`.

The layout is `lutc.runtime.packing`'s (its docstring details the byte order): N is cut into
NB = ceil(N/32) blocks of 32 weight rows, each stored contiguously over K.
    lut.pack             bit-plane codes [B, N, K/4] i8 -> packed [NB, K/4, 16*B] i8
    lut.pack_code_bytes  bit-plane codes [B, N, K/4] i8 -> one byte per code [NB, K/4, 128] i8
    lut.pack_scales      scales or zeros [N, NG] f32    -> packed [NB, NG, 32] f32
    lut.packed_mma       `lut.mma` reading packed operands (same formula); with the unit
                         attribute `code_bytes` its codes are `lut.pack_code_bytes`'s and the
                         runtime multiplies int8 activations at every M (lutrt.h)
`lut.pack` and `lut.pack_scales` are weight-only: the driver folds them into the weight
store, so C code receives the packed bytes as they are.
"""

from __future__ import annotations

from xdsl.dialects.builtin import Float32Type, IntegerType, TensorType, UnitAttr, i8
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_attr_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from lutc.dialects.mma_base import LutMmaBase
from lutc.dialects.weight_format import MAX_BITS, WeightFormatAttr
from lutc.runtime.abi import BLOCK_N, CODE_BYTES_CHUNK, num_blocks


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())  # type: ignore[attr-defined]


def _expect(op: IRDLOperation, what: str, value: SSAValue, shape, elem: type) -> None:
    typ = value.type
    if not isinstance(typ, TensorType) or not isinstance(typ.get_element_type(), elem):
        want = "f32" if elem is Float32Type else "i8"
        raise VerifyException(f"'{op.name}' op expects {what} of element type {want}, got {typ}")
    if _shape(value) != tuple(shape):
        raise VerifyException(f"'{op.name}' op expects {what} of shape {list(shape)} but got "
                              f"{list(_shape(value))}")


@irdl_op_definition
class PackOp(IRDLOperation):
    """Bit-plane codes c[B, N, K/4] (4-bit patterns, mirrored convention or not) to the packed
    block layout: [NB, K/4, 16*B] bytes, two 4-bit codes per byte (runtime.packing.pack_weights).

    `%w = lut.pack %planes : tensor<2x64x64xi8> -> tensor<2x64x32xi8>`
    """

    name = "lut.pack"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, planes: SSAValue):
        b, n, j = _shape(planes)
        super().__init__(operands=[planes],
                         result_types=[TensorType(i8, [num_blocks(n), j, 16 * b])])

    def verify_(self) -> None:
        shape = _shape(self.input)
        if len(shape) != 3:
            raise VerifyException(f"'{self.name}' op expects bit-plane codes of rank 3 [B, N, K/4]")
        b, n, j = shape
        if not 1 <= b <= MAX_BITS:
            raise VerifyException(f"'{self.name}' op expects 1..{MAX_BITS} bit planes, got {b}")
        _expect(self, "bit-plane codes", self.input, shape, IntegerType)
        _expect(self, "packed weights", self.result, [num_blocks(n), j, 16 * b], IntegerType)


@irdl_op_definition
class PackCodeBytesOp(IRDLOperation):
    """Bit-plane codes c[B, N, K/4] of `format` (mirrored or not) to the runtime's code-byte
    layout (lutrt.h LUTRT_LAYOUT_CODE_BYTES, runtime.packing.pack_code_bytes): one byte per
    unsigned code q (mirroring undone), [NB, K/4, 128] with byte [blk, j, 64 h + 4 r + i] =
    q[32 blk + 16 h + r, 4 j + i]. The int8-activation kernels read it without unpacking.

    `%w = lut.pack_code_bytes %planes as <w8, g32, mirrored> : tensor<8x64x16xi8> -> tensor<2x16x128xi8>`
    """

    name = "lut.pack_code_bytes"
    input = operand_def(TensorType)
    format = prop_def(WeightFormatAttr)
    result = result_def(TensorType)
    assembly_format = "$input `as` $format attr-dict `:` type($input) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, planes: SSAValue, fmt: WeightFormatAttr):
        b, n, j = _shape(planes)
        super().__init__(operands=[planes], properties={"format": fmt},
                         result_types=[TensorType(i8, [num_blocks(n), j, CODE_BYTES_CHUNK])])

    def verify_(self) -> None:
        shape = _shape(self.input)
        if len(shape) != 3:
            raise VerifyException(f"'{self.name}' op expects bit-plane codes of rank 3 [B, N, K/4]")
        b, n, j = shape
        if b != self.format.nbits:
            raise VerifyException(f"'{self.name}' op expects {self.format.nbits} bit planes "
                                  f"(its format) but got {b}")
        _expect(self, "bit-plane codes", self.input, shape, IntegerType)
        _expect(self, "code bytes", self.result, [num_blocks(n), j, CODE_BYTES_CHUNK], IntegerType)


@irdl_op_definition
class PackScalesOp(IRDLOperation):
    """Per-group scales or zero points v[N, NG] to the weight-block order [NB, NG, 32]
    (rows n >= N are 0; runtime.packing.pack_scales).

    `%ps = lut.pack_scales %s : tensor<64x4xf32> -> tensor<2x4x32xf32>`
    """

    name = "lut.pack_scales"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, values: SSAValue):
        n, ng = _shape(values)
        super().__init__(operands=[values],
                         result_types=[TensorType(Float32Type(), [num_blocks(n), ng, BLOCK_N])])

    def verify_(self) -> None:
        shape = _shape(self.input)
        if len(shape) != 2:
            raise VerifyException(f"'{self.name}' op expects scales of rank 2 [N, NG]")
        n, ng = shape
        _expect(self, "scales", self.input, shape, Float32Type)
        _expect(self, "packed scales", self.result, [num_blocks(n), ng, BLOCK_N], Float32Type)


@irdl_op_definition
class PackedMmaOp(LutMmaBase):
    """`lut.mma` on packed weights: out[M, N] by the formula of `lut.mma` (lut_ops.py), with
    codes packed by `lut.pack` [NB, K/4, 16*B] and scales/zeros by `lut.pack_scales`
    [NB, NG, 32]. N is the result's second dimension. Operands, tile and the layout-free
    checks are shared with `lut.mma` (mma_base.py).

    With the unit attribute `code_bytes` the codes are `lut.pack_code_bytes`'s [NB, K/4, 128]
    and the tables must be int8: the runtime then reads only the tables' int8 activations and
    computes the int8-activation formula at every M (lutrt.h "Large M"; lut_semantics.
    mma_int8_activations), the tile attribute being ignored.
    """

    name = "lut.packed_mma"
    code_bytes = opt_attr_def(UnitAttr)
    assembly_format = (
        "$table `,` $sums `,` $codes `,` $scales (`,` $zeros^)? `as` $format attr-dict `:`"
        " type($table) `,` type($sums) `,` type($codes) `,` type($scales) (`,` type($zeros)^)?"
        " `->` type($result)"
    )

    def __init__(self, table: SSAValue, sums: SSAValue, packed: SSAValue, scales: SSAValue,
                 zeros: SSAValue | None, fmt: WeightFormatAttr, n: int,
                 attributes: dict[str, Attribute] | None = None):
        m = table.type.rows.data  # type: ignore[attr-defined]
        super().__init__(
            operands=[table, sums, packed, scales, [zeros] if zeros is not None else []],
            properties={"format": fmt},
            attributes=attributes or {},
            result_types=[TensorType(Float32Type(), [m, n])],
        )

    @property
    def packed(self) -> SSAValue:
        """The packed codes [NB, K/4, 16*B] (the shared `codes` operand)."""
        return self.codes

    @property
    def n(self) -> int:
        return _shape(self.result)[1]

    def verify_weights(self, m: int, t: int, ng: int) -> int:
        """Packed codes [NB, K/4, 16*B], packed scales and zeros [NB, NG, 32]; N is the
        result's."""
        if len(_shape(self.result)) != 2 or _shape(self.result)[0] != m:
            raise VerifyException(f"'{self.name}' op expects a result of shape [{m}, N] but got "
                                  f"{list(_shape(self.result))}")
        nb = num_blocks(self.n)
        if self.code_bytes is not None:
            table = self.table.type
            if not table.is_quantized:  # type: ignore[attr-defined]
                raise VerifyException(f"'{self.name}' op with code_bytes needs int8 tables, got "
                                      f"{table}")
            _expect(self, "code bytes", self.codes, [nb, t, CODE_BYTES_CHUNK], IntegerType)
        else:
            _expect(self, "packed weights", self.codes, [nb, t, 16 * self.format.nbits], IntegerType)
        _expect(self, "packed scales", self.scales, [nb, ng, BLOCK_N], Float32Type)
        if self.zeros is not None:
            _expect(self, "packed zeros", self.zeros, [nb, ng, BLOCK_N], Float32Type)
        return self.n
