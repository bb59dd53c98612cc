"""Reading lutc's low-bit format off a weight that a model dequantizes in its forward pass.

A frontend folds the dequantization subgraph (codes buffer -> unpack -> subtract zeros ->
multiply scales) with the framework itself and gets the float weight W[N, K]. This module
recovers (codes, scales, zeros) such that W == s * (q - z) exactly (docs/design.md §1):
- ternary: W takes only the values {-s, 0, +s} (one s per row): q = W / s + 1, z = 1;
- codes buffer: the integer buffer W was computed from is unpacked under every layout we
  know (one code per byte; 2 x 4-bit or 4 x 2-bit per byte, interleaved or in planes, along
  K or along N), and per group of G weights an affine fit W = s * q + b must be exact.
Nothing is guessed: a layout is accepted only if it reproduces W to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lutc.compiler.frontends.quantize import QuantizedWeight

GROUP_CANDIDATES = (256, 128, 64, 32, 16, 8, 4)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(float(np.max(np.abs(b))), 1e-30) if b.size else 1.0
    return bool(np.all(np.abs(a - b) <= 2e-6 * scale))


def ternary(w: np.ndarray) -> QuantizedWeight | None:
    """W[N, K] with values {-s_n, 0, +s_n} per row -> ternary codes {0, 1, 2}, group K."""
    n, k = w.shape
    if k % 4 or not n:
        return None
    if len(np.unique(np.abs(w[0]))) > 2:  # cheap reject: row 0 has more than {0, s}
        return None
    s = np.max(np.abs(w), axis=1, keepdims=True).astype(np.float32)
    s_safe = np.where(s > 0, s, 1.0).astype(np.float32)
    q = np.rint(w / s_safe)
    if np.any(np.abs(q) > 1) or not _close(q * s_safe, w):
        return None
    if np.all(q == 0):
        return None
    return QuantizedWeight((q + 1).astype(np.uint8), s_safe, None, 2, k, ternary=True)


def _unpack(b: np.ndarray, bits: int, axis: int, planes: bool, count: int) -> np.ndarray:
    """Unpack `8 // bits` codes per byte along `axis` of a 2-D uint8 array, low bits first."""
    per = 8 // bits
    mask = (1 << bits) - 1
    parts = [(b >> (bits * i)) & mask for i in range(per)]
    if planes:  # part i holds elements [i * len, (i + 1) * len) along axis
        out = np.concatenate(parts, axis=axis)
    else:  # interleaved: element j * per + i is in part i
        out = np.stack(parts, axis=axis + 1).reshape(
            (-1, b.shape[1]) if axis == 0 else (b.shape[0], -1))
    return np.take(out, np.arange(count), axis=axis)


def code_layouts(buf: np.ndarray, n: int, k: int) -> Iterator[tuple[np.ndarray, int]]:
    """Candidate unpacked codes [N, K] (with their bit width) from an integer buffer."""
    buf = np.asarray(buf)
    if buf.size == n * k:
        for arr in (buf.reshape(n, k), buf.reshape(k, n).T):
            q = arr.astype(np.int64)
            lo, hi = int(q.min()), int(q.max())
            if lo < 0:  # signed codes: shift to unsigned with the matching bit width
                bits = max(1, int(np.ceil(np.log2(max(-lo, hi + 1)))) + 1)
                q = q + 2 ** (bits - 1)
            else:
                bits = max(1, int(hi).bit_length())
            if bits <= 8:
                yield q, bits
        return
    u = buf.astype(np.uint8) if buf.dtype != np.uint8 else buf
    for bits in (4, 2):
        per = 8 // bits
        if buf.size * per != n * k:
            continue
        for axis, shape in ((1, (n, k // per)), (0, (n // per, k))):
            if shape[0] * shape[1] != buf.size or (axis == 1 and k % per) or \
                    (axis == 0 and n % per):
                continue
            b = u.reshape(shape)
            for planes in (False, True):
                yield _unpack(b, bits, axis, planes, k if axis == 1 else n).astype(np.int64), bits


def _fit_groups(w: np.ndarray, q: np.ndarray, group: int):
    """Per group exact affine fit W = s * q + b; returns (s, z) with z = -b / s, or None."""
    n, k = w.shape
    ng = -(-k // group)
    pad = ng * group - k
    wg = np.pad(w.astype(np.float64), ((0, 0), (0, pad)), constant_values=np.nan)
    qg = np.pad(q.astype(np.float64), ((0, 0), (0, pad)), constant_values=np.nan)
    wg, qg = wg.reshape(n, ng, group), qg.reshape(n, ng, group)
    with np.errstate(invalid="ignore", divide="ignore"):
        qm, wm = np.nanmean(qg, axis=2, keepdims=True), np.nanmean(wg, axis=2, keepdims=True)
        var = np.nansum((qg - qm) ** 2, axis=2)
        s = np.nansum((qg - qm) * (wg - wm), axis=2) / var
        constant_q = var == 0
        if np.any(constant_q):  # one code value in the group: any s works, keep the typical one
            typical = np.nanmedian(np.abs(s[~constant_q])) if np.any(~constant_q) else 1.0
            s = np.where(constant_q, typical if typical > 0 else 1.0, s)
        s = np.where(s == 0, 1.0, s)
        z = qm[..., 0] - wm[..., 0] / s
    s32, z32 = s.astype(np.float32), z.astype(np.float32)
    idx = np.arange(k) // group
    recon = s32[:, idx].astype(np.float64) * (q - z32[:, idx].astype(np.float64))
    return (s32, z32) if _close(recon, w) else None


def from_codes(w: np.ndarray, buffers: list[np.ndarray],
               group_hints: tuple[int, ...] = ()) -> QuantizedWeight | None:
    """Recover W[N, K] = s * (q - z) with q unpacked from one of `buffers` (integer arrays)."""
    n, k = w.shape
    if k % 4:
        return None
    groups = sorted({g for g in (k, *group_hints, *GROUP_CANDIDATES)
                     if 4 <= g <= k and g % 4 == 0}, reverse=True)
    for buf in buffers:
        for q, bits in code_layouts(buf, n, k):
            if bits > 4 or q.min() < 0 or q.max() >= 2**bits:
                continue
            for group in groups:  # the coarsest exact grouping
                fit = _fit_groups(w, q, group)
                if fit is None:
                    continue
                s, z = fit
                qw = QuantizedWeight(q.astype(np.uint8), s, z, bits, group)
                implicit = QuantizedWeight(qw.codes, s, None, bits, group)
                if np.allclose(z, implicit.implicit_zero, rtol=0, atol=1e-3) and \
                        _close(implicit.dequantize(), w):
                    return implicit
                return qw
    return None
