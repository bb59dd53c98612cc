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

8-bit weights on int8 tables (GGUF Q8_0, w8 specs) go through `lut.pack_code_bytes` instead,
and the `lut.packed_mma` gets the unit attribute `code_bytes`: at 8 bits a LUT GEMV does 8
lookups per 4 weights, while the runtime's int8-activation kernel reads these bytes without
unpacking and streams them at the memory's speed (SmolLM2's tied Q8_0 head at one token:
2.4 -> 1.4 ms on one Zen 4 core, bench/bench_code_bytes.py). Same size as 8 bit planes; more
accurate than int8 tables (two-pass int8 activations, lutrt.h). Option `code-bytes=false`
keeps bit planes everywhere.
  %w = lut.pack_code_bytes %planes as <w8, g32, mirrored> : tensor<8x64x16xi8> -> tensor<2x16x128xi8>
  %y = lut.packed_mma %table, %sums, %w, %s_packed as <w8, g32, mirrored> {code_bytes} : ...
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, UnitAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackCodeBytesOp, PackedMmaOp, PackOp, PackScalesOp
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr
from lutc.passes.tensor_dce import erase_dead_tensor_ops



def _packed(op: Operation, source: SSAValue, default: str) -> Operation:
    op.results[0].name_hint = f"{source.name_hint or default}_packed"
    return op


CODE_BYTES_BITS = 8  # weights this wide take the code-byte layout (int8 tables only)


def takes_code_bytes(op: MmaOp) -> bool:
    """8-bit codes on int8 tables, not tiled for the Vec-LUT kernel (which reads tables)."""
    table, tile = op.table.type, op.attributes.get("tile")
    return (op.format.nbits == CODE_BYTES_BITS and isinstance(table, TableType)
            and table.is_quantized
            and not (isinstance(tile, TileAttr) and tile.strategy_name == "vec_lut"))


@dataclass
class PackGemmWeights(RewritePattern):
    code_bytes: bool = True

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MmaOp, rewriter: PatternRewriter) -> None:
        attributes = dict(op.attributes)
        if self.code_bytes and takes_code_bytes(op):
            codes = _packed(PackCodeBytesOp(op.codes, op.format), op.codes, "planes")
            attributes["code_bytes"] = UnitAttr()
        else:
            codes = _packed(PackOp(op.codes), op.codes, "planes")
        scales = _packed(PackScalesOp(op.scales), op.scales, "scales")
        new_ops = [codes, scales]
        zeros = None
        if op.zeros is not None:
            new_ops.append(_packed(PackScalesOp(op.zeros), op.zeros, "zeros"))
            zeros = new_ops[-1].results[0]
        n = op.result.type.get_shape()[1]
        new_ops.append(PackedMmaOp(op.table, op.sums, codes.results[0], scales.results[0],
                                   zeros, op.format, n, attributes=attributes))
        rewriter.replace(op, new_ops)


@dataclass(frozen=True)
class PackWeightsPass(ModulePass):
    name = "lut-pack-weights"
    code_bytes: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(PackGemmWeights(self.code_bytes),
                             apply_recursively=False).rewrite_module(op)
        erase_dead_tensor_ops(op)
