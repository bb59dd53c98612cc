"""`lut-pack-weights`: weight packing as IR (docs/design.md §3.6).

Every `lut.mma` becomes a `lut.packed_mma` whose bit-plane codes go through `lut.pack` (the
runtime's block layout: 32-row blocks contiguous over K, two 4-bit codes per byte, plane pairs
interleaved for vpmaddubsw; runtime/packing.py) and whose scales and zeros go through
`lut.pack_scales` ([NB, NG, 32], a weight group's 32 scales in one load). The pack ops are
weight-only: the driver folds them into the weight store, and C emission passes the packed
bytes straight to `lutrt_mma`. Without this pass, C emission packs at emission time.

Before:
  %planes = lut.bitplanes %q as <w2, g64, mirrored> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> : ..., tensor<2x64x64xi8>, tensor<64x4xf32> -> tensor<3x64xf32>
After:
  %planes = lut.bitplanes %q as <w2, g64, mirrored> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %packed = lut.pack %planes : tensor<2x64x64xi8> -> tensor<2x64x32xi8>
  %s_packed = lut.pack_scales %s : tensor<64x4xf32> -> tensor<2x4x32xf32>
  %y = lut.packed_mma %table, %sums, %packed, %s_packed as <w2, g64, mirrored> : ..., tensor<2x64x32xi8>, tensor<2x4x32xf32> -> tensor<3x64xf32>
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

from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackedMmaOp, PackOp, PackScalesOp
from lutc.passes.tensor_dce import erase_dead_tensor_ops



def _packed(op: Operation, source: SSAValue, default: str) -> Operation:
    op.results[0].name_hint = f"{source.name_hint or default}_packed"
    return op


class PackGemmWeights(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MmaOp, rewriter: PatternRewriter) -> None:
        codes = _packed(PackOp(op.codes), op.codes, "planes")
        scales = _packed(PackScalesOp(op.scales), op.scales, "scales")
        new_ops = [codes, scales]
        zeros = None
        if op.zeros is not None:
            new_ops.append(_packed(PackScalesOp(op.zeros), op.zeros, "zeros"))
            zeros = new_ops[-1].results[0]
        n = op.result.type.get_shape()[1]
        new_ops.append(PackedMmaOp(op.table, op.sums, codes.results[0], scales.results[0],
                                   zeros, op.format, n, attributes=dict(op.attributes)))
        rewriter.replace(op, new_ops)


@dataclass(frozen=True)
class PackWeightsPass(ModulePass):
    name = "lut-pack-weights"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(PackGemmWeights(), apply_recursively=False).rewrite_module(op)
        erase_dead_tensor_ops(op)
