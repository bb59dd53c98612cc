"""`lut-fuse-attention`: the frontends' attention chains become one `lut.attention`.

ONNX Attention, torch's scaled_dot_product_attention and exporters' plain graphs all reach
the graph level as the same chain of linalg ops on [B, H, S, D] (or [H, S, D]) tensors:

    scores = batch_matmul(Q, K^T)            K^T: a transpose of K, K's heads repeated for
    scores = scores * c  |  scores / c        grouped-query attention (expand, broadcast,
    scores = where(keep, scores, -inf)        collapse) before or after it; Q and K^T may
           | scores + mask                    each be scaled by a constant instead (torch's
      (any number, in any order;              ONNX exporters: sqrt(scale) on both)
       the causal tril is a `keep`)
    P = softmax(scores, -1)                  max, exp(x - max), sum, divide; optionally
                                             where(isnan(P), 0, P) (the exporters' guard)
    out = batch_matmul(P, V)                 V: with its heads repeated the same way

Rooted at the last matmul, the pattern walks back to Q, K, V and rewrites the chain to
lutrt_attention's op: no [S, S] score buffer, K and V read once per kv head, causal keys
skipped. What it folds away: the K transpose, the head repetition, a constant causal mask
(top-left, bottom-right, or a sliding window), the scale. Masks that depend on the batch
but not the head become one [B, Sq, Skv] additive mask (a small linalg.generic); a constant
boolean mask too large to be inlined (a `lut.weight`, whose values a pass cannot read)
goes to the op as it is, and code generation reads it (a causal weight becomes a causal
mode there; so does a constant f32 mask of 0 and -inf / finfo.min). A K^T the pattern does
not recognize gets one transpose to [.., KVH, Skv, D] (then V keeps its repeated heads).
Anything else (a mask per head, a scale after the mask, a batch dim broadcast in a matmul,
2-D or 5-D matmuls, V's head dim != Q's, non-f32) is left alone: the chain is still correct.
Fully masked rows: the chain gives NaN (without the guard), lut.attention zeros.
torch's decomposed SDPA (`run_decompositions`) is matched too: its rows guard
where(all(scores == -inf, -1), 0, P) (zeros for fully masked rows, like lut.attention), and its
3-D matmuls on [B * H, S, D] views of a batch of one (collapse_shape of [1, H, S, D]; the
scores expanded back to [1, H, Sq, Skv]); the op then runs on the 4-D tensors and its result
is collapsed to the matmul's shape.

Before (ONNX Attention, 4 query heads over 2 kv heads, is_causal):
  %kt = linalg.transpose ins(%k : tensor<1x2x5x8xf32>) ... permutation = [0, 1, 3, 2]
  ... expand_shape, broadcast generic, collapse_shape (GQA) of %kt and %v ...
  %s  = linalg.generic {... reduction ...} ins(%q, %ktg ...)    // Q K^T
  %ss = linalg.generic ins(%s) { mulf %a, 0.353553385 }
  %sm = linalg.generic ins(%tril, %ss) { select %c, %a, -inf }
  ... max, exp(x - max), sum, div ...
  %o  = linalg.generic {... reduction ...} ins(%p, %vg ...)      // P V
After:
  %o = lut.attention %q, %k, %v {causal = 2 : i64, scale = 0.353553385 : f32, ...}
         : tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32> -> tensor<1x4x3x8xf32>
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, tensor
from xdsl.dialects.builtin import (
    AffineMapAttr,
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    i64,
)
from xdsl.dialects.linalg import ops as linalg
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from lutc.dialects.attention_ops import AttentionOp, causal_mode_of
from lutc.dialects.lut_ops import WeightOp
from lutc.passes.tensor_dce import erase_dead_tensor_ops

f32 = Float32Type()
i1 = IntegerType(1)


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    return tuple(typ.get_shape()) if isinstance(typ, TensorType) else ()


def _generic(value: SSAValue) -> linalg.GenericOp | None:
    owner = value.owner
    return owner if isinstance(owner, linalg.GenericOp) else None


def _maps(op: linalg.GenericOp) -> list[AffineMap]:
    return [m.data for m in op.indexing_maps.data]


def _dims(m: AffineMap) -> list[int | None] | None:
    """The map's results as dim positions (None for the constant 0), or None if other."""
    out: list[int | None] = []
    for e in m.results:
        if isinstance(e, AffineDimExpr):
            out.append(e.position)
        elif isinstance(e, AffineConstantExpr) and e.value == 0:
            out.append(None)
        else:
            return None
    return out


