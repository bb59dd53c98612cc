"""The numpy meaning of each `lut` op: the interpreter (lut_interpreter.py) runs these.

Formulas are the ones in the op docstrings (lutc/dialects/lut_ops.py; docs/design.md §2-3).
This is an implementation under test, not an oracle: the pass tests check it against
dequantize-then-matmul, and the C kernels are checked against `lutc.runtime.reference`, the
one independent oracle, which shares no code with this module on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutc.runtime.abi import act_group, num_blocks


@dataclass
class Tables:
    """The runtime value of a `!lut.table`: entries [M, T, E] (+ int8 scales [M, NS]). int8
    tables also carry the activations x [M, K] (f32) they were built from: the runtime stores
    them as two-pass int8 activations after each table row, which `mma` reads at large M."""

    entries: np.ndarray
    scales: np.ndarray | None = None
    scale_group: int = 0
    x: np.ndarray | None = None
    consumer_bits: int = 0  # its readers' weight bits (table_readers.consumer_bits), 0: unknown

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


GRID_TABLES = 8  # LUTRT_GRID_TABLES (lutrt_internal.h)
GRID_SHIFT = 6  # LUTRT_GRID_SHIFT
GRID_MAX_MULT = 128  # LUTRT_GRID_MAX_MULT


def grid_scales(scales: np.ndarray) -> np.ndarray:
    """Per-table scales [M, J] (f32) put on the runtime's grid (lutrt.h, lutrt_grid_scales):
    in each aligned block of 8 tables, u = 2^(ilogb(max) - 6), doubled when ceil(max / u)
    reaches 2^7, and every positive scale becomes ceil(scale / u) * u (all f32, exact): the
    multipliers scale / u are 7-bit integers, and a scale grows by at most 2^-6 of the block's
    largest one."""
    m, j = scales.shape
    nb = -(-j // GRID_TABLES)
    blocks = np.zeros((m, nb * GRID_TABLES), np.float32)
    blocks[:, :j] = scales
    blocks = blocks.reshape(m, nb, GRID_TABLES)
    with np.errstate(invalid="ignore"):
        positive = blocks > 0  # NaN and 0 stay as they are
        mx = np.where(positive, blocks, np.float32(0)).max(axis=2)
        exponent = np.frexp(np.where(mx > 0, mx, np.float32(1)))[1] - 1 - GRID_SHIFT  # ilogb(mx) - 6
        unit = np.ldexp(np.float32(1), exponent).astype(np.float32)
        unit = np.where(np.ceil(mx / unit) >= GRID_MAX_MULT, unit * np.float32(2), unit)[:, :, None]
        graded = np.where(positive, np.ceil(blocks / unit) * unit, blocks)
    return graded.reshape(m, nb * GRID_TABLES)[:, :j].astype(np.float32)


def precompute(x: np.ndarray, entries: int, sum_group: int, quantized: bool = False,
               scale_group: int = 0, consumer_bits: int = 0) -> tuple[Tables, np.ndarray]:
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
    with np.errstate(over="ignore", invalid="ignore"):
        absmax[:, :t] = np.abs(xg).sum(axis=2).astype(np.float32)  # overflows like float32
    mx = absmax.reshape(m, ns, per).max(axis=2)
    # the runtime's policy (lutrt.h): a non-finite group gets a NaN scale and zero entries
    # (its row's outputs are NaN); a group below 2^-100 gets scale 0 and zero entries
    finite = np.isfinite(mx)
    scales = np.where(finite, np.where(mx < 2.0**-100, 0.0, mx / 127.0), np.nan).astype(np.float32)
    if per == 1:
        scales = grid_scales(scales)
    per_table = np.repeat(scales, per, axis=1)[:, :t]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(per_table[:, :, None] > 0, table / per_table[:, :, None], 0.0)
    entries_i8 = np.clip(np.rint(q), -127, 127).astype(np.int8)
    return Tables(entries_i8, scales, scale_group, np.asarray(x, np.float32), consumer_bits), sums


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


def full_entries(tables: Tables, mirrored: bool) -> np.ndarray:
    """[M, T]: each table's all-ones entry F (sum of its 4 activations) as stored and scaled:
    plain T[15], mirrored -T8[0]."""
    vals = tables.values()
    return -vals[:, :, 0] if mirrored else vals[:, :, 15]


def one_pass_max_bits() -> int:
    """Readers' weight bits up to which activation groups may round to one int8 pass
    (runtime/lutrt.h: lutrt_one_pass_max_bits, $LUTRT_ONE_PASS_MAX_BITS, 0 = off by default);
    0 when the runtime cannot be loaded."""
    try:
        from lutc.runtime import kernels
        return kernels.one_pass_max_bits()
    except Exception:  # no C compiler / runtime: the interpreter alone, two passes
        return 0


def i8act_min_m(bits: int) -> int:
    """Tokens from which the runtime's lut.mma runs the int8-activation kernel for B-bit
    weights (runtime/lutrt.h: lutrt_i8act_min_m, which follows LUTRT_I8ACT_MIN_M, a forced
    kernel and the CPU); 0 when the path is off or the runtime cannot be loaded."""
    try:
        from lutc.runtime import kernels
        return kernels.i8act_min_m(bits)
    except Exception:  # no C compiler / runtime: the interpreter alone, tables everywhere
        return 0


def uses_int8_activations(tables: Tables, bits: int, strategy: str | None = None) -> bool:
    """Whether the runtime computes this lut.mma from int8 activations (lutrt.h, large M):
    int8 tables, not the Vec-LUT strategy, M >= lutrt_i8act_min_m(B) > 0."""
    if tables.scales is None or tables.x is None or strategy == "vec_lut":
        return False
    min_m = i8act_min_m(bits)
    return 0 < min_m <= tables.entries.shape[0]


def mma(tables: Tables, sums: np.ndarray | None, codes: np.ndarray, scales: np.ndarray,
        zeros: np.ndarray | None, group: int, implicit_zero: float, mirrored: bool,
        strategy: str | None = None) -> np.ndarray:
    """The zero-point term is z * F per table, from the tables' own (possibly int8-rounded)
    all-ones entries, not from `sums` (unused): codes equal to an integer zero point then give
    exactly 0, as in the runtime. At large M the runtime multiplies two-pass int8 activations
    instead (`mma_int8_activations`); this follows it, so compiled C and the interpreter agree."""
    if uses_int8_activations(tables, codes.shape[0], strategy):
        return mma_int8_activations(tables, codes, scales, zeros, group, implicit_zero, mirrored)
    looked = lookup(tables, codes, mirrored)  # [M, N, T]
    m, n, t = looked.shape
    per = group // 4
    ng = scales.shape[1]
    z = zeros.astype(np.float64) if zeros is not None else np.full((n, ng), implicit_zero)
    looked = looked - np.repeat(z, per, axis=1)[None, :, :t] * full_entries(tables, mirrored)[:, None, :]
    padded = np.zeros((m, n, ng * per))
    padded[:, :, :t] = looked
    grouped = padded.reshape(m, n, ng, per).sum(axis=3)  # [M, N, NG]
    return np.einsum("mng,ng->mn", grouped, scales.astype(np.float64)).astype(np.float32)


ACT_QMAX = np.float32(16256)  # 127 * 128


def int8_activations(x: np.ndarray, group: int, tscale: np.ndarray, scale_group: int,
                     consumer_bits: int = 0):
    """Two-pass int8 activations of x [M, K] (lutrt.h): per activation group of
    abi.act_group(K, G) activations ascale = max|x| / 16256 (NaN where an overlapping table
    scale is NaN, 0 below 2^-100), xq = round_half_even(x * (16256 / max)) in float32,
    hi = round_half_even(xq / 128), lo = xq - 128 hi, except lo = 0 (one int8 pass) in a group
    whose crest factor max|xq| / rms(xq) is <= 3.5 when the readers have 1..4-bit weights
    (consumer_bits, lutrt_act_one_pass_allowed). Returns hi, lo [M, NA, AG] (float64,
    zero-padded) and ascale [M, NA]."""
    m, k = x.shape
    ag = act_group(k, group)
    na = -(-k // ag)
    xp = np.zeros((m, na * ag), np.float32)
    xp[:, :k] = x
    xp = xp.reshape(m, na, ag)
    with np.errstate(invalid="ignore", over="ignore"):
        mx = np.abs(xp).max(axis=2)
    first = np.arange(na) * ag // scale_group
    last = (np.minimum(np.arange(na) * ag + ag, k) - 1) // scale_group
    bad = np.isnan(tscale)
    poisoned = np.array([bad[:, f:l + 1].any(axis=1) for f, l in zip(first, last)]).T
    live = ~poisoned & (mx >= np.float32(2.0**-100))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = np.where(live, ACT_QMAX / np.where(live, mx, 1), 0).astype(np.float32)
        xq = np.clip(np.rint(np.where(live[:, :, None], xp, 0) * inv[:, :, None]), -ACT_QMAX, ACT_QMAX)
    hi = np.rint(xq.astype(np.float64) / 128.0)
    lo = xq - 128.0 * hi
    # one int8 pass where the group's crest factor is <= 3.5 (lutrt_act_one_pass, exact integers)
    n = np.minimum(ag, k - np.arange(na) * ag).astype(np.float64)
    q64 = xq.astype(np.float64)
    one_pass = 4.0 * np.abs(q64).max(axis=2) ** 2 * n <= 49.0 * (q64 * q64).sum(axis=2)
    one_pass &= 1 <= consumer_bits <= one_pass_max_bits()
    lo = np.where(one_pass[:, :, None], 0.0, lo)
    ascale = np.where(poisoned, np.nan, np.where(live, mx / ACT_QMAX, 0)).astype(np.float32)
    return hi, lo, ascale


def mma_int8_activations(tables: Tables, codes: np.ndarray, scales: np.ndarray,
                         zeros: np.ndarray | None, group: int, implicit_zero: float,
                         mirrored: bool) -> np.ndarray:
    """lut.mma as the runtime computes it at large M (lutrt.h): with the unsigned codes q
    (mirrored formats: s = 2 s', z = (z' + 2^B - 1) / 2),
        out[m, n] = sum_g s[n, g] * sum_{t in g} ascale[m, t] *
                    (128 (I_hi - z S_hi[m, t]) + (I_lo - z S_lo[m, t])),
    I_hi = sum_{k in t} q[n, k] hi[m, k] (I_lo alike), S_hi / S_lo the sums of hi / lo."""
    bits, n, t = codes.shape
    k = 4 * t
    c = codes.astype(np.int64)
    if mirrored:  # the sign-bit convention is an involution: c >= 8 <-> 8 | (~c & 7)
        c = np.where(c >= 8, 8 | (~c & 7), c)
    q = np.zeros((n, t, 4))
    for b in range(bits):
        q += (2.0**b) * ((c[b][:, :, None] >> np.arange(4)) & 1)
    q = q.reshape(n, k)
    ng = scales.shape[1]
    s = np.asarray(scales, np.float32)
    z = np.asarray(zeros, np.float32) if zeros is not None else np.full((n, ng), implicit_zero, np.float32)
    if mirrored:
        s = s * np.float32(2)
        z = (z + np.float32((1 << bits) - 1)) * np.float32(0.5)
    hi, lo, ascale = int8_activations(tables.x, group, tables.scales, tables.scale_group,
                                      tables.consumer_bits)
    m, na, ag = hi.shape
    qp = np.zeros((n, na * ag))
    qp[:, :k] = q
    qp = qp.reshape(n, na, ag)
    ih = np.einsum("mta,nta->mnt", hi, qp)
    il = np.einsum("mta,nta->mnt", lo, qp)
    g_of = np.arange(na) * ag // group  # activation groups never straddle weight groups
    zt = z.astype(np.float64)[:, g_of][None]  # [1, N, NA]
    v = 128.0 * (ih - zt * hi.sum(axis=2)[:, None, :]) + (il - zt * lo.sum(axis=2)[:, None, :])
    with np.errstate(invalid="ignore"):
        v = v * ascale.astype(np.float64)[:, None, :] * s.astype(np.float64)[:, g_of][None]
    return v.sum(axis=2).astype(np.float32)


def dequantize(codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, group: int,
               implicit_zero: float) -> np.ndarray:
    n, k = codes.shape
    if codes.dtype == np.int8:  # i8 storage of unsigned codes (8-bit codes 128..255 read < 0)
        codes = codes.view(np.uint8)
    idx = np.arange(k) // group
    z = zeros[:, idx] if zeros is not None else implicit_zero
    return (scales[:, idx] * (codes.astype(np.float32) - z)).astype(np.float32)


# -- weight-only ops (lut.bitplanes, dialects/mirror_ops.py, packed_ops.py) -------------------
# The weight encodings are the runtime's: bit planes, the mirrored sign-bit convention and the
# symmetrized scales/zeros are lutc.runtime.packing's functions (codes_from_q, mirror_codes,
# mirror_scale, mirror_zero), which the interpreter calls directly; only the block layout's
# array shapes are adapted here.

def pack_planes(codes: np.ndarray) -> np.ndarray:
    """Bit-plane codes [B, N, K/4] -> the runtime's packed blocks [NB, K/4, 16*B] (uint8)."""
    from lutc.runtime.packing import pack_weights

    b, n, j = codes.shape
    return pack_weights(np.asarray(codes).astype(np.uint8)).reshape(num_blocks(n), j, 16 * b)


