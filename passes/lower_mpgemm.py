"""`lut-lower-mpgemm`: the DFG split (docs/design.md §3.1).

A matmul whose weight operand is a dequantized low-bit weight becomes a table precompute
on the activations plus a LUT mpGEMM on the weight's bit planes. Float x float matmuls
(attention, float layers) are left alone.

Before:
  %w  = lut.dequantize %q, %s, %z as <w2, g64, zp> : ... -> tensor<64x256xf32>
  %wt = linalg.transpose ins(%w : tensor<64x256xf32>) outs(%e : tensor<256x64xf32>) permutation = [1, 0]
  %y  = linalg.matmul ins(%x, %wt : tensor<3x256xf32>, tensor<256x64xf32>) outs(%zero : tensor<3x64xf32>)
After:
  %p = lut.bitplanes %q as <w2, g64, zp> : tensor<64x256xi8> -> tensor<2x64x64xi8>
  %t, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x16xf32>, tensor<3x4xf32>
  %y = lut.mma %t, %sums, %p, %s, %z as <w2, g64, zp> : ... -> tensor<3x64xf32>
"""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.builtin import FloatAttr, ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from lutc.dialects.lut_ops import BitPlanesOp, DequantizeOp, MmaOp, PrecomputeOp
from lutc.dialects.table_type import TableType
from lutc.passes.tensor_dce import erase_dead_tensor_ops


def _defining(value: SSAValue, op_type):
    owner = value.owner
    return owner if isinstance(owner, op_type) else None


def _is_zero_fill(value: SSAValue) -> bool:
    fill = _defining(value, linalg.FillOp)
    if fill is None:
        return False
    const = _defining(fill.inputs[0], arith.ConstantOp)
    return const is not None and isinstance(const.value, FloatAttr) and const.value.value.data == 0.0


def dequantized_weight_of(matmul: linalg.MatmulOp) -> DequantizeOp | None:
    """The `lut.dequantize` feeding `matmul` as x @ W^T, if that is its form."""
    if len(matmul.inputs) != 2:
        return None
    transpose = _defining(matmul.inputs[1], linalg.TransposeOp)
    if transpose is None or tuple(transpose.permutation.get_values()) != (1, 0):
        return None
    return _defining(transpose.inputs[0], DequantizeOp)


class MatmulOfDequantizedWeight(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: linalg.MatmulOp, rewriter: PatternRewriter) -> None:
        deq = dequantized_weight_of(op)
        if deq is None or not _is_zero_fill(op.outputs[0]):
            return
        x = op.inputs[0]
        m, k = x.type.get_shape()
        if k % 4:
            return
        fmt = deq.format
        planes = BitPlanesOp(deq.codes, fmt)
        pre = PrecomputeOp(x, min(fmt.group_size, k), TableType.get(m, k // 4, 16))
        mma = MmaOp(pre.table, pre.sums, planes.result, deq.scales, deq.zeros, fmt)
        planes.result.name_hint, pre.table.name_hint, pre.sums.name_hint = "planes", "table", "sums"
        rewriter.replace(op, [planes, pre, mma], [mma.result])


@dataclass(frozen=True)
class LowerMpGemmPass(ModulePass):
    name = "lut-lower-mpgemm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(MatmulOfDequantizedWeight(), apply_recursively=False).rewrite_module(op)
        erase_dead_tensor_ops(op)