def _scalar_constant(value: SSAValue) -> float | None:
    const = value.owner
    if isinstance(const, arith.ConstantOp) and isinstance(const.value, FloatAttr):
        return float(const.value.value.data)
    return None


def _body(op: linalg.GenericOp) -> tuple[list[tuple[str, tuple]], tuple] | None:
    """The body as [(op name, operand refs)] and the yielded ref; a ref is ("arg", i),
    ("op", j) or ("const", x) for a float constant. None for bodies with other operands."""
    refs: dict[SSAValue, tuple] = {}
    ops: list[tuple[str, tuple]] = []

    def ref(v: SSAValue):
        if isinstance(v, BlockArgument) and v.owner is op.body.block:
            return ("arg", v.index)
        if v in refs:
            return refs[v]
        c = _scalar_constant(v)
        return None if c is None else ("const", c)

    for o in op.body.block.ops:
        if isinstance(o, linalg.YieldOp):
            return (ops, ref(o.operands[0])) if len(o.operands) == 1 else None
        if isinstance(o, arith.ConstantOp):
            c = _scalar_constant(o.result)
            if c is None and isinstance(o.value.type, IntegerType):
                continue  # an integer constant no pattern uses: refs to it give None
            refs[o.result] = ("const", c)
            continue
        args = tuple(ref(v) for v in o.operands)
        if None in args or len(o.results) != 1:
            return None
        ops.append((o.name, args))
        refs[o.results[0]] = ("op", len(ops) - 1)
    return None


def _elementwise(op: linalg.GenericOp | None, shape: tuple[int, ...]) -> bool:
    """A parallel map writing a fresh `shape` tensor with an identity output map."""
    if op is None or len(op.outputs) != 1 or _shape(op.results[0]) != shape:
        return False
    rank = len(shape)
    if any(str(t.data) != "parallel" for t in op.iterator_types.data):
        return False
    return _dims(_maps(op)[-1]) == list(range(rank))


def _batch_matmul(op: linalg.GenericOp | None) -> tuple[SSAValue, SSAValue] | None:
    """(a, b) of out[.., m, n] = sum_k a[.., m, k] b[.., k, n] over a zero fill, with 1 or 2
    batch dims shared by both operands (no broadcasting)."""
    if op is None or len(op.inputs) != 2 or len(op.outputs) != 1:
        return None
    rank = len(_shape(op.results[0]))
    if rank not in (3, 4):
        return None
    kinds = [str(t.data) for t in op.iterator_types.data]
    if kinds != ["parallel"] * rank + ["reduction"]:
        return None
    batch = list(range(rank - 2))
    m, n, k = rank - 2, rank - 1, rank
    if [_dims(x) for x in _maps(op)] != [batch + [m, k], batch + [k, n], batch + [m, n]]:
        return None
    body = _body(op)
    mul = [("arith.mulf", (("arg", 0), ("arg", 1))), ("arith.mulf", (("arg", 1), ("arg", 0)))]
    if body is None or len(body[0]) != 2 or body[0][0] not in mul or body[1] != ("op", 1):
        return None
    if body[0][1] not in [("arith.addf", (("arg", 2), ("op", 0))),
                          ("arith.addf", (("op", 0), ("arg", 2)))]:
        return None
    fill = op.outputs[0].owner
    if not isinstance(fill, linalg.FillOp) or _scalar_constant(fill.inputs[0]) != 0.0:
        return None
    return op.inputs[0], op.inputs[1]


def _row_reduction(value: SSAValue, combine: tuple[str, ...], init: float) -> SSAValue | None:
    """x of expand_shape(reduce(x, last dim)) [.., 1], the reduction `combine` from `init`."""
    expand = value.owner
    if not isinstance(expand, tensor.ExpandShapeOp):
        return None
    op = _generic(expand.src)
    if op is None or len(op.inputs) != 1 or len(op.outputs) != 1:
        return None
    x = op.inputs[0]
    rank = len(_shape(x))
    if _shape(value) != _shape(x)[:-1] + (1,):
        return None
    if [str(t.data) for t in op.iterator_types.data] != ["parallel"] * (rank - 1) + ["reduction"]:
        return None
    if [_dims(x) for x in _maps(op)] != [list(range(rank)), list(range(rank - 1))]:
        return None
    body = _body(op)
    if body is None or len(body[0]) != 1 or body[1] != ("op", 0) or body[0][0][0] not in combine \
            or set(body[0][0][1]) != {("arg", 0), ("arg", 1)}:
        return None
    fill = op.outputs[0].owner
    if not isinstance(fill, linalg.FillOp) or _number(fill.inputs[0]) != init:
        return None
    return x


