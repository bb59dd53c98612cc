"""ggml block formats decoded to their exact integer codes (never dequantized and requantized).

Byte layouts follow `gguf/quants.py` (the numpy mirror of ggml-quants.c); each decoder below returns
codes, scales and zeros such that QuantizedWeight.dequantize() reproduces ggml's dequantization to
f32 rounding. Block size / bytes per block and how each maps onto w = s * (q - z):

    type   block bytes  layout                           lutc bits group zero
    Q8_0   32    34     f16 d, i8 q[32]                    8     32   implicit 128 (codes = q+128)
    Q4_0   32    18     f16 d, u8 q[16] (lo nibbles = 0..15, hi = 16..31)
                                                           4     32   implicit 8
    Q4_1   32    20     f16 d, f16 m, u8 q[16]; w = d*q + m
                                                           4     32   zeros = -m/d
    Q4_K   256   144    f16 d, f16 dmin, 12 B of 6-bit (sc, m) x 8, u8 q[128]; w = d*sc*q - dmin*m
                                                           4     32   scales = d*sc, zeros = dmin*m/(d*sc)
    Q6_K   256   210    u8 ql[128], u8 qh[64], i8 sc[16], f16 d; w = d*sc*(q - 32)
                                                           6     16   implicit 32
    TQ2_0  256   66     u8 q[64] (2 bits each), f16 d; w = d*(q - 1)
                                                           2t    256  implicit 1 (ternary)
    TQ1_0  256   54     u8 qs[48] (5 trits/byte), u8 qh[4] (4 trits/byte), f16 d
                                                           2t    256  implicit 1 (ternary)

Zero-scale groups. Where a Q4_1 block has d == 0 (or a Q4_K sub-block has d*sc == 0) every weight
in it equals the offset (m, or -dmin*m), which -m/d cannot express. Such a group is re-encoded,
exactly, as codes 1, scale = that offset, zero 0 (this also covers an offset of 0).
"""

from __future__ import annotations

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

from lutc.runtime.errors import LutcError

from lutc.compiler.frontends.quantize import QuantizedWeight

FLOAT_TYPES = (T.F32, T.F16, T.BF16)
QUANT_TYPES = (T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q6_K, T.TQ1_0, T.TQ2_0)
SUPPORTED = ", ".join(t.name for t in FLOAT_TYPES + QUANT_TYPES)


def decode_tensor(raw: np.ndarray, ggml_type: T, shape: tuple[int, ...], where: str):
    """`raw` (the tensor's bytes) -> float32 array of `shape`, or a QuantizedWeight [N, K].

    `where` names the file and tensor for error messages.
    """
    if ggml_type == T.F32:
        return raw.view("<f4").astype(np.float32).reshape(shape)
    if ggml_type == T.F16:
        return raw.view("<f2").astype(np.float32).reshape(shape)
    if ggml_type == T.BF16:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if ggml_type not in _DECODERS:
        raise LutcError(f"{where} has type {ggml_type.name}, which lutc cannot import exactly "
                        f"(supported: {SUPPORTED})")
    if len(shape) != 2:
        raise LutcError(f"{where} is {ggml_type.name} with shape {list(shape)}; lutc imports "
                        "quantized tensors only as 2-D matrices")
    n, k = shape
    block_bytes = GGML_QUANT_SIZES[ggml_type][1]
    blocks = raw.reshape(-1, block_bytes)
    return _DECODERS[ggml_type](blocks, n, k)


def _f16(blocks: np.ndarray, at: int) -> np.ndarray:
    """The f16 at byte `at` of every block, as float32 [n_blocks]."""
    return np.ascontiguousarray(blocks[:, at:at + 2]).view("<f2")[:, 0].astype(np.float32)


def _nibbles(qs: np.ndarray, chunk: int) -> np.ndarray:
    """u8 [nb, c*chunk] -> u8 [nb, 2*c*chunk]: per chunk of bytes, all low nibbles then all high."""
    nb = qs.shape[0]
    qs = qs.reshape(nb, -1, 1, chunk) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (qs & np.uint8(0x0F)).reshape(nb, -1)


def _zero_scale_groups(codes, scales, zeros, offset, group):
    """Where scales == 0 all weights of the group equal `offset`: codes 1, scale offset, zero 0."""
    dead = scales == 0
    if dead.any():
        n = codes.shape[0]
        view = codes.reshape(n, -1, group)
        view[dead] = 1
        scales[dead] = offset[dead]
        zeros[dead] = 0
    return codes, scales, zeros


def _q8_0(blocks, n, k):
    d = _f16(blocks, 0)
    codes = blocks[:, 2:34] ^ np.uint8(0x80)  # int8 q -> q + 128
    return QuantizedWeight(codes.reshape(n, k), d.reshape(n, -1), None, 8, 32, source_type="Q8_0")


