"""The independent oracle: the lutrt formulas in plain float64 numpy, which the C kernels are
tested against (test/runtime/test_kernels.py).

Independent on purpose: it shares no code with the C runtime, with the packed layout
(runtime/packing.py) or with the interpreter's semantics (dialects/lut_semantics.py), so a
mistake in one of those cannot hide by being repeated here. Keep it that way: do not import
it from, or make it import, those modules. Formulas: lutrt.h / docs/design.md §2-3.
"""

from __future__ import annotations

import math

import numpy as np


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def dequantize(q: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, zimp: float,
               group: int) -> np.ndarray:
    """w[n, k] = s[n, k/G] * (q[n, k] - z[n, k/G]) in float64."""
    n, k = q.shape
    idx = np.arange(k) // group
    z = zeros.astype(np.float64)[:, idx] if zeros is not None else float(zimp)
    return scales.astype(np.float64)[:, idx] * (q.astype(np.float64) - z)


def matmul_reference(x: np.ndarray, q: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None,
                     zimp: float, group: int) -> np.ndarray:
    """Dequantize-then-matmul: out[m, n] = sum_k x[m, k] w[n, k], float64."""
    return x.astype(np.float64) @ dequantize(q, scales, zeros, zimp, group).T


def pattern_weights(entries: int) -> np.ndarray:
    """[E, 4]: the weight of x[4j+i] in entry p: bit_i(p) (16) or 2 bit_i(p) - 1 (8)."""
    bits = (np.arange(entries)[:, None] >> np.arange(4)[None, :]) & 1
    return bits.astype(np.float64) if entries == 16 else 2.0 * bits - 1.0