def _number(value: SSAValue) -> float | int | None:
    """A scalar float or integer constant (i1 true is 1), else None."""
    const = value.owner
    if isinstance(const, arith.ConstantOp) and isinstance(const.value, IntegerAttr):
        v = int(const.value.value.data)
        return 1 if const.value.type == i1 and v != 0 else v
    return _scalar_constant(value)


def _body_ops(op: linalg.GenericOp) -> list[Operation] | None:
    """The body's ops other than constants, if the last of them is what it yields."""
    ops = [o for o in op.body.block.ops if not isinstance(o, (arith.ConstantOp, linalg.YieldOp))]
    yielded = op.body.block.last_op
    if not ops or not isinstance(yielded, linalg.YieldOp) or len(yielded.operands) != 1 \
            or yielded.operands[0] is not ops[-1].results[0]:
        return None
    return ops


def _unary_input(op: linalg.GenericOp | None, shape, test) -> SSAValue | None:
    """x of an elementwise map y = f(x) over `shape` whose body is one op with block
    argument 0 and one constant, for which test(op, constant value) holds."""
    if not _elementwise(op, shape) or len(op.inputs) != 1 \
            or _dims(_maps(op)[0]) != list(range(len(shape))):
        return None
    ops = _body_ops(op)
    if ops is None or len(ops) != 1 or len(ops[0].operands) != 2:
        return None
    arg = op.body.block.args[0]
    a, b = ops[0].operands
    other = b if a is arg else a if b is arg else None
    if other is None or other is arg or not test(ops[0], _number(other)):
        return None
    return op.inputs[0]


def _logical_not_input(value: SSAValue) -> SSAValue | None:
    """x of xori(x, true)."""
    return _unary_input(_generic(value), _shape(value),
                        lambda o, c: isinstance(o, arith.XOrIOp) and c == 1)


def _masked_rows_guard_input(value: SSAValue) -> tuple[SSAValue, SSAValue | None]:
    """(p, x) of where(all(x == -inf, -1), 0, p): torch's _safe_softmax, which its SDPA
    decomposes into (zeros for rows whose scores x are all -inf: what lut.attention gives),
    as not(any(not(x == -inf))) broadcast over the last dim; else (value, None)."""
    shape = _shape(value)
    rank = len(shape)
    select = _generic(value)
    if not _elementwise(select, shape) or len(select.inputs) != 3 \
            or [_dims(m) for m in _maps(select)] != [list(range(rank - 1)) + [None]] + \
            [list(range(rank))] * 3 \
            or _body(select) != ([("arith.select", (("arg", 0), ("arg", 1), ("arg", 2)))],
                                 ("op", 0)):
        return value, None
    cond, zeros, p = select.inputs
    fill = zeros.owner
    if not isinstance(fill, linalg.FillOp) or _scalar_constant(fill.inputs[0]) != 0.0:
        return value, None
    any_kept = _logical_not_input(cond)
    kept = _row_reduction(any_kept, ("arith.ori",), 0) if any_kept is not None else None
    masked = _logical_not_input(kept) if kept is not None else None
    x = _unary_input(_generic(masked), shape, lambda o, c: isinstance(o, arith.CmpfOp)
                     and o.predicate.value.data == 1 and c == -math.inf) \
        if masked is not None else None  # predicate 1: oeq
    return (p, x) if x is not None else (value, None)


def _unit_batch_view(value: SSAValue) -> SSAValue | None:
    """x [1, H, a, b] of collapse_shape(x) to [H, a, b], else None."""
    op = value.owner
    if isinstance(op, tensor.CollapseShapeOp) and _groups(op) == [[0, 1], [2], [3]] \
            and _shape(op.src)[0] == 1:
        return op.src
    return None


