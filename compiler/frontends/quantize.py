"""Round-to-nearest quantization of float weights into lutc's low-bit format.

`--weights` specs: `w1`..`w4` with optional `gG` (group size along K, default 64) and
`sym`/`asym` (default asym), e.g. `w2g64`, `w4g32sym`; `ternary` (BitNet b1.58 absmean,
one scale per tensor, or `ternaryg128` per group).
    asym:    s = (max - min) / (2^W - 1),  z = -min / s (float),  q = clamp(round(w / s + z))
    (w1 asym uses the means of the two halves of each group as its two levels)
    sym:     z = 2^(W-1) implicit,         s = max|w| / 2^(W-1)
    ternary: s = mean|w|,  q = clamp(round(w / s), -1, 1) + 1, implicit z = 1
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lutc.runtime.errors import LutcError


@dataclass(frozen=True)
class WeightSpec:
    bits: int
    group: int | None  # None: the whole row (per-tensor scale for ternary)
    asym: bool
    ternary: bool

    @staticmethod
    def parse(text: str) -> WeightSpec:
        m = re.fullmatch(r"(?:w([1-8])|(ternary))(?:g(\d+))?(sym|asym)?", text)
        if not m:
            raise LutcError(
                f"weight format '{text}' is not one of w1..w8[gG][sym|asym] or ternary[gG]"
            )
        ternary = m.group(2) is not None
        group = int(m.group(3)) if m.group(3) else (None if ternary else 64)
        if group is not None and (group < 4 or group % 4):
            raise LutcError(f"weight group size must be a multiple of 4, got {group}")
        if ternary and m.group(4):
            raise LutcError("ternary weights take no sym/asym suffix")
        return WeightSpec(2 if ternary else int(m.group(1)), group, m.group(4) != "sym" and not ternary,
                          ternary)

    def row_group(self, k: int) -> int:
        """The group size used on rows of `k` weights: the whole row when the spec has none or
        one at least as long as the row (a group never pads a row beyond its length)."""
        return k if self.group is None or self.group >= k else self.group


@dataclass
class QuantizedWeight:
    """w[n, k] = scales[n, k / group] * (codes[n, k] - zero[n, k / group]).

    The one low-bit weight record of the frontends (lutc's quantizer, ONNX/torch recovery,
    the GGUF reader). `zeros=None` is the implicit zero point: 2^(bits-1), or 1 for ternary
    (codes {0, 1, 2} stand for {-1, 0, +1})."""

    codes: np.ndarray  # uint8 [N, K], values in [0, 2^bits - 1]
    scales: np.ndarray  # f32 [N, NG]
    zeros: np.ndarray | None  # f32 [N, NG] or None (implicit zero point)
    bits: int
    group: int
    ternary: bool = False
    source_type: str = ""  # where the codes came from, e.g. GGUF "Q4_1" (messages only)

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    def take_rows(self, rows) -> QuantizedWeight:
        """The same weight restricted to (or permuted by) `rows`: exact, codes and all."""
        return QuantizedWeight(
            np.ascontiguousarray(self.codes[rows]), np.ascontiguousarray(self.scales[rows]),
            None if self.zeros is None else np.ascontiguousarray(self.zeros[rows]),
            self.bits, self.group, self.ternary, self.source_type)

    @property
    def implicit_zero(self) -> float:
        return 1.0 if self.ternary else float(2 ** (self.bits - 1))

    def scales_for_lut(self) -> np.ndarray:
        """`scales` with 0 for every group whose codes all equal its integer zero point.

        Such a group dequantizes to exactly 0 either way; with its scale at 0 every LUT kernel
        (int8 and f32 tables, every SIMD path) adds exactly 0 for it, whatever the rounding of
        its lookups and zero-point term: W = 0 gives exactly the bias (issue 10). Cost: one
        pass over the codes, only for weights with integer zero points."""
        n, k = self.codes.shape
        ng = self.scales.shape[1]
        z = self.zeros if self.zeros is not None else np.full((n, ng), self.implicit_zero)
        integer = (z == np.round(z)) & (z >= 0) & (z <= 255)
        if not integer.any() or k == 0:
            return self.scales
        zq = np.where(integer, z, 0).astype(np.uint8)
        full = k // self.group  # a partial last group is compared over its k % group codes
        dead = np.zeros((n, ng), bool)
        if full:
            g = self.codes[:, :full * self.group].reshape(n, full, self.group)
            dead[:, :full] = (g == zq[:, :full, None]).all(axis=2)
        if full < ng:
            dead[:, full] = (self.codes[:, full * self.group:] == zq[:, full:full + 1]).all(axis=1)
        dead &= integer
        if not dead.any():
            return self.scales
        return np.where(dead, np.float32(0), self.scales).astype(np.float32)

    def dequantize(self) -> np.ndarray:
        """w = s * (q - z) in float32, [N, K]."""
        n, k = self.codes.shape
        if k % self.group == 0:  # whole groups: broadcast s, z per group, in place (no gathers)
            w = self.codes.astype(np.float32).reshape(n, k // self.group, self.group)
            if self.zeros is not None:
                w -= self.zeros.astype(np.float32)[:, :, None]
            else:
                w -= np.float32(self.implicit_zero)
            w *= self.scales.astype(np.float32)[:, :, None]
            return w.reshape(n, k)
        idx = np.arange(k) // self.group
        z = self.zeros[:, idx] if self.zeros is not None else self.implicit_zero
        return (self.scales[:, idx] * (self.codes.astype(np.float32) - z)).astype(np.float32)


def _grouped(w: np.ndarray, group: int) -> tuple[np.ndarray, bool]:
    """[N, K] -> [N, NG, group]; a partial last group is padded with NaN (then True)."""
    n, k = w.shape
    ng = -(-k // group)
    if ng * group == k:
        return w.reshape(n, ng, group), False
    padded = np.full((n, ng * group), np.nan, dtype=w.dtype)
    padded[:, :k] = w
    return padded.reshape(n, ng, group), True


# Rows per chunk of quantize_with_error: ~2^20 weights (8 MiB of float64 temporaries),
# so every pass over a chunk stays in cache; chunks run on a thread pool (numpy's ufuncs and
# reductions release the GIL). Rows are independent, so the result is that of one pass.
CHUNK_WEIGHTS = 1 << 20


def _row_chunks(n: int, k: int) -> list[slice]:
    rows = max(1, CHUNK_WEIGHTS // max(k, 1))
    return [slice(i, min(n, i + rows)) for i in range(0, n, rows)]


def _map_chunks(fn, chunks: list[slice]) -> list:
    if len(chunks) == 1:
        return [fn(chunks[0])]
    with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1, 8)) as pool:
        return list(pool.map(fn, chunks))


def finite_weight(w: "np.ndarray | QuantizedWeight") -> bool:
    """Whether a float weight, or a quantized one's scales and zero points, are all finite
    (no NaN, no infinity): the check importers make before a weight is quantized or packed."""
    if isinstance(w, QuantizedWeight):
        return bool(np.isfinite(w.scales).all() and (w.zeros is None or np.isfinite(w.zeros).all()))
    w = np.asarray(w)
    return w.dtype.kind not in "fc" or bool(np.isfinite(w).all())


def quantize(w: np.ndarray, spec: WeightSpec) -> QuantizedWeight:
    """Quantize a float [N, K] weight (rows are output features), in row chunks on threads
    (identical to one pass: every group lies within a row)."""
    return quantize_with_error(w, spec)[0]


def quantize_with_error(w: np.ndarray, spec: WeightSpec) -> tuple[QuantizedWeight, float]:
    """quantize(w, spec) and its relative error ||w - s (q - z)|| / ||w|| (float64, summed
    over the same chunks: the per-layer figure the driver reports)."""
    n, k = np.shape(w)
    chunks = _row_chunks(n, k)
    if len(chunks) > 1 and _c_applies(w, spec):
        # whole outputs up front: each chunk writes its rows in place (no concatenation)
        group = spec.row_group(k)
        out = (np.empty((n, k), np.uint8), np.empty((n, k // group), np.float32),
               np.empty((n, k // group), np.float32) if spec.asym else None)

        def chunk(rows):
            views = tuple(None if a is None else a[rows] for a in out)
            qw, num, den = _quantize_rows(w[rows], spec, views)
            if qw.codes is not views[0]:  # the numpy path ran (a non-finite weight)
                views[0][...], views[1][...] = qw.codes, qw.scales
                if views[2] is not None:
                    views[2][...] = qw.zeros
            return num, den

        sums = _map_chunks(chunk, chunks)
        num, den = sum(p[0] for p in sums), sum(p[1] for p in sums)
        err = float(np.sqrt(num / den)) if den else 0.0
        return QuantizedWeight(out[0], out[1], out[2], spec.bits, group, spec.ternary), err
    parts = _map_chunks(lambda rows: _quantize_rows(w[rows], spec), chunks)
    num, den = sum(p[1] for p in parts), sum(p[2] for p in parts)
    err = float(np.sqrt(num / den)) if den else 0.0
    if len(parts) == 1:
        return parts[0][0], err
    qws = [p[0] for p in parts]
    zeros = None if qws[0].zeros is None else np.concatenate([q.zeros for q in qws])
    return QuantizedWeight(np.concatenate([q.codes for q in qws]),
                           np.concatenate([q.scales for q in qws]), zeros, spec.bits,
                           qws[0].group, spec.ternary), err


def _quantize_rows(w: np.ndarray, spec: WeightSpec, out=None) -> tuple[QuantizedWeight, float, float]:
    """One chunk: its QuantizedWeight, sum (w - dequant)^2 and sum w^2. `out` (codes, scales,
    zeros or None): arrays the C path writes into (the numpy path ignores them)."""
    fast = _quantize_rows_c(w, spec, out)
    if fast is not None:
        return fast
    w = np.asarray(w, dtype=np.float64)
    n, k = w.shape
    group = spec.row_group(k)
    g, padded = _grouped(w, group)
    # NaN-aware reductions only where a padded group needs them: they are several times slower
    amin, amax, mean = (np.nanmin, np.nanmax, np.nanmean) if padded else (np.min, np.max, np.mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        if spec.ternary:
            s = mean(np.abs(g), axis=2)
            s = np.where(s > 0, s, 1.0)
            q = np.clip(np.rint(g / s[..., None]), -1, 1) + 1
            zeros = None
        elif spec.asym:
            lo, hi = amin(g, axis=2), amax(g, axis=2)
            if spec.bits == 1:  # two levels: the means of each half fit far better than min/max
                mid = np.nanmean(g, axis=2, keepdims=True)
                lo = np.nanmean(np.where(g < mid, g, np.nan), axis=2)
                hi = np.nanmean(np.where(g >= mid, g, np.nan), axis=2)
                lo = np.where(np.isnan(lo), hi, lo)
            s = (hi - lo) / (2**spec.bits - 1)
            s = np.where(s > 0, s, 1.0)
            z = -lo / s  # a float zero point: the group's min and max are exact
            q = np.clip(np.rint(g / s[..., None] + z[..., None]), 0, 2**spec.bits - 1)
            zeros = z.astype(np.float32)
        else:
            half = 2 ** (spec.bits - 1)
            s = amax(np.abs(g), axis=2) / half
            s = np.where(s > 0, s, 1.0)
            q = np.clip(np.rint(g / s[..., None]) + half, 0, 2**spec.bits - 1)
            zeros = None
    if padded:
        q = np.nan_to_num(q)
    codes = q.reshape(n, -1)[:, :k].astype(np.uint8)
    qw = QuantizedWeight(codes, s.astype(np.float32), zeros, spec.bits, group, spec.ternary)
    # the error of what is stored: float32 scales and zero points, as dequantize() uses them
    zf = qw.zeros[..., None] if zeros is not None else qw.implicit_zero
    d = np.nan_to_num(g - qw.scales[..., None] * (q - zf)) if padded else \
        g - qw.scales[..., None] * (q - zf)
    wf = np.nan_to_num(g) if padded else g
    return qw, float(np.vdot(d, d)), float(np.vdot(wf, wf))


def _c_applies(w: np.ndarray, spec: WeightSpec) -> bool:
    """Whether lutrt_quantize_rtn computes this quantization: float32 / float16 weights
    (float64 would lose bits), whole groups, and no 1-bit format (asym takes the half means)."""
    n, k = np.shape(w)
    group = spec.row_group(k)
    return (np.asarray(w).dtype in (np.float32, np.float16) and n > 0 and k > 0
            and k % group == 0 and (spec.ternary or spec.bits > 1))


def _quantize_rows_c(w: np.ndarray, spec: WeightSpec, out=None) -> tuple[QuantizedWeight, float, float] | None:
    """_quantize_rows in the C runtime (lutrt_quantize_rtn: the same double-precision formulas,
    bit-identical codes, scales and zero points), or None where it does not apply
    (`_c_applies`), on a non-finite weight, or without a runtime library."""
    if not _c_applies(w, spec):
        return None
    from lutc.runtime.weight_prep import quantize_rtn

    n, k = np.shape(w)
    group = spec.row_group(k)
    mode = 2 if spec.ternary else (0 if spec.asym else 1)
    res = quantize_rtn(np.ascontiguousarray(w, dtype=np.float32), group, spec.bits, mode, out)
    if res is None:  # a non-finite weight, or no C compiler: the numpy path decides
        return None
    codes, scales, zeros, num, den = res
    return QuantizedWeight(codes, scales, zeros, spec.bits, group, spec.ternary), num, den


def relative_error(w: np.ndarray, qw: QuantizedWeight) -> float:
    """||w - dequant(q)|| / ||w|| in one pass: the reference for quantize_with_error's figure."""
    num = np.linalg.norm(w - qw.dequantize())
    den = np.linalg.norm(w)
    return float(num / den) if den else 0.0
