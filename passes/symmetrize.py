"""`lut-symmetrize`: table symmetrization by weight reinterpretation (docs/design.md §3.3).

Unsigned codes q in [0, 2^W - 1] are reinterpreted as the odd values q' = 2q - (2^W - 1), with
s' = s/2 and z' = 2z + 1 - 2^W, so that s (q - z) = s' (q' - z'). Every bit plane then takes
values in {-1, +1}, each 4-activation table is odd, T(p) = -T(~p), and only 8 of its 16 entries
are stored: T8[p] = sum_i x_i (2 bit_i(p) - 1) for p in 0..7.

Sign-bit convention (`lutc.runtime.packing.mirror_codes`, the runtime's): bit 3 of a bit-plane
pattern p is the sign bit. A pattern with bit 3 clear indexes T8[p] directly; a pattern with
bit 3 set is stored as 8 | (~p & 7) and looks up -T8[~p & 7] (= T(p), since ~p has bit 3
clear). Weights are static, so this complement happens offline, in the folded weights.

The implicit zero point of formats without zeros is re-encoded by the format itself
(`WeightFormatAttr.implicit_zero()` of a mirrored format returns 2z + 1 - 2^W: 1 for plain
symmetric weights, -1 for ternary). Ternary weights (q in {0, 1, 2}, z = 1) go through the same
mechanism as 2-bit weights. Codes of 5..8 bits are symmetrized too: the mirrored form costs
nothing per lookup at any width (B lookups of one table either way) and still halves the
tables (precompute, table traffic, vpshufb source), so it pays as it does for 1..4 bits.

Every `lut.mma` reading a precompute's tables is symmetrized together with it, so a table
shared by several GEMMs (after `lut-fuse-precompute`) stays shared.

Before:
  %planes = lut.bitplanes %q as <w2, g64, zp> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x16xf32>, tensor<3x4xf32>
  %y = lut.mma %table, %sums, %planes, %s, %z as <w2, g64, zp> : ... -> tensor<3x64xf32>
After:
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xf32>, tensor<3x4xf32>
  %planes = lut.bitplanes %q as <w2, g64, zp, mirrored> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %s2 = lut.mirror_scales %s : tensor<64x4xf32> -> tensor<64x4xf32>
  %z2 = lut.mirror_zeros %z as <w2, g64, zp> : tensor<64x4xf32> -> tensor<64x4xf32>
  %y = lut.mma %table, %sums, %planes, %s2, %z2 as <w2, g64, zp, mirrored> : ... -> tensor<3x64xf32>
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from lutc.dialects.fused_precompute import FusedPrecomputeOp
from lutc.dialects.lut_ops import BitPlanesOp, MmaOp, PrecomputeOp
from lutc.dialects.mirror_ops import MirrorCodesOp, MirrorScalesOp, MirrorZerosOp
from lutc.dialects.table_type import TableType
from lutc.passes.tensor_dce import erase_dead_tensor_ops



def mirrored_mma(mma: MmaOp, table: SSAValue) -> list[Operation]:
    """The ops computing `mma` with symmetrized weights on the 8-entry `table`; the last
    one is the new `lut.mma`."""
    fmt = mma.format
    mirrored = fmt.with_mirrored()
    ops: list[Operation] = []
    planes = mma.codes.owner
    if isinstance(planes, BitPlanesOp) and planes.format == fmt:
        ops.append(BitPlanesOp(planes.codes, mirrored))
        ops[-1].results[0].name_hint = mma.codes.name_hint
    else:
        ops.append(MirrorCodesOp(mma.codes))
        ops[-1].results[0].name_hint = f"{mma.codes.name_hint or 'planes'}_sym"
    codes = ops[-1].results[0]
    scales_op = MirrorScalesOp(mma.scales)
    scales_op.result.name_hint = f"{mma.scales.name_hint or 'scales'}_sym"
    ops.append(scales_op)
    zeros = None
    if mma.zeros is not None:
        ops.append(MirrorZerosOp(mma.zeros, fmt))
        zeros = ops[-1].results[0]
        zeros.name_hint = f"{mma.zeros.name_hint or 'zeros'}_sym"
    ops.append(MmaOp(table, mma.sums, codes, scales_op.result, zeros, mirrored,
                     attributes=dict(mma.attributes)))
    return ops


class SymmetrizeTableAndItsGemms(RewritePattern):
    """A 16-entry table read only by non-mirrored `lut.mma`s becomes an 8-entry table, and each
    of those GEMMs reads symmetrized weights."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PrecomputeOp | FusedPrecomputeOp,
                          rewriter: PatternRewriter) -> None:
        typ = op.table.type
        assert isinstance(typ, TableType)
        users = [use.operation for use in op.table.uses]
        if typ.mirrored or not users:
            return
        if not all(isinstance(u, MmaOp) and not u.format.is_mirrored for u in users):
            return  # a reader we cannot re-encode: leave the 16-entry table as it is
        m, t, _ = typ.shape
        table = rewriter.replace_value_with_new_type(
            op.table, TableType.get(m, t, 8, typ.is_quantized, typ.scale_group.data))
        for mma in dict.fromkeys(users):  # a GEMM appears once per use of the table
            assert isinstance(mma, MmaOp)
            rewriter.replace(mma, mirrored_mma(mma, table))


@dataclass(frozen=True)
class SymmetrizePass(ModulePass):
    name = "lut-symmetrize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        walker = PatternRewriteWalker(SymmetrizeTableAndItsGemms(), apply_recursively=False)
        walker.rewrite_module(op)
        erase_dead_tensor_ops(op)
