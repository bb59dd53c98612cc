"""`lut-fuse-precompute`: one table per distinct activation, built inside its producer
(docs/design.md §3.2).

(a) Sharing: `lut.precompute`s of the same activations (the same SSA value, or reshapes of one
value to the same [M, K]) with the same table type and sum group are merged into the first,
so GEMMs reading one activation (Q/K/V projections; gate/up projections) share one table.

(b) Fusion: a precompute whose activations come from a row-wise `linalg.generic` (its output
is indexed by its first loops, (d0, ..., d{r-1}) with the rows d0..d{r-2} parallel and any
further loops reductions: RMSNorm's final multiply, SiLU * up, a bias add, an attention
contraction), directly or through a collapse of the row dims, becomes a `lut.fused_precompute`
that holds the producer in its region. Generated C then calls `lutrt_precompute_row` right
after the producer's loops finish each row, while the row is in L1, instead of a separate
`lutrt_precompute` pass over the whole activation tensor. One producer feeds one fused table;
further precomputes of it (another table configuration) stay unfused.

Options: `share` and `fuse` (both true) switch (a) and (b).

Before:
  %h = linalg.generic {...} ins(%x, %r : tensor<3x256xf32>, tensor<3xf32>) outs(%e : tensor<3x256xf32>) {...}
  %t1, %s1 = lut.precompute %h sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>
  %q = lut.mma %t1, %s1, %pq, %sq as <w2, g64, mirrored> : ...
  %t2, %s2 = lut.precompute %h sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>
  %k = lut.mma %t2, %s2, %pk, %sk as <w2, g64, mirrored> : ...
After:
  %h, %t1, %s1 = lut.fused_precompute sums 64 : tensor<3x256xf32>, !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32> {
    %0 = linalg.generic {...} ins(%x, %r : ...) outs(%e : tensor<3x256xf32>) {...}
    lut.yield %0 : tensor<3x256xf32>
  }
  %q = lut.mma %t1, %s1, %pq, %sq as <w2, g64, mirrored> : ...
  %k = lut.mma %t1, %s1, %pk, %sk as <w2, g64, mirrored> : ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, tensor
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.linalg.attrs import IteratorType
from xdsl.ir import Block, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from lutc.dialects.fused_precompute import FusedPrecomputeOp, YieldOp
from lutc.dialects.lut_ops import PrecomputeOp
from lutc.passes.tensor_dce import erase_dead_tensor_ops

_VIEWS = (tensor.CollapseShapeOp, tensor.ExpandShapeOp, tensor.ReshapeOp, tensor.CastOp)


def view_root(value: SSAValue) -> SSAValue:
    """The value `value` is a reshape of (reshapes keep row-major data as it is)."""
    while isinstance(value.owner, _VIEWS):
        value = value.owner.operands[0]
    return value


def table_key(op: PrecomputeOp | FusedPrecomputeOp):
    """Two table producers with equal keys compute the same tables and sums."""
    if isinstance(op, PrecomputeOp):
        value = op.input
        rows = tuple(value.type.get_shape())
    else:
        value = op.activations
        shape = value.type.get_shape()
        rows = (math.prod(shape[:-1]), shape[-1])
    return (view_root(value), rows, op.table.type, op.sum_group.value.data)


class ShareTablesOfSameActivations(RewritePattern):
    """A precompute equal to an earlier one in the same block reuses that one's results."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PrecomputeOp, rewriter: PatternRewriter) -> None:
        key = table_key(op)
        prev = op.prev_op
        while prev is not None:
            if isinstance(prev, (PrecomputeOp, FusedPrecomputeOp)) and table_key(prev) == key:
                rewriter.replace(op, [], [prev.table, prev.sums])
                return
            prev = prev.prev_op


def _is_row_wise(generic: linalg.GenericOp) -> bool:
    """Output indexed by the first loops (d0, ..., d{r-1}), rows parallel, further loops
    reductions: once the loops over one row's index finish, that row is final."""
    if len(generic.outputs) != 1 or len(generic.res) != 1:
        return False
    out_map = generic.indexing_maps.data[-1].data
    rank = len(out_map.results)
    if rank < 2:
        return False
    if any(not (isinstance(e, AffineDimExpr) and e.position == i)
           for i, e in enumerate(out_map.results)):
        return False
    kinds = [it.data for it in generic.iterator_types.data]
    return (all(k == IteratorType.PARALLEL for k in kinds[: rank - 1])
            and all(k == IteratorType.REDUCTION for k in kinds[rank:]))


def row_producer(x: SSAValue) -> linalg.GenericOp | None:
    """The row-wise generic producing activations x[M, K], directly or through a collapse
    of its row dims into M."""
    value = x
    collapse = value.owner
    if isinstance(collapse, tensor.CollapseShapeOp):
        groups = [[int(i.value.data) for i in g] for g in collapse.reassociation]
        rank = len(collapse.src.type.get_shape())
        if groups != [list(range(rank - 1)), [rank - 1]]:
            return None
        value = collapse.src
    generic = value.owner
    if not isinstance(generic, linalg.GenericOp) or not _is_row_wise(generic):
        return None
    if not isinstance(generic.parent_op(), func.FuncOp):
        return None  # already inside a fused precompute (or another region)
    return generic


class FusePrecomputeIntoRowProducer(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PrecomputeOp, rewriter: PatternRewriter) -> None:
        generic = row_producer(op.input)
        if generic is None or generic.parent_block() is not op.parent_block():
            return
        activations = generic.res[0]
        fused = FusedPrecomputeOp(activations.type, op.sum_group.value.data, op.table.type,
                                  Region(Block()))
        rewriter.insert(fused, InsertPoint.before(generic))
        rewriter.replace_all_uses_with(activations, fused.activations)
        generic.detach()
        fused.body.block.add_ops([generic, YieldOp(activations)])
        fused.activations.name_hint = activations.name_hint
        activations.name_hint = None
        rewriter.replace(op, [], [fused.table, fused.sums])


@dataclass(frozen=True)
class FusePrecomputePass(ModulePass):
    name = "lut-fuse-precompute"

    share: bool = True
    fuse: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.share:
            PatternRewriteWalker(ShareTablesOfSameActivations(),
                                 apply_recursively=False).rewrite_module(op)
        if self.fuse:
            PatternRewriteWalker(FusePrecomputeIntoRowProducer(),
                                 apply_recursively=False).rewrite_module(op)
        erase_dead_tensor_ops(op)
