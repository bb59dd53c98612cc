"""The one policy for a linear layer's constant weight W[N, K], shared by both frontends.

In order:
1. a weight that is exactly ternary per row ({-s, 0, +s}: BitNet b1.58) stays ternary,
   losslessly (`weight_recovery.ternary`);
2. a weight the frontend recovered losslessly from the model's own low-bit codes (torch int8 /
   packed codes, ONNX MatMulNBits / DequantizeLinear) keeps that format;
3. otherwise, when the user asked for a weight format (`--weights SPEC`), round-to-nearest
   quantization (`quantize.quantize`; K must be a multiple of 4), its relative error reported;
4. otherwise the layer stays float (None).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lutc.compiler.frontends import weight_recovery
from lutc.compiler.frontends.quantize import (QuantizedWeight, WeightSpec, finite_weight,
                                              quantize_with_error)
from lutc.runtime.errors import LutcError


def low_bit_weight(w_nk: np.ndarray, spec: WeightSpec | None, hint: str,
                   report: list[tuple[str, float]], error: Callable[[str], LutcError],
                   recovered: Callable[[], QuantizedWeight | None] | None = None
                   ) -> QuantizedWeight | None:
    """The low-bit form of W[N, K] by the policy above, or None for a float layer. `report`
    collects (hint, relative error) of quantized layers; `error(message)` builds the frontend's
    LutcError naming the node; `recovered()` is the frontend's lossless recovery, if any."""
    if not finite_weight(w_nk):
        raise error("the weight has non-finite values (NaN or infinity)")
    qw = weight_recovery.ternary(w_nk)
    if qw is None and recovered is not None:
        qw = recovered()
    if qw is not None:
        return qw
    if spec is None:
        return None
    k = w_nk.shape[1]
    if k % 4:
        raise error(f"low-bit weights need K (input features) to be a multiple of 4, got K = {k}")
    qw, err = quantize_with_error(w_nk, spec)
    report.append((hint, err))
    return qw