def _softmax_input(p: SSAValue) -> SSAValue | None:
    """x of p = exp(x - max(x)) / sum(exp(x - max(x))) along the last dim (graph_builder's
    softmax)."""
    shape = _shape(p)
    rank = len(shape)
    row = list(range(rank - 1)) + [None]

    def binary(op) -> tuple[SSAValue, SSAValue] | None:
        if not _elementwise(op, shape) or len(op.inputs) != 2:
            return None
        if [_dims(x) for x in _maps(op)[:2]] != [list(range(rank)), row]:
            return None
        return op.inputs[0], op.inputs[1]

    div = _generic(p)
    pair = binary(div)
    if pair is None or _body(div) != ([("arith.divf", (("arg", 0), ("arg", 1)))], ("op", 0)):
        return None
    e, total = pair
    if _row_reduction(total, ("arith.addf",), 0.0) is not e:
        return None
    exp = _generic(e)
    pair = binary(exp)
    if pair is None or _body(exp) != ([("arith.subf", (("arg", 0), ("arg", 1))),
                                        ("math.exp", (("op", 0),))], ("op", 1)):
        return None
    x, top = pair
    if _row_reduction(top, ("arith.maximumf", "arith.maxnumf"), -math.inf) is not x:
        return None
    return x


@dataclass
class MaskPiece:
    """One step of the score chain after the scale: `add` adds value, `keep` keeps the
    scores where value is true (-inf elsewhere), `drop` the opposite. dims: value's dims as
    positions in the scores' dims (None: broadcast)."""

    kind: str
    value: SSAValue
    dims: list[int | None]


def _nan_guard_input(value: SSAValue) -> SSAValue:
    """p of where(isnan(p), 0, p) (torch's ONNX exporters guard softmax rows whose scores are
    all -inf so; lut.attention gives those rows zeros too), else value itself."""
    shape = _shape(value)
    select = _generic(value)
    if not _elementwise(select, shape) or len(select.inputs) != 2 \
            or any(_dims(m) != list(range(len(shape))) for m in _maps(select)) \
            or _body(select) != ([("arith.select", (("arg", 0), ("const", 0.0), ("arg", 1)))],
                                 ("op", 0)):
        return value
    cond, p = select.inputs
    isnan = _generic(cond)
    if not _elementwise(isnan, shape) or list(isnan.inputs) != [p] \
            or _dims(_maps(isnan)[0]) != list(range(len(shape))) \
            or _body(isnan) != ([("arith.cmpf", (("arg", 0), ("arg", 0)))], ("op", 0)):
        return value
    cmp = next(iter(isnan.body.block.ops))
    if not isinstance(cmp, arith.CmpfOp) or cmp.predicate.value.data != 14:  # uno: isnan
        return value
    return p


def _mask_piece(op: linalg.GenericOp | None, scores_shape) -> tuple[SSAValue, MaskPiece] | None:
    """(the scores before, the step) of one masking map on the scores."""
    rank = len(scores_shape)
    if not _elementwise(op, scores_shape) or len(op.inputs) != 2:
        return None
    body = _body(op)
    if body is None or len(body[0]) != 1 or body[1] != ("op", 0):
        return None
    maps = [_dims(m) for m in _maps(op)[:2]]
    name, args = body[0][0]
    for s_slot in (0, 1):
        if maps[s_slot] != list(range(rank)) or _shape(op.inputs[s_slot]) != scores_shape:
            continue
        m_slot = 1 - s_slot
        other = op.inputs[m_slot]
        if maps[m_slot] is None:
            return None
        elem = other.type.get_element_type()
        s_ref, m_ref, inf = ("arg", s_slot), ("arg", m_slot), ("const", -math.inf)
        if name == "arith.addf" and set(args) == {s_ref, m_ref} and elem == f32:
            return op.inputs[s_slot], MaskPiece("add", other, maps[m_slot])
        if name == "arith.select" and elem == i1:
            if args == (m_ref, s_ref, inf):
                return op.inputs[s_slot], MaskPiece("keep", other, maps[m_slot])
            if args == (m_ref, inf, s_ref):
                return op.inputs[s_slot], MaskPiece("drop", other, maps[m_slot])
    return None


