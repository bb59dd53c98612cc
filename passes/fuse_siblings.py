"""`lut-fuse-siblings`: LUT GEMMs that read the same tables become one GEMM (horizontal
fusion; docs/design.md §3.2).

After `lut-fuse-precompute` shares tables, a decoder layer's Q/K/V projections read one table
and so do its gate/up projections. Each `lut.mma` is a runtime call that wakes the thread pool
and splits N over it; at one token (decode) those calls are short (SmolLM2's K/V projections:
N = 192, 55 KB of weights) and their hand-offs, and the imbalance of splitting 6 blocks over
threads, cost as much as the lookups. GEMMs with the same table and sums operands, the same
weight format and constant weights are merged into one whose codes, scales and zero points are
the members' concatenated along N (weight-only `tensor.concat`s, folded into the weights file
with the rest); each member's result becomes a column slice of the merged one. Every output
column is computed exactly as before (the formula is per column), so results are bitwise equal.

Options: `max_n` (default 0 = no limit) caps the merged N.

Before:
  %q = lut.mma %t, %s, %pq, %sq as <w4, g32, mirrored> : ..., tensor<4x64x16xi8>, tensor<64x2xf32> -> tensor<3x64xf32>
  %k = lut.mma %t, %s, %pk, %sk as <w4, g32, mirrored> : ..., tensor<4x32x16xi8>, tensor<32x2xf32> -> tensor<3x32xf32>
After:
  %codes = tensor.concat dim(1) %pq, %pk : (tensor<4x64x16xi8>, tensor<4x32x16xi8>) -> tensor<4x96x16xi8>
  %scales = tensor.concat dim(0) %sq, %sk : (tensor<64x2xf32>, tensor<32x2xf32>) -> tensor<96x2xf32>
  %qk = lut.mma %t, %s, %codes, %scales as <w4, g32, mirrored> : ... -> tensor<3x96xf32>
  %q = tensor.extract_slice %qk[0, 0] [3, 64] [1, 1] : tensor<3x96xf32> to tensor<3x64xf32>
  %k = tensor.extract_slice %qk[0, 64] [3, 32] [1, 1] : tensor<3x96xf32> to tensor<3x32xf32>
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import tensor
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from lutc.dialects.lut_ops import MmaOp, WeightOp
from lutc.passes.tensor_dce import erase_dead_tensor_ops


def _weight_only(value: SSAValue, seen: dict[SSAValue, bool]) -> bool:
    """Whether `value` is computed from weights alone (what fold_weights folds)."""
    if value in seen:
        return seen[value]
    owner = value.owner
    ok = (isinstance(owner, Operation) and not owner.regions
          and (isinstance(owner, WeightOp) or isinstance(owner, tensor.EmptyOp)
               or (owner.operands and all(_weight_only(v, seen) for v in owner.operands))))
    seen[value] = ok
    return ok


def _hoist(value: SSAValue, before: Operation, order: dict[Operation, int]) -> None:
    """Moves the weight-only chain defining `value` above `before` where it comes later."""
    owner = value.owner
    if not isinstance(owner, Operation) or owner.parent is not before.parent:
        return
    if order[owner] < order[before]:
        return
    for operand in owner.operands:
        _hoist(operand, before, order)
    owner.detach()
    before.parent.insert_op_before(owner, before)
    order[owner] = order[before] - 0.5  # before `before`, after what was already moved


def _concat(values: list[SSAValue], dim: int, hint: str) -> tensor.ConcatOp:
    shapes = [list(v.type.get_shape()) for v in values]  # type: ignore[attr-defined]
    out = list(shapes[0])
    out[dim] = sum(s[dim] for s in shapes)
    op = tensor.ConcatOp(values, dim, TensorType(values[0].type.get_element_type(), out))  # type: ignore
    op.results[0].name_hint = hint
    return op


def _slice(source: SSAValue, col: int, rows: int, cols: int) -> tensor.ExtractSliceOp:
    return tensor.ExtractSliceOp(source, [0, col], [rows, cols], [1, 1],
                                 TensorType(source.type.get_element_type(), [rows, cols]))  # type: ignore


def sibling_groups(block: Block, max_n: int = 0) -> list[list[MmaOp]]:
    """GEMMs of `block` with the same table, sums and format and weight-only codes, scales and
    zeros, in program order; groups of two or more (split where the merged N would pass
    `max_n`)."""
    seen: dict[SSAValue, bool] = {}
    groups: dict[tuple, list[MmaOp]] = {}
    for op in block.ops:
        if not isinstance(op, MmaOp) or "tile" in op.attributes:
            continue
        weights = [op.codes, op.scales] + ([op.zeros] if op.zeros is not None else [])
        if not all(_weight_only(v, seen) for v in weights):
            continue
        groups.setdefault((op.table, op.sums, op.format), []).append(op)
    out = []
    for members in groups.values():
        run: list[MmaOp] = []
        for op in members:
            n = op.result.type.get_shape()[1]  # type: ignore[attr-defined]
            if run and max_n and sum(m.result.type.get_shape()[1] for m in run) + n > max_n:  # type: ignore
                out.append(run)
                run = []
            run.append(op)
        out.append(run)
    return [g for g in out if len(g) > 1]


def fuse_group(members: list[MmaOp]) -> MmaOp:
    """Replaces `members` (sibling_groups) by one lut.mma and column slices of its result."""
    first = members[0]
    block = first.parent
    assert block is not None
    order = {op: i for i, op in enumerate(block.ops)}
    for op in members[1:]:
        for value in op.operands[2:]:
            _hoist(value, first, order)
    codes = _concat([m.codes for m in members], 1, "codes")
    scales = _concat([m.scales for m in members], 0, "scales")
    new_ops: list[Operation] = [codes, scales]
    zeros = None
    if first.zeros is not None:
        new_ops.append(_concat([m.zeros for m in members], 0, "zeros"))  # type: ignore[misc]
        zeros = new_ops[-1].results[0]
    fused = MmaOp(first.table, first.sums, codes.results[0], scales.results[0], zeros,
                  first.format, attributes=dict(first.attributes))
    fused.result.name_hint = "_".join(m.result.name_hint or "y" for m in members)
    new_ops.append(fused)
    Rewriter.insert_op(new_ops, InsertPoint.before(first))
    rows = fused.result.type.get_shape()[0]  # type: ignore[attr-defined]
    col = 0
    for m in members:
        n = m.result.type.get_shape()[1]  # type: ignore[attr-defined]
        piece = _slice(fused.result, col, rows, n)
        piece.results[0].name_hint = m.result.name_hint
        Rewriter.insert_op(piece, InsertPoint.before(first))
        m.result.replace_all_uses_with(piece.results[0])
        col += n
    for m in members:
        m.detach()
        m.erase()
    return fused


@dataclass(frozen=True)
class FuseSiblingsPass(ModulePass):
    name = "lut-fuse-siblings"
    max_n: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        blocks = {o.parent for o in op.walk() if isinstance(o, MmaOp)}
        for block in blocks:
            if block is None:
                continue
            for group in sibling_groups(block, self.max_n):
                fuse_group(group)
        erase_dead_tensor_ops(op)
