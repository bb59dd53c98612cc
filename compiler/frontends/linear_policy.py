"""The one policy for a linear layer's constant weight W[N, K], shared by both frontends.

In order:
1. a weight that is exactly ternary per row ({-s, 0, +s}: BitNet b1.58) stays ternary,
   losslessly (`weight_recovery.ternary`);
2. a weight the frontend recovered losslessly from the model's own low-bit codes (torch int8 /
   packed codes, ONNX MatMulNBits / DequantizeLinear) keeps that format;
3. otherwise, when the user asked for a weight format (`--weights SPEC`), round-to-nearest
   quantization (`quantize.quantize`), its relative error reported; a layer whose K is not a
   multiple of 4 (the LUT tables group 4 activations) stays float with a note instead, like
   llama.cpp keeping tensors that do not fit its block size in a wider type;
4. otherwise the layer stays float (None).

Products with a constant operand that stay float although a weight format was asked for are
named in one message each (`kept_float`), which `lutc compile` prints.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lutc.compiler.frontends import weight_recovery
from lutc.compiler.frontends.quantize import (QuantizedWeight, WeightSpec, finite_weight,
                                              quantize_with_error)
from lutc.runtime.errors import LutcError


def low_bit_weight(w_nk: np.ndarray, spec: WeightSpec | None, hint: str,
                   report: list[tuple[str, float]], float_notes: list[str],
                   error: Callable[[str], LutcError],
                   recovered: Callable[[], QuantizedWeight | None] | None = None
                   ) -> QuantizedWeight | None:
    """The low-bit form of W[N, K] by the policy above, or None for a float layer. `report`
    collects (hint, relative error) of quantized layers, `float_notes` the `kept_float`
    messages; `error(message)` builds the frontend's LutcError naming the node (raised for
    non-finite weights); `recovered()` is the frontend's lossless recovery, if any."""
    if not finite_weight(w_nk):
        raise error(f"the weight '{hint}' has non-finite values (NaN or infinity)")
    qw = weight_recovery.ternary(w_nk)
    if qw is None and recovered is not None:
        qw = recovered()
    if qw is not None:
        return qw
    if spec is None:
        return None
    k = w_nk.shape[1]
    if k % 4:
        float_notes.append(kept_float(hint, None, f"its K = {k} input features (for "
                                      f"{w_nk.shape[0]} outputs) are not a multiple of 4"))
        return None
    qw, err = quantize_with_error(w_nk, spec)
    report.append((hint, err))
    return qw


def shared_batch_weight(x_shape: tuple[int, ...], b: np.ndarray) -> np.ndarray | None:
    """The one weight W[K, N] of a batched product x[..., M, K] @ b[..., K, N] whose constant b
    repeats the same matrix in every batch, or None. torch decomposes a linear layer on a
    non-contiguous input (e.g. `linear(x.transpose(1, 2))`) into bmm(x, expand(W^T)): without
    this the layer would stay float. Only when b's batch dims broadcast to x's (matmul
    broadcasting), so that x @ W has the product's shape."""
    if b.ndim < 3 or len(x_shape) < 2:
        return None
    x_batch = tuple(x_shape[:-2])
    try:
        if np.broadcast_shapes(x_batch, b.shape[:-2]) != x_batch:
            return None
    except ValueError:
        return None
    flat = b.reshape(-1, *b.shape[-2:])
    first = flat[0]
    if any(not np.array_equal(m, first) for m in flat[1:]):
        return None
    return first


def kept_float(name: str, weight_shape: tuple[int, ...] | None, why: str) -> str:
    """The message for a constant weight that stays float although a weight format was asked
    for: `name [shape]: kept float, why` (the shape as the model holds it, when known)."""
    shape = f" {list(weight_shape)}" if weight_shape is not None else ""
    return f"{name}{shape}: kept float, {why}"


LEFT_OPERAND = "the constant is the left operand of a batched product (W @ x)"
BATCHED = "its batches hold different matrices (a batched weight, not a linear layer)"


def note_float_product(a, b, names: tuple[str, str], spec: WeightSpec | None,
                       float_notes: list[str], shapes=(None, None)) -> None:
    """A product a @ b that is not a linear layer: when a weight format was asked for and one
    operand is a constant matrix (numpy), its `kept_float` message into float_notes. `names`
    are the operands' names for the message, `shapes` their model shapes where the constant
    the frontend sees is a broadcast copy (None: the constant's own shape)."""
    if spec is None or isinstance(a, np.ndarray) == isinstance(b, np.ndarray):
        return
    left = isinstance(a, np.ndarray)
    const = a if left else b
    if const.ndim < 2:
        return
    why = LEFT_OPERAND if left else BATCHED if const.ndim > 2 else "the input is a vector"
    shape = shapes[0 if left else 1] or const.shape
    float_notes.append(kept_float(names[0 if left else 1], tuple(shape), why))


def swap_last_two(rank: int) -> list[int]:
    """The permutation that transposes the last two dims of a rank-`rank` tensor: W @ x is
    (x^T @ W^T)^T, a linear layer with weight W on x^T."""
    return list(range(rank - 2)) + [rank - 1, rank - 2]