def _scale_of(op: linalg.GenericOp | None, shape) -> tuple[SSAValue, float] | None:
    """(x, c) of x * c, c * x or x / c with a constant c."""
    if not _elementwise(op, shape) or len(op.inputs) != 1 \
            or _dims(_maps(op)[0]) != list(range(len(shape))):
        return None
    body = _body(op)
    if body is None or len(body[0]) != 1 or body[1] != ("op", 0):
        return None
    name, args = body[0][0]
    consts = [a[1] for a in args if a[0] == "const"]
    if len(consts) != 1 or ("arg", 0) not in args:
        return None
    if name == "arith.mulf":
        return op.inputs[0], consts[0]
    if name == "arith.divf" and args[0] == ("arg", 0):
        return op.inputs[0], 1.0 / consts[0]
    return None


def _groups(op) -> list[list[int]]:
    return [[int(i.value.data) for i in g.data] for g in op.reassociation.data]


def _heads_repeated(value: SSAValue) -> tuple[SSAValue, int] | None:
    """(x, rep) of collapse(broadcast(expand(x))): the frontends' grouped-query expansion
    of x [.., KVH, a, b] to [.., KVH * rep, a, b], head h reading x's head h / rep."""
    collapse = value.owner
    if not isinstance(collapse, tensor.CollapseShapeOp):
        return None
    rank = len(_shape(value))
    hd = rank - 3
    if _groups(collapse) != [[d] for d in range(hd)] + [[hd, hd + 1]] \
            + [[d + 1] for d in range(hd + 1, rank)]:
        return None
    bcast = _generic(collapse.src)
    wide = _shape(collapse.src)
    if not _elementwise(bcast, wide) or len(bcast.inputs) != 1 \
            or _body(bcast) != ([], ("arg", 0)):
        return None
    if _dims(_maps(bcast)[0]) != [d if d != hd + 1 else None for d in range(rank + 1)]:
        return None
    expand = bcast.inputs[0].owner
    if not isinstance(expand, tensor.ExpandShapeOp) or _shape(expand.result)[hd + 1] != 1:
        return None
    x = expand.src
    if _shape(x) != wide[:hd + 1] + wide[hd + 2:]:
        return None
    return x, wide[hd + 1]


def _transpose_input(value: SSAValue) -> tuple[SSAValue, list[int]] | None:
    op = value.owner
    if isinstance(op, linalg.TransposeOp):
        return op.inputs[0], [int(p) for p in op.permutation.get_values()]
    return None


@dataclass
class Operand:
    """A value the rewrite passes to lut.attention: `value`, transposed by `perm` first
    when perm is not the identity."""

    value: SSAValue
    perm: list[int] = field(default_factory=list)


def _keys(kt: SSAValue) -> tuple[Operand, int]:
    """K [.., KVH, Skv, D] and the head repetition, from K^T [.., H, D, Skv]."""
    rank = len(_shape(kt))
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    rep = 1
    gqa = _heads_repeated(kt)
    if gqa is not None:  # ONNX: the repetition after the transpose
        kt, rep = gqa
    t = _transpose_input(kt)
    if t is None:
        return Operand(kt, swap), rep
    x, perm = t
    composed = [perm[s] for s in swap]  # K's dim d is x's dim perm[swap[d]]
    if composed == list(range(rank)) and rep == 1:
        gqa = _heads_repeated(x)  # torch: the repetition before the transpose
        if gqa is not None:
            return Operand(gqa[0]), gqa[1]
    return Operand(x, composed), rep


def _constant_array(value: SSAValue) -> np.ndarray | None:
    const = value.owner
    if isinstance(const, arith.ConstantOp) and isinstance(const.value, DenseIntOrFPElementsAttr):
        data = np.array(const.value.get_values())
        return np.broadcast_to(data, _shape(value)) if data.size != math.prod(_shape(value)) \
            else data.reshape(_shape(value))
    return None


@dataclass
class Match:
    q: SSAValue
    k: Operand
    v: Operand
    scale: float
    pieces: list[MaskPiece]
    rep: int
    batch_view: bool = False  # the chain's output is a [H, Sq, D] view of the op's result


