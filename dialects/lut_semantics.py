"""The numpy meaning of each `lut` op: the interpreter runs these, tests compare against them.

Formulas are the ones in the op docstrings (lutc/dialects/lut_ops.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Tables:
    """The runtime value of a `!lut.table`: entries [M, T, E] (+ int8 scales [M, NS])."""

    entries: np.ndarray
    scales: np.ndarray | None = None
    scale_group: int = 0

    def values(self) -> np.ndarray:
        """Entries as floats, each multiplied by its table scale (for int8 tables)."""
        if self.scales is None:
            return self.entries.astype(np.float64)
        per_table = np.repeat(self.scales, self.scale_group // 4, axis=1)[:, : self.entries.shape[1]]
        return self.entries.astype(np.float64) * per_table[:, :, None]


def pattern_signs(entries: int) -> np.ndarray:
    """[E, 4]: weight of x[4j+i] in entry p — bit_i(p) (16 entries) or ±1 (8 entries)."""
    p = np.arange(entries)
    bits = (p[:, None] >> np.arange(4)[None, :]) & 1
    return bits.astype(np.float64) if entries == 16 else 2.0 * bits - 1.0


def group_sums(x: np.ndarray, group: int) -> np.ndarray:
    m, k = x.shape
    ng = -(-k // group)
    padded = np.zeros((m, ng * group), np.float64)
    padded[:, :k] = x
    return padded.reshape(m, ng, group).sum(axis=2).astype(np.float32)


def precompute(x: np.ndarray, entries: int, sum_group: int, quantized: bool = False,
               scale_group: int = 0) -> tuple[Tables, np.ndarray]:
    m, k = x.shape
    xg = x.astype(np.float64).reshape(m, k // 4, 4)
    table = xg @ pattern_signs(entries).T  # [M, T, E]
    sums = group_sums(x, sum_group)
    if not quantized:
        return Tables(table.astype(np.float32)), sums
    per = scale_group // 4
    t = k // 4
    ns = -(-t // per)
    absmax = np.zeros((m, ns * per))
    absmax[:, :t] = np.abs(xg).sum(axis=2)
    scales = (absmax.reshape(m, ns, per).max(axis=2) / 127.0).astype(np.float32)
    per_table = np.repeat(scales, per, axis=1)[:, :t]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(per_table[:, :, None] > 0, table / per_table[:, :, None], 0.0)
    entries_i8 = np.clip(np.rint(q), -127, 127).astype(np.int8)
    return Tables(entries_i8, scales, scale_group), sums


def lookup(tables: Tables, codes: np.ndarray, mirrored: bool) -> np.ndarray:
    """Bit-serial lookups: L[m, n, j] = sum_b 2^b * T[m, j, c[b, n, j]] (with sign if mirrored)."""
    vals = tables.values()  # [M, T, E]
    codes = codes.astype(np.int64)
    t = vals.shape[1]
    total = np.zeros((vals.shape[0], codes.shape[1], t))
    for b in range(codes.shape[0]):
        c = codes[b]  # [N, T]
        if mirrored:
            looked = vals[:, np.arange(t)[None, :], c & 7]
            looked = np.where((c & 8) != 0, -looked, looked)
        else:
            looked = vals[:, np.arange(t)[None, :], c]
        total += (2.0**b) * looked
    return total


def mma(tables: Tables, sums: np.ndarray, codes: np.ndarray, scales: np.ndarray,
        zeros: np.ndarray | None, group: int, implicit_zero: float, mirrored: bool) -> np.ndarray:
    looked = lookup(tables, codes, mirrored)  # [M, N, T]
    m, n, t = looked.shape
    per = group // 4
    ng = scales.shape[1]
    padded = np.zeros((m, n, ng * per))
    padded[:, :, :t] = looked
    grouped = padded.reshape(m, n, ng, per).sum(axis=3)  # [M, N, NG]
    z = zeros.astype(np.float64) if zeros is not None else np.full((n, ng), implicit_zero)
    corrected = grouped - z[None, :, :] * sums.astype(np.float64)[:, None, :]
    return np.einsum("mng,ng->mn", corrected, scales.astype(np.float64)).astype(np.float32)


def dequantize(codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, group: int,
               implicit_zero: float) -> np.ndarray:
    n, k = codes.shape
    idx = np.arange(k) // group
    z = zeros[:, idx] if zeros is not None else implicit_zero
    return (scales[:, idx] * (codes.astype(np.float32) - z)).astype(np.float32)


def plane_codes(q: np.ndarray, bits: int) -> np.ndarray:
    """[N, K] unsigned codes -> [B, N, K/4] 4-bit patterns, bit i = bit b of q[n, 4j+i]."""
    n, k = q.shape
    q = q.astype(np.uint8).reshape(n, k // 4, 4)
    planes = np.empty((bits, n, k // 4), np.uint8)
    for b in range(bits):
        bit = (q >> b) & 1
        planes[b] = bit[..., 0] | (bit[..., 1] << 1) | (bit[..., 2] << 2) | (bit[..., 3] << 3)
    return planes


def mirror_codes(codes: np.ndarray) -> np.ndarray:
    """Sign-bit convention of table symmetrization: a pattern p with bit 3 set becomes
    8 | (~p & 7) (look up entry ~p & 7, negate); others stay p."""
    c = codes.astype(np.uint8)
    return np.where((c & 8) != 0, 8 | (~c & 7), c).astype(np.uint8)


# -- ops added by the optimization passes (dialects/mirror_ops.py, packed_ops.py) ------------

def mirror_scales(scales: np.ndarray) -> np.ndarray:
    """Symmetrization (§3.3): s' = s / 2."""
    return (np.asarray(scales, np.float32) * np.float32(0.5)).astype(np.float32)


def mirror_zeros(zeros: np.ndarray, bits: int) -> np.ndarray:
    """Symmetrization (§3.3): z' = 2z + 1 - 2^W."""
    z = np.asarray(zeros, np.float32)
    return (np.float32(2) * z + np.float32(1 - 2**bits)).astype(np.float32)


def pack_planes(codes: np.ndarray) -> np.ndarray:
    """Bit-plane codes [B, N, K/4] -> the runtime's packed blocks [NB, K/4, 16*B] (uint8)."""
    from lutc.runtime.packing import pack_weights

    b, n, j = codes.shape
    return pack_weights(np.asarray(codes).astype(np.uint8)).reshape(-(-n // 32), j, 16 * b)


def unpack_planes(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of `pack_planes` for N = n weight rows -> [B, N, K/4] (uint8)."""
    from lutc.runtime.packing import unpack_weights

    nb, j, chunk = packed.shape
    bits = chunk // 16
    return unpack_weights(np.asarray(packed).view(np.uint8).reshape(-1), bits, n, 4 * j)


def pack_group_values(values: np.ndarray) -> np.ndarray:
    """Scales or zeros [N, NG] -> [NB, NG, 32] in weight-block order (padding rows 0)."""
    from lutc.runtime.packing import pack_scales

    return pack_scales(np.asarray(values, np.float32))


def unpack_group_values(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of `pack_group_values` -> [N, NG]."""
    nb, ng, block = packed.shape
    return np.asarray(packed).transpose(0, 2, 1).reshape(nb * block, ng)[:n]
