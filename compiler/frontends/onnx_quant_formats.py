"""ONNX low-bit weight formats -> `lut.dequantize`, losslessly.

- `com.microsoft.MatMulNBits`: B uint8 [N, n_blocks, blob] holding `bits`-bit codes packed low
  bits first, scales [N * n_blocks], optional zero points (uint8 packed the same way per row,
  or float [N * n_blocks]), optional bias [N]; w[n, k] = s[n, k/bs] * (q[n, k] - z[n, k/bs]),
  z = 2^(bits-1) when absent. K not a multiple of block_size pads the last block.
  1..4 bits map onto lutc's format with group = block_size; 8 bits is dequantized to float.
- blocked `DequantizeLinear` (INT4/UINT4/INT2/UINT2, per-axis or blocked along K) whose
  result feeds a MatMul/Gemm: y = (x - zp) * scale. Signed codes are shifted by 2^(bits-1)
  so lutc's codes are unsigned: q = x + 2^(bits-1), z = zp + 2^(bits-1).
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from lutc.compiler.frontends.onnx_ops import (
    LosslessWeight,
    NodeContext,
    handles,
    linear_layer,
    shape,
)
from lutc.compiler.frontends.graph_builder import canonical_array
from lutc.compiler.frontends.quantize import QuantizedWeight

LUT_BITS = (1, 2, 3, 4)  # what lut.dequantize can hold


def unpack_low_first(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """uint8 [..., B] -> uint8 [..., count]: 8/bits values per byte, low bits first."""
    packed = np.asarray(packed, np.uint8)
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    values = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return values.reshape(*packed.shape[:-1], -1)[..., :count]


_FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


def _check_nbits_types(ctx: NodeContext) -> None:
    """The contrib spec's types (onnxruntime refuses others): B uint8, scales float/float16/
    bfloat16, zero points uint8, int32 or the scales' type."""
    types = ctx.state.initializer_types
    name = onnx.TensorProto.DataType.Name

    def elem(i: int) -> int | None:
        return types.get(ctx.input_name(i)) if ctx.input_name(i) else None

    b, scales, zp = elem(1), elem(2), elem(3)
    if b is not None and b != onnx.TensorProto.UINT8:
        raise ctx.error(f"MatMulNBits B must be uint8, got {name(b)}")
    if scales is not None and scales not in _FLOATS:
        raise ctx.error(f"MatMulNBits scales must be float, float16 or bfloat16, got "
                        f"{name(scales)}")
    if zp is not None and zp not in (onnx.TensorProto.UINT8, onnx.TensorProto.INT32) and zp != scales:
        raise ctx.error(f"MatMulNBits zero points must be uint8, int32 or the scales' type "
                        f"({name(scales) if scales is not None else 'float'}), got {name(zp)}")


