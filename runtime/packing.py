"""Offline weight packing for the lutrt kernels (numpy, with C fast paths; docs/design.md §3.6).

Inputs are the canonical bit-plane codes of `lut.mma`: uint8 [B, N, K/4], c[b, n, j] = the 4-bit
pattern whose bit i is bit b of q[n, 4j+i] (`codes_from_q`), re-encoded by `mirror_codes` for
symmetrized (8-entry table) formats.

Packed layout (what `lutrt_mma` reads; `lutrt_internal.h` has the C decoder):

* N is cut into NB = ceil(N/32) **blocks** of 32 weight rows (rows >= N are padding, code 0).
  Each block is stored contiguously over all of K: ``packed[blk][j][16*B bytes]``. A thread
  owns a contiguous run of blocks and walks 4 of them at once, so its weights arrive as 4
  sequential memory streams (§6: several streams per thread matter most).
* The 16*B bytes of one (block, table j) chunk hold 32 rows x B planes of 4-bit codes, two per
  byte (low nibble first):

  - plane pair p (planes 2p, 2p+1), for p < B//2: 32 bytes at offset 32p. Byte t has code A_t
    in its low nibble and B_t in its high nibble, with A_{2i+s} = plane 2p+s of row i and
    B_{2i+s} = plane 2p+s of row 16+i (i < 16, s = 0, 1). `v & 15` and `(v >> 4) & 15` give two
    index vectors; after vpshufb, vpmaddubsw with weights (2^2p, 2^(2p+1)) adds the two planes of
    a row and widens to int16, rows 0..15 and 16..31 in lane order.
  - odd B, the last plane: 16 bytes at offset 32*(B//2). Byte t: low nibble C_t, high D_t with
    C_{2i} = row i, C_{2i+1} = row 16+i, D_{2i} = row 8+i, D_{2i+1} = row 24+i (i < 8). The
    kernel broadcasts the 16 bytes to both lanes, takes low nibbles in lane 0 and high nibbles
    in lane 1, and vpmaddubsw with (w, 0) / (0, w) yields rows 0..15 / 16..31 in lane order.

  Total: N_pad * K * B / 8 bytes — no waste for odd B.
* Scales and zeros follow the same blocks: f32 [NB][NG][32] (`pack_scales`), so a weight group's
  32 scales are one contiguous load.
"""

from __future__ import annotations

import numpy as np

