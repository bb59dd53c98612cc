"""Depthwise 1-D convolution (groups == in_channels: Mamba's and ConvNeXt-1D's short causal convs)
from slices, multiplies and adds: no new IR op, and every indexing map stays a plain dim.

For x [N, C, L], weight [C*m, 1, K] (m output channels per input channel), padding (pl, pr),
stride s and dilation d, with x padded by zeros to xp [N, C, pl + L + pr]:

    out[n, o, j] = bias[o] + sum_{k < K} w[o, 0, k] * xp[n, o // m, j*s + k*d]
    L_out = (pl + L + pr - d*(K - 1) - 1) // s + 1

(torch.nn.functional.conv1d and ONNX Conv, which both compute cross-correlation.) Each tap k is a
strided `tensor.extract_slice` of xp (start k*d, stride s, L_out elements), so the op costs K
slices and K multiply-adds over the output: fine for the short kernels depthwise convs use.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import SSAValue

from lutc.compiler.frontends.graph_builder import GraphBuilder, shape_of


def conv1d_output_length(length: int, kernel: int, pads: tuple[int, int], stride: int,
                         dilation: int) -> int:
    """L_out of the formula above (may be <= 0: the caller refuses that)."""
    return (pads[0] + length + pads[1] - dilation * (kernel - 1) - 1) // stride + 1


def depthwise_conv1d(gb: GraphBuilder, x: SSAValue, weight, bias, pads: tuple[int, int],
                     stride: int, dilation: int) -> SSAValue:
    """out [N, C*m, L_out] for x [N, C, L] (SSA), weight [C*m, 1, K] and bias [C*m] or None
    (numpy constants or SSA values). The caller has checked the shapes, that groups == C, and
    that L_out >= 1."""
    n, c, length = shape_of(x)
    cm, _, k = weight.shape if isinstance(weight, np.ndarray) else shape_of(weight)
    m = cm // c
    parts = [x]
    if pads[0]:
        parts.insert(0, np.zeros((n, c, pads[0]), np.float32))
    if pads[1]:
        parts.append(np.zeros((n, c, pads[1]), np.float32))
    xp = gb.concat([gb.value(p, "conv.pad") for p in parts], 2) if len(parts) > 1 else x
    out_len = conv1d_output_length(length, k, pads, stride, dilation)
    acc = None
    for tap in range(k):
        window = gb.slice(xp, [0, 0, tap * dilation], [n, c, out_len], [1, 1, stride])
        if m > 1:  # output channel o reads input channel o // m
            window = gb.reshape(gb.broadcast_to(gb.reshape(window, (n, c, 1, out_len)),
                                                (n, c, m, out_len)), (n, cm, out_len))
        if isinstance(weight, np.ndarray):
            w_tap = np.ascontiguousarray(weight[:, 0, tap].reshape(1, cm, 1), np.float32)
        else:
            w_tap = gb.reshape(gb.slice(weight, [0, 0, tap], [cm, 1, 1]), (1, cm, 1))
        term = gb.binary("mul", window, w_tap)
        acc = term if acc is None else gb.binary("add", acc, term)
    if bias is not None:
        b = np.asarray(bias, np.float32).reshape(1, cm, 1) if isinstance(bias, np.ndarray) \
            else gb.reshape(bias, (1, cm, 1))
        acc = gb.binary("add", acc, b)
    return acc