@handles("MatMulNBits", domain="com.microsoft")
def _matmul_nbits(ctx: NodeContext, ins: list) -> list:
    a, b, scales = ins[0], ins[1], ins[2]
    zp = ins[3] if len(ins) > 3 else None
    g_idx = ins[4] if len(ins) > 4 else None
    bias = ins[5] if len(ins) > 5 else None
    k, n = ctx.attr("K"), ctx.attr("N")
    bits, bs = ctx.attr("bits", 4), ctx.attr("block_size")
    for value, what in ((b, "B"), (scales, "scales"), (zp, "zero points")):
        if value is not None:
            ctx.const(value, f"MatMulNBits {what}")
    _check_nbits_types(ctx)
    if bits not in (1, 2, 3, 4, 8):
        raise ctx.error(f"MatMulNBits with {bits}-bit weights is not supported "
                        "(1, 2, 3, 4 or 8 bits)")
    if 8 % bits:
        raise ctx.error(f"{bits}-bit MatMulNBits packing is not supported")
    for attr, value in (("K", k), ("N", n), ("block_size", bs)):
        if not isinstance(value, int) or value < 1:
            raise ctx.error(f"MatMulNBits attribute {attr} must be a positive integer, got {value}")
    n_blocks = -(-k // bs)
    codes = unpack_low_first(b.astype(np.uint8).reshape(n, n_blocks, -1), bits, bs)
    codes = codes.reshape(n, n_blocks * bs)[:, :k]
    s = np.asarray(scales, np.float32).reshape(n, n_blocks)
    if g_idx is not None and not np.array_equal(
            np.asarray(g_idx).reshape(-1)[:k], np.arange(k) // bs):
        raise ctx.error("MatMulNBits with a g_idx (act-order) permutation is not supported")
    zeros = None
    if zp is not None:
        if np.issubdtype(zp.dtype, np.floating):
            zeros = np.asarray(zp, np.float32).reshape(n, n_blocks)
        else:
            zeros = unpack_low_first(zp.astype(np.uint8).reshape(n, -1), bits, n_blocks)
            zeros = zeros.astype(np.float32)
        if np.all(zeros == 2 ** (bits - 1)):  # the implicit zero point: no tensor needed
            zeros = None
    qw = QuantizedWeight(np.ascontiguousarray(codes), s, zeros, bits, bs)
    hint = ctx.input_name(1).removesuffix(f"_Q{bits}") or ctx.name
    if bias is not None and isinstance(bias, np.ndarray):
        bias = ctx.gb.value(canonical_array(bias), hint + ".bias")
    if bits not in LUT_BITS:  # 8-bit: exact float weights, a float linear layer
        w = qw.dequantize()
        spec, ctx.spec = ctx.spec, None
        try:
            return [linear_layer(ctx, a, w, bias, hint)]
        finally:
            ctx.spec = spec
    if k % 4:
        raise ctx.error(f"low-bit weights need K (input features) to be a multiple of 4, "
                        f"got K = {k}")
    return [ctx.gb.quantized_linear(ctx.tensor(a), qw, bias, hint, ctx.name)]


_LOW_BIT_TYPES = {
    onnx.TensorProto.INT4: (4, True), onnx.TensorProto.UINT4: (4, False),
    onnx.TensorProto.INT2: (2, True), onnx.TensorProto.UINT2: (2, False),
}


@handles("DequantizeLinear")
def _dequantize_linear(ctx: NodeContext, ins: list) -> list:
    x, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis, block = ctx.attr("axis", 1), ctx.attr("block_size", 0)
    if not all(isinstance(v, np.ndarray) or v is None for v in (x, scale, zp)):
        raise ctx.error("DequantizeLinear of activations is not supported (only of weights)")
    xs = shape(x)
    axis %= max(len(xs), 1)
    s = np.asarray(scale, np.float32)
    z = np.zeros_like(s) if zp is None else np.asarray(zp, np.float32)

    def expand(t: np.ndarray) -> np.ndarray:  # scale/zp broadcast to x's shape
        if t.ndim == 0 or t.size == 1:
            return np.broadcast_to(t.reshape(()), xs)
        if block:
            return np.repeat(t, block, axis=axis)[tuple(slice(0, d) for d in xs)]
        shp = [1] * len(xs)
        shp[axis] = -1
        return t.reshape(shp)

    y = ((x.astype(np.float32) - expand(z)) * expand(s)).astype(np.float32)
    y = canonical_array(y)
    bits, signed = _LOW_BIT_TYPES.get(ctx.state.initializer_types.get(ctx.input_name(0)),
                                      (0, False))
    if bits and len(xs) == 2:
        _register_lossless(ctx, y, x, s, z, bits, signed, axis, block)
    return [y]


def _register_lossless(ctx: NodeContext, y, x, s, z, bits: int, signed: bool, axis: int,
                       block: int) -> None:
    """Remember y's low-bit codes, for either orientation y can be used in (K on axis 0 or 1)."""
    shift = 2 ** (bits - 1) if signed else 0
    for k_axis in (0, 1):
        # groups along K: blocked along K, per-axis along N, or per-tensor
        k = y.shape[k_axis]
        if block and axis == k_axis:
            group, sg, zg = block, s, z
        elif (not block and s.size > 1 and axis != k_axis) or s.size == 1:
            group = k
            sg = s.reshape(-1, 1) if s.size > 1 else np.full((y.shape[1 - k_axis], 1), s.item())
            zg = z.reshape(-1, 1) if z.size > 1 else np.full_like(sg, z.reshape(-1)[0])
            if k_axis == 0:
                sg, zg = sg.T, zg.T
        else:
            continue
        if group % 4:
            continue
        codes = (x + shift) if k_axis == 1 else (x + shift).T
        scales = sg if k_axis == 1 else sg.T
        zeros = (zg + shift) if k_axis == 1 else (zg + shift).T
        zeros = np.asarray(zeros, np.float32)
        qw = QuantizedWeight(
            np.ascontiguousarray(codes.astype(np.uint8)),
            np.ascontiguousarray(scales.reshape(codes.shape[0], -1), np.float32),
            None if np.all(zeros == 2 ** (bits - 1)) else
            np.ascontiguousarray(zeros.reshape(codes.shape[0], -1)),
            bits, group,
        )
        if qw.scales.shape[1] != math.ceil(codes.shape[1] / group):
            continue
        ctx.state.lossless[(id(y), k_axis)] = LosslessWeight(y, qw, k_axis)

