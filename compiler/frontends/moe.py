"""Mixture-of-experts weights chosen per row at run time, as low-bit linear layers.

transformers' `batched_mm` experts (Qwen3-MoE, Mixtral, ... with
`experts_implementation="batched_mm"`) export as

    W_sel = aten.index(W, [expert_ids])      W: [E, N, K] parameter, expert_ids: [S] (run time)
    y     = aten.bmm(W_sel, x[S, K, 1])      -> [S, N, 1]      (is_transposed=False)
    y     = aten.bmm(x[S, 1, K], W_sel)      -> [S, 1, N]      (is_transposed=True: W is [E, K, N])

Gathering W at run time would keep every expert float and copy S weight matrices per call.
Instead each expert is one linear layer, y_e = x @ W[e]^T, imported by the frontend's linear
policy (so `--weights` quantizes it into a `lut.dequantize` that lut-lower-mpgemm turns into a
LUT mpGEMM, and `--stats` counts it), and row s takes expert expert_ids[s]'s result:

    y[s] = stack_e(y_e)[expert_ids[s], s]          (a gather_elements over the expert axis)

transformers' `grouped_mm` experts (its default on CPU) sort the routed rows by expert and call
`transformers.grouped_mm_fallback(x_sorted[S, K], W[E, K, N], offsets[E])`, where row s belongs
to expert e(s) = #{e : offsets[e] <= s} and rows at or past offsets[E-1] are zero; the same
per-expert layers compute it (`grouped_mm`), with e(s) in place of expert_ids[s].

This is dense: every expert runs on every row, E times the work of the routed rows, but the
routing itself (router linear -> softmax -> topk -> normalize, zero weight outside the top k)
is exact, and no expert's weights are ever copied. A sparse dispatch would need run-time row
counts per expert, which the static-shape IR does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from xdsl.ir import SSAValue

from lutc.compiler.frontends.graph_builder import shape_of


@dataclass
class SelectedExperts:
    """`weights[ids]` not yet built: weights [E, A, B] constant, ids [S] i64 SSA value."""

    weights: np.ndarray
    ids: SSAValue
    node: torch.fx.Node  # the parameter's node (names and lossless recovery)


def is_expert_selection(node: torch.fx.Node, x, indices) -> bool:
    """aten.index(W, [ids]) of a constant 3-D float W by one 1-D run-time index on dim 0 whose
    every user is a batched matmul: the form `expert_bmm` computes without the gather."""
    return (isinstance(x, np.ndarray) and x.ndim == 3 and x.dtype == np.float32
            and len(indices) == 1 and isinstance(indices[0], SSAValue)
            and len(shape_of(indices[0])) == 1 and bool(node.users)
            and all(u.op == "call_function" and u.target is torch.ops.aten.bmm.default
                    for u in node.users))


def _per_expert(ctx, rows: SSAValue, w_nk: list[np.ndarray], base: str) -> SSAValue:
    """[E, R, N]: each expert's linear layer (the frontend's policy: quantized, lossless or
    float) on all R rows."""
    gb = ctx.gb
    r = shape_of(rows)[0]
    return gb.concat([gb.reshape(ctx.importer.linear(ctx, rows, w, None, None,
                                                     hint=f"{base}.{e}"), (1, r, w.shape[0]))
                      for e, w in enumerate(w_nk)], 0)


def grouped_mm(ctx, x, weights, offsets, weight_node) -> SSAValue:
    """transformers.grouped_mm_fallback(x [S, K], weights [E, K, N] constant, offsets [E] run
    time) -> [S, N]: row s through expert #{e : offsets[e] <= s}, zero past offsets[E-1].
    One-line errors: weights computed at run time, or shapes that do not agree."""
    gb = ctx.gb
    if not isinstance(weights, np.ndarray) or weights.ndim != 3:
        raise ctx.error("grouped_mm needs constant [experts, K, N] weights")
    x, offsets = ctx.tensor(x), ctx.tensor(offsets)
    s, k = shape_of(x)
    n_experts, k2, n = weights.shape
    if k2 != k or shape_of(offsets) != (n_experts,):
        raise ctx.error(f"grouped_mm of x {[s, k]} with weights {list(weights.shape)} and "
                        f"offsets {list(shape_of(offsets))} do not agree")
    base = ctx.importer.hint_for(weight_node).removesuffix(".weight")
    stacked = _per_expert(ctx, x, [np.ascontiguousarray(weights[e].T)
                                   for e in range(n_experts)], base)  # [E, S, N]
    # e(s) = #{e : offsets[e] <= s}
    starts = gb.binary("le", gb.reshape(gb.cast(offsets, np.int64), (1, n_experts)),
                       np.arange(s, dtype=np.int64).reshape(s, 1))  # [S, E]
    expert = gb.reduce(gb.where(starts, np.int64(1), np.int64(0)), [1], "sum")  # [S]
    inside = gb.binary("lt", expert, np.int64(n_experts))
    choice = gb.binary("min", expert, np.int64(n_experts - 1))
    choice = gb.broadcast_to(gb.reshape(choice, (1, s, 1)), (1, s, n))
    y = gb.reshape(gb.gather_elements(stacked, choice, 0), (s, n))
    return gb.where(gb.reshape(inside, (s, 1)), y, np.float32(0.0))


def expert_bmm(ctx, a, b) -> SSAValue:
    """aten.bmm(a, b) where a or b is a SelectedExperts: [S, N, K] @ [S, K, M] -> [S, N, M] or
    [S, M, K] @ [S, K, N] -> [S, M, N], one linear layer per expert (see the module doc).
    Errors (one line, naming the node): both operands selected experts, or a selection whose
    row count differs from the other operand's batch."""
    gb = ctx.gb
    if isinstance(a, SelectedExperts) and isinstance(b, SelectedExperts):
        raise ctx.error("a batched matmul of two expert selections is not supported")
    selected_first = isinstance(a, SelectedExperts)
    sel, x = (a, b) if selected_first else (b, a)
    x = ctx.tensor(x)
    s = shape_of(sel.ids)[0]
    if shape_of(x)[0] != s:
        raise ctx.error(f"expert selection of {s} rows multiplies a batch of "
                        f"{shape_of(x)[0]}")
    n_experts = sel.weights.shape[0]
    if selected_first:  # W[e]: [N, K]; x: [S, K, M] -> rows [S*M, K]
        _, n, k = sel.weights.shape
        m = shape_of(x)[2]
        rows = gb.reshape(gb.transpose(x, [0, 2, 1]) if m != 1 else x, (s * m, k))
        per_expert = [sel.weights[e] for e in range(n_experts)]
    else:  # W[e]: [K, N] is the linear weight W[e]^T; x: [S, M, K]
        _, k, n = sel.weights.shape
        m = shape_of(x)[1]
        rows = gb.reshape(x, (s * m, k))
        per_expert = [np.ascontiguousarray(sel.weights[e].T) for e in range(n_experts)]
    base = ctx.importer.hint_for(sel.node).removesuffix(".weight")
    stacked = gb.reshape(_per_expert(ctx, rows, per_expert, base), (n_experts, s, m, n))
    choice = gb.broadcast_to(gb.reshape(gb.cast(sel.ids, np.int64), (1, s, 1, 1)), (1, s, m, n))
    y = gb.reshape(gb.gather_elements(stacked, choice, 0), (s, m, n))
    if not selected_first:
        return y
    return gb.reshape(y, (s, n, m)) if m == 1 else gb.transpose(y, [0, 2, 1])
