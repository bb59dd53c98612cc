"""The k largest (or smallest) entries along one axis, and their indices, from ops the C emitter
already lowers (no new IR op): a rank per element, then a selection by rank.

For x of shape [.., n, ..] along `axis`, each element's rank is the number of elements that
come before it in the output order:

    rank[.., i, ..] = #{ j : beats(x[j], x[i]) or (x[j] == x[i] and j < i) }      (1)

    beats(a, b) = a > b   (largest)   or   a < b   (smallest)

NaN counts as larger than every number and equal to NaN (torch.topk's order), so `rank` is a
permutation of 0..n-1 on every row: equal values keep their index order (the lower index
first: ONNX TopK's rule; torch.topk on CPU agrees on the tested cases). Then

    indices[.., r, ..] = sum_i (rank[.., i, ..] == r) * i      for r < k                  (2)
    values = gather_elements(x, indices, axis)

(1) is one `linalg.generic` with a reduction over j (O(n^2) comparisons per row: meant for
router logits and other short axes, not a vocabulary), (2) one with a reduction over i
(O(k n)), and the gather a third. The result is always sorted; an unsorted request gets the
sorted order, which is one of the orders it allows.
"""

from __future__ import annotations

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects.linalg.attrs import IteratorTypeAttr
from xdsl.dialects.linalg.ops import GenericOp, YieldOp
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from lutc.compiler.frontends.graph_builder import (
    GraphBuilder,
    ScalarBuilder,
    _affine_map,
    _is_float,
    elem_of,
    i64,
    shape_of,
    tensor_type,
)


def topk(gb: GraphBuilder, x: SSAValue, k: int, axis: int,
         largest: bool = True) -> tuple[SSAValue, SSAValue]:
    """(values, indices) of the k largest (`largest`) or smallest entries of x along `axis`,
    sorted, ties by lower index; values keep x's element type, indices are i64. Both have x's
    shape with `axis` of size k. The caller checks 0 <= k <= n."""
    xs = shape_of(x)
    axis %= len(xs)
    assert 0 <= k <= xs[axis], (k, xs, axis)
    rank = _ranks(gb, x, axis, largest)
    indices = _select(gb, rank, axis, k)
    return gb.gather_elements(x, indices, axis), indices


def _ranks(gb: GraphBuilder, x: SSAValue, axis: int, largest: bool) -> SSAValue:
    """(1): rank[.., i, ..] over loop dims (x's dims, j) with j the reduction dim."""
    xs = shape_of(x)
    r = len(xs)
    elem = elem_of(x)
    body = Block(arg_types=[elem, elem, i64])
    sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
    xi, xj, acc = body.args
    order = "gt" if largest else "lt"
    if _is_float(elem):
        nan_i, nan_j = sb.isnan(xi), sb.isnan(xj)
        # NaN is the largest value: it beats numbers when largest, loses to them when smallest
        nan_wins = sb.logical_and(nan_j, sb.logical_not(nan_i)) if largest else \
            sb.logical_and(nan_i, sb.logical_not(nan_j))
        beats = sb.logical_or(sb.cmp(order, xj, xi), nan_wins)
        equal = sb.logical_or(sb.cmp("eq", xj, xi), sb.logical_and(nan_i, nan_j))
    else:
        beats, equal = sb.cmp(order, xj, xi), sb.cmp("eq", xj, xi)
    j_first = sb.cmp("lt", sb.index_to_i64(sb.index(r)), sb.index_to_i64(sb.index(axis)))
    before = sb.logical_or(beats, sb.logical_and(equal, j_first))
    sb.insert(YieldOp(sb.add(acc, sb.select(before, sb.const(1, i64), sb.const(0, i64)))))
    out = gb.full(xs, 0, i64)
    op = GenericOp(
        [x, x], [out], Region(body),
        [_affine_map(r + 1, list(range(r))),
         _affine_map(r + 1, [r if d == axis else d for d in range(r)]),
         _affine_map(r + 1, list(range(r)))],
        [IteratorTypeAttr.parallel()] * r + [IteratorTypeAttr.reduction()],
        [tensor_type(xs, i64)],
    )
    return gb._insert(op)


def _select(gb: GraphBuilder, rank: SSAValue, axis: int, k: int) -> SSAValue:
    """(2): indices[.., r, ..] over loop dims (output dims, i) with i the reduction dim."""
    rs = shape_of(rank)
    nd = len(rs)
    out_shape = tuple(k if d == axis else s for d, s in enumerate(rs))
    body = Block(arg_types=[i64, i64])
    sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
    rank_i, acc = body.args
    want = sb.index_to_i64(sb.index(axis))
    i = sb.index_to_i64(sb.index(nd))
    hit = sb.cmp("eq", rank_i, want)
    sb.insert(YieldOp(sb.add(acc, sb.select(hit, i, sb.const(0, i64)))))
    out = gb.full(out_shape, 0, i64)
    op = GenericOp(
        [rank], [out], Region(body),
        [_affine_map(nd + 1, [nd if d == axis else d for d in range(nd)]),
         _affine_map(nd + 1, list(range(nd)))],
        [IteratorTypeAttr.parallel()] * nd + [IteratorTypeAttr.reduction()],
        [tensor_type(out_shape, i64)],
    )
    return gb._insert(op)


def topk_numpy(x: np.ndarray, k: int, axis: int,
               largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The same result on a constant (import-time folding): a stable sort on the key of (1)."""
    moved = np.moveaxis(np.asarray(x), axis, -1)
    n = moved.shape[-1]
    position = np.broadcast_to(np.arange(n), moved.shape)
    if moved.dtype.kind == "f":
        nan = np.isnan(moved)
        value = np.where(nan, 0, -moved if largest else moved)
        keys = (position, value, ~nan if largest else nan)  # lexsort: last key is primary
    else:
        keys = (position, -moved if largest else moved)
    order = np.lexsort(keys, axis=-1)[..., :k]
    values = np.take_along_axis(moved, order, -1)
    return np.moveaxis(values, -1, axis), np.moveaxis(order.astype(np.int64), -1, axis)
