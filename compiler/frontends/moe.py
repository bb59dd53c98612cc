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
    outs = [gb.reshape(ctx.importer.linear(ctx, rows, w, None, None, hint=f"{base}.{e}"),
                       (1, s, m, n)) for e, w in enumerate(per_expert)]
    stacked = gb.concat(outs, 0)  # [E, S, M, N]
    choice = gb.broadcast_to(gb.reshape(gb.cast(sel.ids, np.int64), (1, s, 1, 1)), (1, s, m, n))
    y = gb.reshape(gb.gather_elements(stacked, choice, 0), (s, m, n))
    if not selected_first:
        return y
    return gb.reshape(y, (s, n, m)) if m == 1 else gb.transpose(y, [0, 2, 1])