def match_attention(out: linalg.GenericOp) -> Match | None:
    """The attention chain ending in `out` = P V, or None."""
    pv = _batch_matmul(out)
    if pv is None:
        return None
    p, v = pv
    batch_view = False  # decomposed SDPA: 3-D matmuls on views of [1, H, S, D]
    if len(_shape(out.results[0])) == 3:
        p4, v4 = _unit_batch_view(p), _unit_batch_view(v)
        if p4 is not None and v4 is not None:
            p, v, batch_view = p4, v4, True
    p, checked = _masked_rows_guard_input(p)
    scores = _softmax_input(_nan_guard_input(p))
    if scores is None or checked not in (None, scores):
        return None
    shape = _shape(scores)
    pieces: list[MaskPiece] = []
    while (step := _mask_piece(_generic(scores), shape)) is not None:
        scores, piece = step
        pieces.append(piece)
    pieces.reverse()
    scale = 1.0
    scaled = _scale_of(_generic(scores), shape)
    if scaled is not None:
        scores, scale = scaled
    if batch_view:  # scores = expand_shape(Q K^T on [H, Sq, D] views) to [1, H, Sq, Skv]
        expand = scores.owner
        if not isinstance(expand, tensor.ExpandShapeOp) or _groups(expand) != [[0, 1], [2], [3]]:
            return None
        qk = _batch_matmul(_generic(expand.src))
        qk = qk and tuple(_unit_batch_view(x) for x in qk)
    else:
        qk = _batch_matmul(_generic(scores))
    if qk is None or None in qk:
        return None
    q, kt = qk
    for which in ("q", "kt"):  # exporters scale Q and K^T by sqrt(scale) each, or Q alone
        x = q if which == "q" else kt
        scaled = _scale_of(_generic(x), _shape(x))
        if scaled is not None:
            x, factor = scaled
            scale *= factor
            q, kt = (x, kt) if which == "q" else (q, x)
    k, rep = _keys(kt)
    gqa = _heads_repeated(v)
    if gqa is not None and gqa[1] == rep:
        v = gqa[0]
    elif rep != 1:
        return None  # K's heads repeated, V's not (never seen): kept simple
    # else V keeps its repeated heads when K's repetition was not recognized (torch's dynamo
    # exporter flattens K's heads with the batch): correct, only not GQA-shaped
    if any(x.type.get_element_type() != f32 for x in (q, k.value, v)):
        return None  # lutrt_attention is f32
    if _shape(q)[-1] != _shape(v)[-1]:
        return None  # lutrt_attention has one head dim for Q, K and V
    rank = len(shape)
    heads = rank - 3
    for piece in pieces:  # the runtime's mask is one per batch element, shared by the heads
        if shape[heads] > 1 and heads in piece.dims:
            return None
    return Match(q, k, Operand(v), scale, pieces, rep, batch_view)


class AttentionChainToOp(RewritePattern):
    """batch_matmul(softmax(mask(scale * batch_matmul(Q, K^T))), V) -> lut.attention."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: linalg.GenericOp, rewriter: PatternRewriter) -> None:
        found = match_attention(op)
        if found is None:
            return
        new_ops: list[Operation] = []
        q = found.q
        k = _materialize(found.k, new_ops)
        v = _materialize(found.v, new_ops)
        rank = len(_shape(q))
        b, sq, skv = (_shape(q)[0] if rank == 4 else 1), _shape(q)[-2], _shape(k)[-2]
        causal, window, mask = _masks(found.pieces, rank, b, sq, skv, new_ops)
        attn = AttentionOp(q, k, v, mask, found.scale, causal, window)
        attn.result.name_hint = op.results[0].name_hint or "attn"
        if not found.batch_view:
            rewriter.replace(op, [*new_ops, attn], [attn.result])
            return
        view = _collapse(attn.result, ([0, 1], [2], [3]), op.results[0].type)
        rewriter.replace(op, [*new_ops, attn, view], [view.results[0]])


def _materialize(operand: Operand, new_ops: list[Operation]) -> SSAValue:
    rank = len(operand.perm)
    if not operand.perm or operand.perm == list(range(rank)):
        return operand.value
    shape = _shape(operand.value)
    empty = tensor.EmptyOp([], TensorType(f32, [shape[p] for p in operand.perm]))
    t = linalg.TransposeOp(operand.value, empty.tensor,
                           DenseArrayBase.from_list(i64, operand.perm))
    empty.tensor.name_hint = t.results[0].name_hint = "heads"
    new_ops += [empty, t]
    return t.results[0]


def _unit_dims_dropped(piece: MaskPiece, out_dims: list[int],
                       new_ops: list[Operation]) -> SSAValue | None:
    """piece.value collapsed to the mask's dims when the others are unit dims, else None."""
    shape = _shape(piece.value)
    kept = [n for n, d in enumerate(piece.dims) if d is not None and d in out_dims]
    if [piece.dims[n] for n in kept] != out_dims or \
            any(shape[n] != 1 for n in range(len(shape)) if n not in kept):
        return None
    if len(kept) == len(shape):
        return piece.value
    groups: list[list[int]] = []
    pending: list[int] = []
    for n in range(len(shape)):
        pending.append(n)
        if n in kept:
            groups.append(pending)
            pending = []
    groups[-1] += pending
    collapse = _collapse(piece.value, groups, TensorType(f32, [shape[n] for n in kept]))
    collapse.results[0].name_hint = "mask"
    new_ops.append(collapse)
    return collapse.results[0]


