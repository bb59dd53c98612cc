"""Sum reductions that the C emitter splits into lanes.

A `linalg.generic` whose innermost loop is a reduction dim and whose body adds one value per
iteration into its single float output (`out = out + x`: RMSNorm's and LayerNorm's sums of
squares, means, pooling) would be emitted as one scalar chain of dependent adds: cc may not
reorder float additions without -ffast-math, so each add waits for the previous one (4 cycles
on current x86: ~15 us per 16 x 576 sum, serial, in every norm of a decoder layer).

The emitter instead keeps LANES partial sums, lane l summing the iterations i with
i mod LANES = l in order; cc vectorises that loop without reassociating anything. The lanes
are then added as a fixed binary tree (lane l += lane l + w for w = LANES/2, ..., 1), then
the remaining iterations in order, and the result to the output's initial value:

    out = init + (((tree of lanes) + x[n0]) + x[n0 + 1] + ...)

where x[n0], ... are the iterations past the last whole block of LANES, in order. The order
of additions changes against a sequential sum (as in PyTorch's and numpy's own vectorised /
pairwise sums); it is fixed by the IR, not by the compiler or the thread count. Error bound
(Higham, "Accuracy and Stability of Numerical Algorithms", 2002, §4.2, to first order in the
unit roundoff u): a sequential sum of n terms is within (n - 1) u sum|x| of the exact sum,
this order within (n / LANES + log2 LANES + LANES) u sum|x|, smaller for n >= 2 LANES.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type, Float64Type
from xdsl.dialects.linalg import ops as linalg
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineDimExpr

LANES = 16  # 64 bytes of f32: one AVX-512 register or four SSE ones, 16 independent chains
MIN_SIZE = 32  # shorter reductions stay sequential


@dataclass(frozen=True)
class LaneReduction:
    add: arith.AddfOp  # the body's `out + x`
    term: SSAValue  # x
    dim: int  # the reduction dim (the innermost loop)


def match(op: linalg.GenericOp, sizes: list) -> LaneReduction | None:
    """The sum reduction of `op` over its innermost dim, or None when `op` is not one:
    one float output not indexed by that dim, a reduction iterator there of static size
    >= MIN_SIZE, and a body whose yielded value is `addf(out, x)` with `out` used nowhere
    else."""
    if len(op.outputs) != 1 or not sizes:
        return None
    dim = len(sizes) - 1
    if op.iterator_types.data[dim].data.value != "reduction":
        return None
    if not isinstance(sizes[dim], int) or sizes[dim] < MIN_SIZE:
        return None
    out_map = op.indexing_maps.data[len(op.inputs)].data
    if AffineDimExpr(dim) in out_map.results:
        return None
    block = op.body.block
    out_arg = block.args[len(op.inputs)]
    yield_op = block.last_op
    if not isinstance(yield_op, linalg.YieldOp) or len(yield_op.operands) != 1:
        return None
    add = yield_op.operands[0].owner
    if not isinstance(out_arg.type, Float32Type | Float64Type):
        return None
    if not isinstance(add, arith.AddfOp) or out_arg.uses.get_length() != 1:
        return None
    if add.lhs is out_arg and add.rhs is not out_arg:
        term = add.rhs
    elif add.rhs is out_arg and add.lhs is not out_arg:
        term = add.lhs
    else:
        return None
    if add.result.uses.get_length() != 1:  # the yield alone
        return None
    return LaneReduction(add, term, dim)


def is_body_op(reduction: LaneReduction, body_op: Operation) -> bool:
    """Whether `body_op` is emitted per iteration (everything but the add and the yield)."""
    return body_op is not reduction.add and not isinstance(body_op, linalg.YieldOp)
