"""Weight-only ops of table symmetrization (docs/design.md §3.3), added by `lut-symmetrize`.

Symmetrization re-encodes q in [0, 2^W - 1] as the odd values q' = 2q - (2^W - 1), so that
s (q - z) = s' (q' - z') with
    s' = s / 2                          (`lut.mirror_scales`)
    z' = 2 z + 1 - 2^W                  (`lut.mirror_zeros`)
and each bit plane takes values in {-1, +1}: the bit-plane patterns index 8-entry tables with a
sign bit (`lut.mirror_codes`, the convention of `lutc.runtime.packing.mirror_codes`). Weights are
constants, so the driver folds all three into the weight store.
"""

from __future__ import annotations

from xdsl.dialects.builtin import Float32Type, IntegerType, TensorType
from xdsl.ir import SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from lutc.dialects.weight_format import WeightFormatAttr


def _same_type(op: IRDLOperation, elem_kind: type, what: str) -> None:
    src, dst = op.operands[0].type, op.results[0].type
    if src != dst:
        raise VerifyException(f"'{op.name}' op expects its result to have the type of its "
                              f"{what} ({src}) but got {dst}")
    if not isinstance(src, TensorType) or not isinstance(src.get_element_type(), elem_kind):
        raise VerifyException(f"'{op.name}' op expects {what} to be a tensor of "
                              f"{'f32' if elem_kind is Float32Type else 'i8'}, got {src}")


@irdl_op_definition
class MirrorScalesOp(IRDLOperation):
    """Symmetrized scales: s'[n, g] = s[n, g] / 2.

    `%s2 = lut.mirror_scales %s : tensor<64x4xf32> -> tensor<64x4xf32>`
    """

    name = "lut.mirror_scales"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, scales: SSAValue):
        super().__init__(operands=[scales], result_types=[scales.type])

    def verify_(self) -> None:
        _same_type(self, Float32Type, "scales")


@irdl_op_definition
class MirrorZerosOp(IRDLOperation):
    """Symmetrized zero points: z'[n, g] = 2 z[n, g] + 1 - 2^W, W the bits of `format`
    (the format of the codes before symmetrization).

    `%z2 = lut.mirror_zeros %z as <w2, g64, zp> : tensor<64x4xf32> -> tensor<64x4xf32>`
    """

    name = "lut.mirror_zeros"
    input = operand_def(TensorType)
    format = prop_def(WeightFormatAttr)
    result = result_def(TensorType)
    assembly_format = "$input `as` $format attr-dict `:` type($input) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, zeros: SSAValue, fmt: WeightFormatAttr):
        super().__init__(operands=[zeros], properties={"format": fmt}, result_types=[zeros.type])

    def verify_(self) -> None:
        _same_type(self, Float32Type, "zeros")
        if self.format.is_mirrored:
            raise VerifyException(f"'{self.name}' op re-encodes zero points of a non-mirrored "
                                  f"format, got {self.format}")


@irdl_op_definition
class MirrorCodesOp(IRDLOperation):
    """Bit-plane patterns c[B, N, K/4] to the mirrored convention: a pattern p whose bit 3
    (the sign bit) is set becomes 8 | (~p & 7) (look up entry ~p & 7 and negate, since the
    ±1 table is odd: T(p) = -T(~p)); other patterns stay p. Used when the planes are not
    produced by a `lut.bitplanes` that could take the mirrored format itself.

    `%c2 = lut.mirror_codes %planes : tensor<2x64x64xi8> -> tensor<2x64x64xi8>`
    """

    name = "lut.mirror_codes"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"
    traits = traits_def(Pure())

    def __init__(self, planes: SSAValue):
        super().__init__(operands=[planes], result_types=[planes.type])

    def verify_(self) -> None:
        _same_type(self, IntegerType, "bit-plane codes")
        if len(self.input.type.get_shape()) != 3:
            raise VerifyException(f"'{self.name}' op expects bit-plane codes of rank 3 "
                                  f"[B, N, K/4]")