def tables_reference(x: np.ndarray, entries: int, table_i8: bool, scale_group: int = 32):
    """(tables [M, K/4, E], tscale [M, NS] or None). int8 entries are
    round_half_even(T * 127 / max_t sum|x|) with the max over each scale group."""
    m, k = x.shape
    xg = x.astype(np.float64).reshape(m, k // 4, 4)
    t = xg @ pattern_weights(entries).T
    if not table_i8:
        return t, None
    per = scale_group // 4
    j = k // 4
    ns = _cdiv(j, per)
    asum = np.zeros((m, ns * per))
    asum[:, :j] = np.abs(xg).sum(axis=2)
    with np.errstate(invalid="ignore", over="ignore"):
        asum = asum.astype(np.float32).astype(np.float64)  # overflow to inf as in float32
        mx = asum.reshape(m, ns, per).max(axis=2)
        finite = np.isfinite(mx)  # NaN / inf / overflowed group: NaN scale, entries 0 (lutrt.h)
        live = finite & (mx >= 2.0**-100)  # tiny groups: scale 0, entries 0
        inv = np.where(live, 127.0 / np.where(live, mx, 1.0), 0.0)
        tq = np.clip(np.rint(np.nan_to_num(t) * np.repeat(inv, per, axis=1)[:, :j, None]), -127, 127)
    scale = np.where(finite, np.where(live, mx / 127.0, 0.0), np.nan)
    if per == 1:  # per-table scales: on lutrt.h's grid, entries rounded against the graded scale
        scale = _graded(np.where(finite, np.where(live, mx.astype(np.float32) / np.float32(127), 0), np.nan))
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
            tq = np.clip(np.rint(np.nan_to_num(t) * inv[:, :j, None]), -127, 127)
    return tq.astype(np.int8), scale


def _graded(scale: np.ndarray) -> np.ndarray:
    """lutrt.h's grid for per-table scales, one aligned block of 8 tables at a time: unit
    u = 2^(floor(log2 max) - 6), twice that if ceil(max / u) would be 128; scale -> ceil(scale / u) u."""
    out = scale.astype(np.float32).copy()
    for row in out:
        for b in range(0, row.size, 8):
            blk = row[b:b + 8]
            live = blk > 0
            if not live.any():
                continue
            top = float(blk[live].max())
            u = 2.0 ** (math.frexp(top)[1] - 7)  # frexp: top = f 2^e, 1/2 <= f < 1
            if math.ceil(top / u) >= 128:
                u *= 2
            blk[live] = np.ceil(blk[live].astype(np.float64) / u) * u
    return out


def sums_reference(x: np.ndarray, group: int) -> np.ndarray:
    m, k = x.shape
    ng = _cdiv(k, group)
    padded = np.zeros((m, ng * group))
    padded[:, :k] = x
    return padded.reshape(m, ng, group).sum(axis=2)


def full_entries(tables: np.ndarray, mirrored: bool) -> np.ndarray:
    """[M, J]: F = the all-ones entry of each table (the sum of its 4 activations as stored):
    plain T[15], mirrored -T8[0]."""
    t = tables.astype(np.float64)
    return -t[:, :, 0] if mirrored else t[:, :, 15]


def mma_from_tables(tables: np.ndarray, tscale: np.ndarray | None, sums: np.ndarray | None,
                    codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, zimp: float,
                    group: int, mirrored: bool, scale_group: int = 32) -> np.ndarray:
    """out[m, n] = sum_g s sum_{j in g} (sum_b 2^b L(c_b) - z F_j) from given tables [M, J, E]
    (f32, or int8 with tscale [M, NS]: each scale group's integer sum times its tscale). The
    zero-point term uses the tables' own all-ones entries F (lutrt.h), so `sums` is unused."""
    m = tables.shape[0]
    bits, n, j = codes.shape
    t = tables.astype(np.float64)
    c = codes.astype(np.int64)
    looked = np.zeros((m, n, j))
    cols = np.arange(j)[None, :]
    for b in range(bits):
        if mirrored:
            v = t[:, cols, c[b] & 7]
            v = np.where((c[b] & 8) != 0, -v, v)
        else:
            v = t[:, cols, c[b]]
        looked += (2.0 ** b) * v  # [M, N, J]
    jg = group // 4
    ng = scales.shape[1]
    z = zeros.astype(np.float64) if zeros is not None else np.full((n, ng), float(zimp))
    z_per_table = np.repeat(z, jg, axis=1)[:, :j]  # [N, J]
    looked -= z_per_table[None] * full_entries(tables, mirrored)[:, None, :]
    if tscale is not None:
        per = scale_group // 4
        per_table = np.repeat(tscale.astype(np.float64), per, axis=1)[:, :j]
        looked = looked * per_table[:, None, :]
    padded = np.zeros((m, n, ng * jg))
    padded[:, :, :j] = looked
    grouped = padded.reshape(m, n, ng, jg).sum(axis=3)
    return np.einsum("mng,ng->mn", grouped, scales.astype(np.float64))


def mma_reference(x: np.ndarray, codes: np.ndarray, scales: np.ndarray,
                  zeros: np.ndarray | None, zimp: float, group: int, mirrored: bool,
                  table_i8: bool, scale_group: int = 32) -> np.ndarray:
    """lut.precompute then lut.mma, all in numpy (float64; int8 tables rounded in float64, so
    a rare entry may differ by one from the float32 C precompute)."""
    t, tscale = tables_reference(x, 8 if mirrored else 16, table_i8, scale_group)
    return mma_from_tables(t, tscale, sums_reference(x, group), codes, scales, zeros, zimp,
                           group, mirrored, scale_group)


def act_group(k: int, group: int) -> int:
    """Activations per int8-activation scale: the largest multiple of 4 that is <= 128 and
    divides the weight group G, or 128 when G >= K (lutrt.h)."""
    if group >= k:
        return 128
    return max(ag for ag in range(4, 129, 4) if group % ag == 0)


def acts_reference(x: np.ndarray, group: int, scale_group: int = 4, consumer_bits: int = 0,
                   one_pass_max_bits: int | None = None):
    """The two-pass int8 activations lut.precompute stores after each int8 table row
    (lutrt.h, large M): (hi [M, K] int8, lo [M, K] int8, ascale [M, NA], shi [M, NA],
    slo [M, NA]) per activation group of act_group(K, G) activations: ascale = max|x| / 16256
    (NaN where a table scale group overlapping the group has a NaN scale, 0 below 2^-100),
    xq = round_half_even(x * (16256 / max)) (product and quotient in float32, as the C
    computes them), hi = round_half_even(xq / 128), lo = xq - 128 hi, shi / slo their sums;
    when 1 <= consumer_bits <= one_pass_max_bits (None: the runtime's setting,
    lutrt_one_pass_max_bits, 0 = off by default), a group whose crest factor max|xq| / rms(xq)
    is <= 3.5 keeps hi alone: lo = 0 and slo = -0.0, the kernels' mark for "no low pass"
    (lutrt_act_one_pass)."""
    if one_pass_max_bits is None:
        from lutc.runtime import kernels
        one_pass_max_bits = kernels.one_pass_max_bits()
    m, k = x.shape
    x = np.asarray(x, np.float32)
    ag = act_group(k, group)
    na = _cdiv(k, ag)
    with np.errstate(invalid="ignore", over="ignore"):  # inf / NaN rows: NaN scales
        _, tscale = tables_reference(x, 16, True, scale_group)
    hi = np.zeros((m, k), np.int8)
    lo = np.zeros((m, k), np.int8)
    ascale = np.zeros((m, na), np.float32)
    shi = np.zeros((m, na), np.float32)
    slo = np.zeros((m, na), np.float32)
    for t in range(na):
        k0, k1 = t * ag, min(k, (t + 1) * ag)
        xs = x[:, k0:k1]
        with np.errstate(invalid="ignore", over="ignore"):
            mx = np.abs(xs).max(axis=1)
        poisoned = np.isnan(tscale[:, k0 // scale_group:(k1 - 1) // scale_group + 1]).any(axis=1)
        for r in range(m):
            if poisoned[r]:
                ascale[r, t] = np.nan
            elif mx[r] >= np.float32(2.0**-100):
                ascale[r, t] = mx[r] / np.float32(16256)
                xq = np.clip(np.rint(xs[r] * (np.float32(16256) / mx[r])), -16256, 16256)
                h = np.rint(xq / 128.0)
                lo_r = xq - 128.0 * h
                assert np.abs(h).max() <= 127 and np.abs(lo_r).max() <= 64
                hi[r, k0:k1], lo[r, k0:k1] = h, lo_r
                shi[r, t], slo[r, t] = h.sum(), lo_r.sum()
                q64 = xq.astype(np.int64)
                if (1 <= consumer_bits <= one_pass_max_bits
                        and 4 * int(np.abs(q64).max()) ** 2 * (k1 - k0) <= 49 * int((q64 * q64).sum())):
                    lo[r, k0:k1], slo[r, t] = 0, -0.0  # one int8 pass (crest factor <= 3.5)
    return hi, lo, ascale, shi, slo


def mma_from_acts(hi: np.ndarray, lo: np.ndarray, ascale: np.ndarray, shi: np.ndarray,
                  slo: np.ndarray, q: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None,
                  zimp: float, group: int) -> np.ndarray:
    """The large-M lut.mma from two-pass int8 activations, float64: out[m, n] = sum_g s[n, g] *
    sum_{t in g} ascale[m, t] * (128 (I_hi - z S_hi) + (I_lo - z S_lo)), I_hi = sum_{k in t}
    q[n, k] hi[m, k] (I_lo alike), with the unsigned codes q [N, K] and unsymmetrized s, z
    (lutrt.h)."""
    n, k = q.shape
    ag = act_group(k, group)
    q = q.astype(np.float64)
    s = scales.astype(np.float64)
    z = zeros.astype(np.float64) if zeros is not None else np.full(s.shape, float(zimp))
    hi, lo = hi.astype(np.float64), lo.astype(np.float64)
    out = np.zeros((hi.shape[0], n))
    for t in range(ascale.shape[1]):
        k0, k1 = t * ag, min(k, (t + 1) * ag)
        g = k0 // group  # activation groups never straddle weight groups
        zt = z[None, :, g]
        ih = hi[:, k0:k1] @ q[:, k0:k1].T - shi[:, t:t + 1].astype(np.float64) * zt
        il = lo[:, k0:k1] @ q[:, k0:k1].T - slo[:, t:t + 1].astype(np.float64) * zt
        a = ascale[:, t:t + 1].astype(np.float64)
        out += a * (128.0 * ih + il) * s[None, :, g]
    return out