from lutc.runtime import weight_prep
from lutc.runtime.abi import BLOCK_N, MAX_BITS, packed_weight_bytes


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def codes_from_q(q: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes q[N, K] in [0, 2^bits - 1] -> bit-plane patterns uint8 [bits, N, K/4]."""
    return bit_planes(q, bits, mirrored=False)


def bit_planes(q: np.ndarray, bits: int, mirrored: bool) -> np.ndarray:
    """codes_from_q, then mirror_codes when `mirrored`: in the C runtime (lutrt_bit_planes) for
    uint8 q, else (or where C declines) in numpy, which words the errors."""
    q = np.asarray(q)
    if q.ndim != 2 or q.shape[1] % 4:
        raise ValueError(f"codes_from_q expects q of shape [N, K] with K % 4 == 0, got {q.shape}")
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be 1..{MAX_BITS}, got {bits}")
    if q.dtype == np.uint8:
        fast = weight_prep.bit_planes(q, bits, mirrored)
        if fast is not None:
            return fast
    if q.size and (q.min() < 0 or q.max() >= 1 << bits):
        raise ValueError(f"q values must lie in [0, {(1 << bits) - 1}] for {bits}-bit weights")
    planes = _codes_from_q_numpy(q, bits)
    return mirror_codes(planes) if mirrored else planes


def _codes_from_q_numpy(q: np.ndarray, bits: int) -> np.ndarray:
    """codes_from_q in numpy (the reference of lutrt_bit_planes)."""
    n, k = q.shape
    # the 4 codes of a table as one little-endian uint32 (code i in byte i); for plane b,
    # x = (v >> b) & 0x01010101 holds bit b of code i at bit 8i, and x * 0x204081 moves those
    # four bits to bits 21..24 (bit i of the pattern at 21 + i) with no other partial product
    # landing there or carrying (all 16 products sit at distinct bit positions)
    v = np.ascontiguousarray(q, dtype=np.uint8).reshape(n, k // 4, 4).view("<u4")[:, :, 0]
    out = np.empty((bits, n, k // 4), np.uint8)
    x = np.empty_like(v)
    for b in range(bits):  # bit i of pattern = bit b of q[n, 4j + i]
        np.right_shift(v, b, out=x)
        x &= np.uint32(0x01010101)
        x *= np.uint32(0x204081)
        x >>= np.uint32(21)
        np.bitwise_and(x, 15, out=out[b], casting="unsafe")
    return out


def mirror_codes(codes: np.ndarray) -> np.ndarray:
    """Sign-bit convention of table symmetrization (§3.3): pattern p with bit 3 set becomes
    8 | (~p & 7) (looks up -T8[~p & 7], since T(p) = -T(~p)); other patterns are unchanged."""
    return _MIRROR[np.asarray(codes, dtype=np.uint8) & 15]


# mirror_codes as a table over the 16 patterns: one gather instead of three array passes
_MIRROR = np.array([p if p < 8 else 8 | (~p & 7) for p in range(16)], np.uint8)


def mirror_scale(scales: np.ndarray) -> np.ndarray:
    """Symmetrized scale: s' = s/2 (§3.3)."""
    return (np.asarray(scales, dtype=np.float32) * np.float32(0.5)).astype(np.float32)


def mirror_zero(zeros: np.ndarray | float, bits: int) -> np.ndarray | float:
    """Symmetrized zero point: z' = 2z + 1 - 2^bits (§3.3); a scalar (the implicit zero) stays
    a Python float."""
    if np.isscalar(zeros):
        return float(2 * zeros + 1 - (1 << bits))
    z = np.asarray(zeros, dtype=np.float32)
    return (np.float32(2) * z + np.float32(1 - (1 << bits))).astype(np.float32)


def mirror_scales(scales: np.ndarray, zeros: np.ndarray | float, bits: int):
    """Symmetrized scale and zero point: (s', z') = (s/2, 2z + 1 - 2^bits) (§3.3). `zeros` may
    be the scalar implicit zero."""
    return mirror_scale(scales), mirror_zero(zeros, bits)


def packed_nbytes(bits: int, n: int, k: int, layout: str = "bit_planes") -> int:
    """Bytes of `pack_weights` (or, layout "code_bytes", `pack_code_bytes`) output for an
    [n, k] weight of `bits` bits."""
    return packed_weight_bytes(bits, n, k, layout)


def q_from_planes(codes: np.ndarray, mirrored: bool) -> np.ndarray:
    """Inverse of `bit_planes`: bit-plane patterns uint8 [B, N, K/4] (mirrored convention when
    `mirrored`) -> unsigned codes q uint8 [N, K]."""
    c = np.asarray(codes, np.uint8)
    if c.ndim != 3:
        raise ValueError(f"q_from_planes expects codes [B, N, K/4], got shape {c.shape}")
    if mirrored:  # the sign-bit convention is an involution
        c = mirror_codes(c)
    bits, n, j = c.shape
    q = np.zeros((n, j, 4), np.uint8)
    for b in range(bits):
        q |= (((c[b][:, :, None] >> np.arange(4, dtype=np.uint8)) & 1) << b).astype(np.uint8)
    return q.reshape(n, 4 * j)


def pack_code_bytes(q: np.ndarray) -> np.ndarray:
    """Unsigned codes q uint8 [N, K] (K % 4 == 0) -> the code-byte layout (lutrt.h,
    LUTRT_LAYOUT_CODE_BYTES): uint8 [NB, K/4, 2, 16, 4] flattened, byte [blk, j, h, r, i] =
    q[32 blk + 16 h + r, 4 j + i]; rows >= N are 0. 128 bytes per (block, table)."""
    q = np.asarray(q)
    if q.ndim != 2 or q.shape[1] % 4 or q.dtype != np.uint8:
        raise ValueError(f"pack_code_bytes expects uint8 q [N, K] with K % 4 == 0, got "
                         f"{q.dtype} {q.shape}")
    n, k = q.shape
    nb = _cdiv(n, BLOCK_N)
    padded = np.zeros((nb * BLOCK_N, k), np.uint8)
    padded[:n] = q
    return np.ascontiguousarray(padded.reshape(nb, 2, 16, k // 4, 4).transpose(0, 3, 1, 2, 4)).reshape(-1)


def unpack_code_bytes(packed: np.ndarray, n: int, k: int) -> np.ndarray:
    """Inverse of `pack_code_bytes` -> q uint8 [n, k]."""
    nb = _cdiv(n, BLOCK_N)
    p = np.asarray(packed, np.uint8).reshape(nb, k // 4, 2, 16, 4)
    return np.ascontiguousarray(p.transpose(0, 2, 3, 1, 4)).reshape(nb * BLOCK_N, k)[:n]


def pack_weights(codes: np.ndarray) -> np.ndarray:
    """Bit-plane codes uint8 [B, N, K/4] (values 0..15) -> packed uint8 [packed_nbytes]."""
    c = np.asarray(codes)
    if c.ndim != 3 or c.dtype != np.uint8:
        raise ValueError(f"pack_weights expects uint8 codes [B, N, K/4], got {c.dtype} {c.shape}")
    bits, n, j = c.shape
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"pack_weights: 1..{MAX_BITS} bit planes expected, got {bits}")
    fast = weight_prep.pack_weights(c)  # C, the same bytes; None without a runtime or on bad codes
    if fast is not None:
        return fast
    return pack_weights_numpy(c)


def pack_weights_numpy(codes: np.ndarray) -> np.ndarray:
    """pack_weights in numpy: the reference of the byte order (and of lutrt_pack_weights)."""
    c = np.asarray(codes)
    bits, n, j = c.shape
    if c.size and c.max() > 15:
        raise ValueError("pack_weights: codes must be 4-bit patterns (0..15)")
    nb = _cdiv(n, BLOCK_N)
    padded = np.zeros((bits, nb * BLOCK_N, j), np.uint8)
    padded[:, :n] = c
    blk = padded.reshape(bits, nb, BLOCK_N, j).transpose(1, 3, 0, 2)  # [NB, J, B, 32 rows]
    parts = []
    for p in range(bits // 2):
        a = np.stack([blk[:, :, 2 * p, :16], blk[:, :, 2 * p + 1, :16]], axis=-1)  # A_{2i+s}
        b = np.stack([blk[:, :, 2 * p, 16:], blk[:, :, 2 * p + 1, 16:]], axis=-1)  # B_{2i+s}
        parts.append(a.reshape(nb, j, 32) | (b.reshape(nb, j, 32) << 4))
    if bits % 2:
        last = blk[:, :, bits - 1, :]
        lo = np.stack([last[:, :, 0:8], last[:, :, 16:24]], axis=-1).reshape(nb, j, 16)
        hi = np.stack([last[:, :, 8:16], last[:, :, 24:32]], axis=-1).reshape(nb, j, 16)
        parts.append(lo | (hi << 4))
    return np.ascontiguousarray(np.concatenate(parts, axis=-1).astype(np.uint8)).reshape(-1)


def unpack_weights(packed: np.ndarray, bits: int, n: int, k: int) -> np.ndarray:
    """Inverse of `pack_weights` (for tests and debugging): -> codes uint8 [bits, n, k/4]."""
    j = k // 4
    nb = _cdiv(n, BLOCK_N)
    p = np.asarray(packed, np.uint8).reshape(nb, j, 16 * bits)
    out = np.zeros((bits, nb, BLOCK_N, j), np.uint8)
    for pp in range(bits // 2):
        chunk = p[:, :, 32 * pp: 32 * pp + 32]
        a = (chunk & 15).reshape(nb, j, 16, 2)
        b = (chunk >> 4).reshape(nb, j, 16, 2)
        for s in range(2):
            out[2 * pp + s, :, :16] = a[:, :, :, s].transpose(0, 2, 1)
            out[2 * pp + s, :, 16:] = b[:, :, :, s].transpose(0, 2, 1)
    if bits % 2:
        chunk = p[:, :, 32 * (bits // 2):]
        lo = (chunk & 15).reshape(nb, j, 8, 2)
        hi = (chunk >> 4).reshape(nb, j, 8, 2)
        out[bits - 1, :, 0:8] = lo[:, :, :, 0].transpose(0, 2, 1)
        out[bits - 1, :, 16:24] = lo[:, :, :, 1].transpose(0, 2, 1)
        out[bits - 1, :, 8:16] = hi[:, :, :, 0].transpose(0, 2, 1)
        out[bits - 1, :, 24:32] = hi[:, :, :, 1].transpose(0, 2, 1)
    return out.reshape(bits, nb * BLOCK_N, j)[:, :n]


def pack_scales(values: np.ndarray) -> np.ndarray:
    """Per-group scales or zeros f32 [N, NG] -> f32 [NB, NG, 32] in weight-block order
    (padding rows get 0)."""
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"pack_scales expects [N, NG], got shape {v.shape}")
    n, ng = v.shape
    nb = _cdiv(n, BLOCK_N)
    padded = np.zeros((nb * BLOCK_N, ng), np.float32)
    padded[:n] = v
    return np.ascontiguousarray(padded.reshape(nb, BLOCK_N, ng).transpose(0, 2, 1))