def _collapse(value: SSAValue, groups, result_type) -> tensor.CollapseShapeOp:
    return tensor.CollapseShapeOp(
        operands=[value], result_types=[result_type],
        properties={"reassociation": ArrayAttr([ArrayAttr([IntegerAttr(n, 64) for n in g])
                                                for g in groups])})


def _masks(pieces: list[MaskPiece], rank: int, b: int, sq: int, skv: int,
           new_ops: list[Operation]) -> tuple[int, int, SSAValue | None]:
    """(causal, window, mask operand) that the pieces amount to."""
    i, j = rank - 2, rank - 1
    causal = window = 0
    for piece in pieces:  # a constant causal keep-mask becomes the op's causal mode
        if piece.kind == "keep" and piece.dims == [i, j]:
            keep = _constant_array(piece.value)
            mode = causal_mode_of(keep.astype(bool)) if keep is not None else None
            if mode is not None:
                causal, window = mode
                pieces = [p for p in pieces if p is not piece]
                break
    if not pieces:
        return causal, window, None
    if len(pieces) == 1 and pieces[0].dims == [i, j]:
        only = pieces[0]
        if only.kind == "add" or (only.kind == "keep" and causal == 0 and isinstance(
                only.value.owner, (WeightOp, arith.ConstantOp))):
            return causal, window, only.value  # as it is ([Sq, Skv] f32, or constant i1)
    batched = rank == 4 and b > 1 and any(0 in p.dims for p in pieces)
    out_dims = ([0] if batched else []) + [i, j]
    out_shape = ([b] if batched else []) + [sq, skv]
    if len(pieces) == 1 and pieces[0].kind == "add":
        view = _unit_dims_dropped(pieces[0], out_dims, new_ops)
        if view is not None:  # e.g. [1, 1, Sq, Skv] -> [Sq, Skv]: a view, no copy
            return causal, window, view
    # one additive mask: acc = 0, then each step on it as on the scores (s + acc equals
    # the chain's masked scores: -inf stays -inf, additions commute up to rounding)
    body = Block(arg_types=[p.value.type.get_element_type() for p in pieces] + [f32])
    zero = arith.ConstantOp(FloatAttr(0.0, f32))
    ninf = arith.ConstantOp(FloatAttr(-math.inf, f32))
    body.add_ops([zero, ninf])
    acc = zero.result
    for arg, piece in zip(body.args, pieces):
        if piece.kind == "add":
            step = arith.AddfOp(acc, arg)
        elif piece.kind == "keep":
            step = arith.SelectOp(arg, acc, ninf.result)
        else:
            step = arith.SelectOp(arg, ninf.result, acc)
        body.add_op(step)
        acc = step.result
    body.add_op(linalg.YieldOp(acc))
    position = {d: n for n, d in enumerate(out_dims)}
    maps = []
    for piece in pieces:
        exprs = [AffineExpr.constant(0) if d is None or d not in position
                 else AffineExpr.dimension(position[d]) for d in piece.dims]
        maps.append(AffineMapAttr(AffineMap(len(out_dims), 0, tuple(exprs))))
    maps.append(AffineMapAttr(AffineMap.identity(len(out_dims))))
    empty = tensor.EmptyOp([], TensorType(f32, out_shape))
    empty.tensor.name_hint = "mask_init"
    generic = linalg.GenericOp([p.value for p in pieces], [empty.tensor], Region(body), maps,
                               [linalg.IteratorTypeAttr.parallel()] * len(out_dims),
                               [TensorType(f32, out_shape)])
    generic.results[0].name_hint = "mask"
    new_ops += [empty, generic]
    return causal, window, generic.results[0]


@dataclass(frozen=True)
class FuseAttentionPass(ModulePass):
    name = "lut-fuse-attention"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(AttentionChainToOp(), apply_recursively=False).rewrite_module(op)
        erase_dead_tensor_ops(op)