def _q4_0(blocks, n, k):
    d = _f16(blocks, 0)
    codes = _nibbles(blocks[:, 2:18], 16)
    return QuantizedWeight(codes.reshape(n, k), d.reshape(n, -1), None, 4, 32, source_type="Q4_0")


def _q4_1(blocks, n, k):
    d, m = _f16(blocks, 0).reshape(n, -1), _f16(blocks, 2).reshape(n, -1)
    codes = _nibbles(blocks[:, 4:20], 16).reshape(n, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        zeros = np.where(d == 0, np.float32(0), -m / d).astype(np.float32)
    codes, d, zeros = _zero_scale_groups(codes, d, zeros, m, 32)
    return QuantizedWeight(codes, d, zeros, 4, 32, source_type="Q4_1")


def _k_scale_min(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K's 12 bytes -> 8 six-bit scales and 8 six-bit mins (ggml get_scale_min_k4)."""
    nb = packed.shape[0]
    d, m, m_d = np.split(packed.reshape(nb, 3, 4), 3, axis=1)
    sc = np.concatenate([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.reshape(nb, 8), mn.reshape(nb, 8)


def _q4_k(blocks, n, k):
    d, dmin = _f16(blocks, 0)[:, None], _f16(blocks, 2)[:, None]
    sc, mn = _k_scale_min(blocks[:, 4:16])
    # Both products are exact in f32 (11-bit mantissa times a 6-bit integer), as in ggml.
    scales = (d * sc.astype(np.float32)).reshape(n, -1)
    offset = (-(dmin * mn.astype(np.float32))).reshape(n, -1)
    codes = _nibbles(blocks[:, 16:144], 32).reshape(n, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        zeros = np.where(scales == 0, np.float32(0), -offset / scales).astype(np.float32)
    codes, scales, zeros = _zero_scale_groups(codes, scales, zeros, offset, 32)
    return QuantizedWeight(codes, scales, zeros, 4, 32, source_type="Q4_K")


def _q6_k(blocks, n, k):
    nb = blocks.shape[0]
    ql = _nibbles(blocks[:, :128], 64)                                    # [nb, 256], low 4 bits
    qh = blocks[:, 128:192].reshape(nb, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)
    qh = (qh & np.uint8(0x03)).reshape(nb, -1)                            # [nb, 256], high 2 bits
    codes = ql | (qh << np.uint8(4))
    sc = blocks[:, 192:208].view(np.int8).astype(np.float32)
    scales = _f16(blocks, 208)[:, None] * sc                             # exact: 11 x 8 bits
    return QuantizedWeight(codes.reshape(n, k), scales.reshape(n, -1), None, 6, 16,
                           source_type="Q6_K")


def _ternary(codes, d, n, k, source_type):
    if (codes == 3).any():
        # ggml decodes a 2-bit code 3 as +2: not ternary, but still exact as 2-bit with zero 1.
        scales = d.reshape(n, -1)
        return QuantizedWeight(codes.reshape(n, k), scales, np.ones_like(scales), 2, 256,
                               source_type=source_type)
    return QuantizedWeight(codes.reshape(n, k), d.reshape(n, -1), None, 2, 256, ternary=True,
                           source_type=source_type)


def _tq2_0(blocks, n, k):
    nb = blocks.shape[0]
    qs = blocks[:, :64].reshape(nb, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)
    codes = (qs & np.uint8(0x03)).reshape(nb, -1)
    return _ternary(codes, _f16(blocks, 64), n, k, "TQ2_0")


def _tq1_0(blocks, n, k):
    nb = blocks.shape[0]
    pow3 = np.array([1, 3, 9, 27, 81], np.uint8)
    # Each byte holds trits as a fixed-point fraction: multiplying by 3**i (mod 256) brings
    # trit i to the top, and (x * 3) >> 8 reads it.
    qs0 = (blocks[:, 0:32].reshape(nb, 1, 32) * pow3.reshape(1, 5, 1)).reshape(nb, -1)
    qs1 = (blocks[:, 32:48].reshape(nb, 1, 16) * pow3.reshape(1, 5, 1)).reshape(nb, -1)
    qh = (blocks[:, 48:52].reshape(nb, 1, 4) * pow3[:4].reshape(1, 4, 1)).reshape(nb, -1)
    x = np.concatenate([qs0, qs1, qh], axis=1)
    codes = ((x.astype(np.uint16) * 3) >> 8).astype(np.uint8)
    return _ternary(codes, _f16(blocks, 52), n, k, "TQ1_0")


_DECODERS = {T.Q8_0: _q8_0, T.Q4_0: _q4_0, T.Q4_1: _q4_1, T.Q4_K: _q4_k, T.Q6_K: _q6_k,
             T.TQ2_0: _tq2_0, T.TQ1_0: _tq1_0}