def unpack_planes(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of `pack_planes` for N = n weight rows -> [B, N, K/4] (uint8)."""
    from lutc.runtime.packing import unpack_weights

    nb, j, chunk = packed.shape
    bits = chunk // 16
    return unpack_weights(np.asarray(packed).view(np.uint8).reshape(-1), bits, n, 4 * j)


def pack_code_bytes(codes: np.ndarray, mirrored: bool) -> np.ndarray:
    """Bit-plane codes [B, N, K/4] -> the code-byte layout [NB, K/4, 128] (uint8)."""
    from lutc.runtime.packing import pack_code_bytes, q_from_planes

    b, n, j = codes.shape
    return pack_code_bytes(q_from_planes(codes, mirrored)).reshape(num_blocks(n), j, -1)


def unpack_code_bytes(packed: np.ndarray, n: int, bits: int, mirrored: bool) -> np.ndarray:
    """Inverse of `pack_code_bytes` for N = n weight rows -> bit-plane codes [B, N, K/4]."""
    from lutc.runtime.packing import bit_planes, unpack_code_bytes

    nb, j, _ = packed.shape
    q = unpack_code_bytes(np.asarray(packed).view(np.uint8).reshape(-1), n, 4 * j)
    return bit_planes(q, bits, mirrored)


def pack_group_values(values: np.ndarray) -> np.ndarray:
    """Scales or zeros [N, NG] -> [NB, NG, 32] in weight-block order (padding rows 0)."""
    from lutc.runtime.packing import pack_scales

    return pack_scales(np.asarray(values, np.float32))


def unpack_group_values(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of `pack_group_values` -> [N, NG]."""
    nb, ng, block = packed.shape
    return np.asarray(packed).transpose(0, 2, 1).reshape(nb * block, ng)[:n]
