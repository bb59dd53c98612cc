"""lutrt kernels against the numpy formulas (lutc/runtime/reference.py).

Checks, for bits 1..8 and ternary, M = 1, 3, 16, 33, plain and mirrored tables, f32 and int8
tables, a partial last group (K=688, G=32) and per-tensor groups (G=K), every kernel this CPU
runs (ref, avx2; avx512 and the explicitly selected avx512vbmi natively or through SIMDe
emulation) and 1 or 2 threads; the Vec-LUT
strategy (forced) for M = 32, 33, 64, 128 the same way:
  * f32 tables are lossless: max |out - dequantize-then-matmul| <= 1e-4 max |out|;
  * int8 tables: the kernels reproduce the int8 formula on the tables they were given, and the
    NMSE against the f32-table output is <= 5e-4 on Gaussian and Student-t(3) activations;
  * W = 0 (codes equal to integer zero points) gives exactly 0 on every kernel, both table
    modes, and such a weight group adds exactly nothing (issue 10.1);
  * the runtime runs clean under -fsanitize=address,undefined.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from lutc.runtime import build, kernels, packing, reference, weight_prep

HERE = Path(__file__).resolve().parent
KERNELS = [k for k in ("ref", "avx2", "avx512", "avx512vbmi") if kernels.kernel_available(k)]
# the automatic default: the best of these (avx512vbmi is only ever selected explicitly)
DEFAULT_KERNEL = [k for k in KERNELS if k != "avx512vbmi"][-1]


@pytest.fixture(autouse=True)
def default_kernel():
    yield
    kernels.set_kernel(None)


def seed(*args) -> int:
    """A deterministic seed per test case (hash() of strings varies between runs)."""
    return zlib.crc32(repr(args).encode())


def make_case(rng, m, n, k, bits, group, mirrored, ternary=False, zeros=True, dist="normal"):
    """Random weights and activations, plus the arguments lut.mma takes for them."""
    q = rng.integers(0, 3 if ternary else 1 << bits, (n, k)).astype(np.uint8)
    ng = -(-k // group)
    s = (rng.random((n, ng)) * 0.02 + 0.01).astype(np.float32)
    z = (rng.random((n, ng)) * ((1 << bits) - 1)).astype(np.float32) if zeros else None
    zimp = 1.0 if ternary else float(1 << (bits - 1))
    if dist == "normal":
        x = rng.standard_normal((m, k)).astype(np.float32)
    else:
        x = rng.standard_t(3, (m, k)).astype(np.float32)
    codes = packing.codes_from_q(q, bits)
    s_arg, z_arg, zimp_arg = s, z, zimp
    if mirrored:  # symmetrization: q' = 2q - (2^B - 1), s' = s/2, z' = 2z + 1 - 2^B
        codes = packing.mirror_codes(codes)
        s_arg, z_sym = packing.mirror_scales(s, z if zeros else zimp, bits)
        z_arg, zimp_arg = (z_sym, 0.0) if zeros else (None, z_sym)
    return dict(x=x, q=q, s=s, z=z, zimp=zimp, codes=codes, packed=packing.pack_weights(codes),
                s_arg=s_arg, z_arg=z_arg, zimp_arg=zimp_arg)


def runnable(setter, names) -> list[str]:
    """The kernel names among `names` that `setter` (kernels.set_*_kernel) accepts on this CPU
    and build, in order; the setter is left on auto."""
    ok = []
    for name in names:
        try:
            setter(name)
            ok.append(name)
        except ValueError:
            pass
    setter(None)
    return ok


def run_mma(c, bits, group, mirrored, table_i8, threads, scale_group=32, strategy=None,
            tile=(0, 0, 0), consumer_bits=0):
    t = kernels.precompute(c["x"], group=group, entries=8 if mirrored else 16,
                           table_i8=table_i8, scale_group=scale_group, consumer_bits=consumer_bits)
    out = kernels.mma(t, c["packed"], c["s_arg"], c["z_arg"], n=c["q"].shape[0], bits=bits,
                      zimp=c["zimp_arg"], threads=threads, strategy=strategy, tile=tile)
    return t, out


BITS = [1, 2, 3, 4, 5, 6, 7, 8, "ternary"]
NARROW_BITS = [1, 2, 3, 4, "ternary"]  # the Vec-LUT kernel's (wider codes run per-token)
SHAPES = [(688, 32, True), (256, 256, False)]  # (K, G, explicit zeros): partial group; per-tensor


def _bits(b):
    return (2, True) if b == "ternary" else (b, False)


# ---- packing -------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("n", [32, 70])
def test_pack_roundtrip(bits, n):
    rng = np.random.default_rng(bits * 100 + n)
    codes = rng.integers(0, 16, (bits, n, 13), dtype=np.uint8)
    packed = packing.pack_weights(codes)
    assert packed.size == packing.packed_nbytes(bits, n, 52) == -(-n // 32) * 13 * 16 * bits
    assert np.array_equal(packing.unpack_weights(packed, bits, n, 52), codes)


def test_codes_and_mirroring():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 8, (5, 16)).astype(np.uint8)
    codes = packing.codes_from_q(q, 3)
    for b in range(3):
        for i in range(4):
            assert np.array_equal((codes[b] >> i) & 1, (q[:, i::4] >> b) & 1)
    # a mirrored code looks up the full odd table: T(p) = -T(~p) (docs/design.md §3.3)
    x = rng.standard_normal(4)
    t16 = reference.pattern_weights(16) @ x
    full = 2 * t16 - x.sum()  # sum_i x_i (2 bit_i(p) - 1)
    t8 = reference.pattern_weights(8) @ x
    p = np.arange(16, dtype=np.uint8)
    c = packing.mirror_codes(p)
    looked = np.where(c & 8, -t8[c & 7], t8[c & 7])
    assert np.allclose(looked, full)


# ---- precompute ----------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("entries", [8, 16])
@pytest.mark.parametrize("scale_group", [4, 32, 64])
def test_precompute(kernel, entries, scale_group):
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(entries + scale_group)
    x = rng.standard_normal((3, 688)).astype(np.float32)
    x[1, :40] = 0.0  # all-zero scale groups: tscale 0, entries 0
    tf = kernels.precompute(x, group=32, entries=entries, table_i8=False)
    tref, _ = reference.tables_reference(x, entries, False)
    assert np.allclose(tf.entries, tref, rtol=1e-6, atol=1e-5)
    assert np.allclose(tf.sums, reference.sums_reference(x, 32), rtol=1e-5, atol=1e-5)
    ti = kernels.precompute(x, group=64, entries=entries, table_i8=True, scale_group=scale_group)
    qref, sref = reference.tables_reference(x, entries, True, scale_group)
    assert np.allclose(ti.tscale, sref, rtol=1e-6, atol=0)
    diff = np.abs(ti.entries.astype(int) - qref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 vs float64 rounding ties
    assert not ti.entries[1, :10].any()
    # fused precompute: the per-row entry point builds the same row
    lib, d = kernels.library(), kernels._desc(1, 1, 688, 1, 64, entries == 8, True, scale_group)
    row = np.empty_like(ti.rows[2])  # lutrt_table_row_bytes: entries + int8 activations
    ts, sums = np.empty_like(ti.tscale[2]), np.empty_like(ti.sums[2])
    xr = np.ascontiguousarray(x[2])
    assert lib.lutrt_precompute_row(kernels.ctypes.byref(d), xr.ctypes.data, row.ctypes.data,
                                    ts.ctypes.data, sums.ctypes.data) == 0
    assert np.array_equal(row, ti.rows[2]) and np.array_equal(ts, ti.tscale[2])


@pytest.mark.parametrize("scale_group", [4, 16])
@pytest.mark.parametrize("entries", [8, 16])
@pytest.mark.parametrize("k", [1024, 1000])  # J = 256, 250 (a partial grid block)
def test_precompute_portable_and_avx2_identical(scale_group, entries, k):
    """Whole rows (entries, tscale, the int8 activation section) bit for bit, with rows of
    zeros, tiny, huge, subnormal, inf and NaN activations among heavy-tailed ones; the AVX-512
    kernels' row (precompute_avx512.c) too where the CPU has it."""
    if "avx2" not in KERNELS:
        pytest.skip("no AVX2")
    x = np.random.default_rng(5).standard_t(3, (9, k)).astype(np.float32)
    x[1] = 0.0
    x[2] *= np.float32(1e-33)
    x[3] *= np.float32(1e36)
    x[4, ::3] = np.float32(1e-41)
    x[5, 17] = np.inf
    x[6, 100:140] = np.nan
    x[7, :64] = 0.0
    out = []
    try:
        for kern in ("ref", "avx2", *(k for k in ("avx512", "avx512vbmi") if k in KERNELS)):
            kernels.set_kernel(kern)
            out.append(kernels.precompute(x, group=80 if k == 1000 else 128, entries=entries,
                                          table_i8=True, scale_group=scale_group))
    finally:
        kernels.set_kernel(None)
    for other in out[1:]:
        assert np.array_equal(out[0].rows, other.rows)
        assert np.array_equal(out[0].tscale, other.tscale, equal_nan=True)


# ---- mma -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("m", [1, 3, 16, 33])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_mma_f32_tables_lossless(bits, m, mirrored, shape):
    """f32 tables (the scalar reference kernel on every ISA) equal dequantize-then-matmul."""
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed(str(bits), m, mirrored, k))
    c = make_case(rng, m, 72, k, nbits, group, mirrored, ternary, zeros)
    want = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], group)
    for threads in (1, 2):
        _, out = run_mma(c, nbits, group, mirrored, False, threads)
        assert np.abs(out - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("m", [1, 3, 16, 33])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale_group", [4, 32])
def test_mma_int8_tables(kernel, bits, m, mirrored, shape, scale_group):
    """int8 tables: each kernel computes exactly the int8 formula on the tables it was given
    (N = 200: 6 full blocks + a partial one, so 4-, 2- and 1-block tiles all run). Per-table
    scales (4) take the AVX-512 kernel's int32 multiplier path for B <= 4."""
    kernels.set_kernel(kernel)
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed(kernel, str(bits), m, mirrored, k))
    c = make_case(rng, m, 200, k, nbits, group, mirrored, ternary, zeros)
    for threads in (1, 2):
        t, out = run_mma(c, nbits, group, mirrored, True, threads, scale_group)
        want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], c["s_arg"],
                                         c["z_arg"], c["zimp_arg"], group, mirrored,
                                         scale_group=scale_group)
        assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), f"{threads} threads"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dist", ["normal", "student_t3"])
@pytest.mark.parametrize("bits", [2, 4, 6, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_int8_tables_accuracy(kernel, dist, bits, mirrored):
    """Table quantization is accuracy-neutral: NMSE vs the f32-table path <= 5e-4."""
    kernels.set_kernel(kernel)
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed(kernel, dist, str(bits), mirrored))
    c = make_case(rng, 4, 256, 1024, nbits, 128, mirrored, ternary, dist=dist)
    _, exact = run_mma(c, nbits, 128, mirrored, False, 1)
    for scale_group in (4, 32, 64):
        _, approx = run_mma(c, nbits, 128, mirrored, True, 2, scale_group)
        nmse = np.mean((approx - exact) ** 2) / np.mean(exact**2)
        assert nmse <= 5e-4, f"sg{scale_group}: NMSE {nmse:.2e}"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("strategy", ["per_token", "vec_lut"])
@pytest.mark.parametrize("bits", [4, 5, 7, 8])
@pytest.mark.parametrize("mirrored", [False, True])
def test_int16_accumulator_bound(kernel, strategy, bits, mirrored):
    """Worst case of the int16 bound: 16 tables per scale group all at |Lq| = 127, every code
    2^B - 1 (4 bits: 16 * 15 * 127 = 30480; 8 bits: 16 * 255 * 127, which only the split of
    planes 0..3 / 4..7 into two int16 sums keeps exact) — nothing may saturate."""
    kernels.set_kernel(kernel)
    x = np.ones((2, 256), np.float32)
    x[1] *= -1.0
    top = (1 << bits) - 1
    q = np.full((64, 256), top, np.uint8)
    codes = packing.codes_from_q(q, bits)
    s, zimp = np.ones((64, 1), np.float32), 0.0
    if mirrored:  # q' = 2q - (2^B - 1) = 2^B - 1: every plane +1; s' = s/2, z' = 1 - 2^B
        codes, s, zimp = packing.mirror_codes(codes), s / 2, float(1 - (1 << bits))
    t = kernels.precompute(x, group=256, entries=8 if mirrored else 16, table_i8=True,
                           scale_group=64)
    if mirrored:  # pattern 15 is stored as code 8: -T8[0] = x0 + x1 + x2 + x3
        assert t.entries[0, :, 0].tolist() == [-127] * 64
    else:
        assert t.entries[0, :, 15].tolist() == [127] * 64
    out = kernels.mma(t, packing.pack_weights(codes), s, None, n=64, bits=bits, zimp=zimp,
                      strategy=strategy)
    assert np.allclose(out, [[top * 256.0], [-top * 256.0]], rtol=1e-6)


# ---- zero-point term consistent with the tables (issue 10.1) ------------------------------------

def zero_weight_case(rng, m, n, k, bits, group, mirrored, ternary, zeros, z_values=None):
    """A case whose every code equals its group's integer zero point (W = 0 after dequantizing);
    explicit zero points drawn from `z_values` if given, else from every code."""
    c = make_case(rng, m, n, k, bits, group, mirrored, ternary, zeros)
    ng = -(-k // group)
    z = ((rng.choice(z_values, (n, ng)) if z_values is not None
          else rng.integers(0, 3 if ternary else 1 << bits, (n, ng))).astype(np.float32)
         if zeros else None)
    q = (np.repeat(z, group, axis=1)[:, :k] if zeros else np.full((n, k), c["zimp"])).astype(np.uint8)
    codes, s_arg, z_arg, zimp_arg = packing.codes_from_q(q, bits), c["s"], z, c["zimp"]
    if mirrored:
        codes = packing.mirror_codes(codes)
        s_arg, z_sym = packing.mirror_scales(c["s"], z if zeros else c["zimp"], bits)
        z_arg, zimp_arg = (z_sym, 0.0) if zeros else (None, z_sym)
    return dict(c, q=q, z=z, codes=codes, packed=packing.pack_weights(codes), s_arg=s_arg,
                z_arg=z_arg, zimp_arg=zimp_arg)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("table_i8", [True, False])
def test_zero_weights_give_exact_zero(kernel, bits, mirrored, table_i8):
    """W = 0 (every code equal to its integer zero point, implicit or explicit) gives exactly 0:
    the zero-point term is computed from the same (rounded) table entries the lookups read."""
    kernels.set_kernel(kernel)
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("w0", kernel, str(bits), mirrored, table_i8))
    for m in (1, 5, 16):
        for zeros, (k, group) in ((True, (688, 32)), (False, (256, 256)), (True, (512, 128))):
            c = zero_weight_case(rng, m, 200, k, nbits, group, mirrored, ternary, zeros)
            for threads, sg in ((1, 32), (2, 32), (1, 4), (2, 4)):
                _, out = run_mma(c, nbits, group, mirrored, table_i8, threads, sg)
                assert not out.any(), (m, zeros, k, threads, sg, np.abs(out).max())


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", [1, 2, 3, 4, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_f32_zero_points_off_the_codes(kernel, bits, mirrored):
    """f32 tables, zero points that are no code: halfway and other non-integers, negative, above
    2^B - 1, huge, explicit and implicit. The SIMD kernels (lmma_f32_*.c) subtract the nearest
    code's term exactly and the rest times S1; the output still equals the float64 formula on
    the same tables (1e-5 of max |out|) and the scalar kernel (1e-6)."""
    nbits, ternary = _bits(bits)
    top = (1 << nbits) - 1
    rng = np.random.default_rng(seed("zoff", kernel, str(bits), mirrored))
    n, k, group = 200, 512, 64
    edges = np.array([-0.5, 0.5, 1.5, top - 0.5, top + 0.5, -1.0, top + 1.0, 16.0, 17.25], np.float32)
    for m in (1, 5):
        for span in ("near", "far"):
            c = make_case(rng, m, n, k, nbits, group, mirrored, ternary, True)
            ng = k // group
            if span == "near":
                z = (rng.random((n, ng)) * (top + 4) - 2).astype(np.float32)
                z.flat[: edges.size * 7 : 7] = edges
                zimp = top + 0.5
            else:
                z = (rng.choice([-1.0, 1.0], (n, ng)) * 10.0 ** rng.uniform(1, 6, (n, ng))).astype(np.float32)
                zimp = -1000.25
            for zeros, zimp_ in ((z, 0.0), (None, zimp)):
                s_arg, z_arg, zimp_arg = c["s"], zeros, zimp_
                if mirrored:
                    s_arg, z_sym = packing.mirror_scales(c["s"], zeros if zeros is not None else zimp_, nbits)
                    z_arg, zimp_arg = (z_sym, 0.0) if zeros is not None else (None, float(z_sym))
                case = dict(c, s_arg=s_arg, z_arg=z_arg, zimp_arg=zimp_arg)
                kernels.set_kernel("ref")
                t, scalar = run_mma(case, nbits, group, mirrored, False, 1)
                want = reference.mma_from_tables(t.entries, None, t.sums, c["codes"], s_arg, z_arg,
                                                 zimp_arg, group, mirrored)
                kernels.set_kernel(kernel)
                for threads in (1, 2):
                    _, out = run_mma(case, nbits, group, mirrored, False, threads)
                    where = (m, span, zeros is None, threads)
                    assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), where
                    assert np.abs(out - scalar).max() <= 1e-6 * np.abs(scalar).max(), where


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_groups_contribute_exactly_zero(kernel, bits, mirrored):
    """A weight group whose codes all equal its integer zero point adds exactly nothing: the
    output is bit-identical to the same weights with that group's scale set to 0."""
    kernels.set_kernel(kernel)
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("zg", kernel, str(bits), mirrored))
    k, group, n = 512, 64, 100
    c = make_case(rng, 3, n, k, nbits, group, mirrored, ternary, True)
    z = rng.integers(0, 3 if ternary else 1 << nbits, (n, k // group)).astype(np.float32)
    dead = rng.random((n, k // group)) < 0.5
    q = np.where(np.repeat(dead, group, axis=1), np.repeat(z, group, axis=1), c["q"]).astype(np.uint8)
    codes = packing.codes_from_q(q, nbits)
    s_arg, z_arg = c["s"], z
    if mirrored:
        codes = packing.mirror_codes(codes)
        s_arg, z_arg = packing.mirror_scales(c["s"], z, nbits)
    c = dict(c, packed=packing.pack_weights(codes), s_arg=s_arg, z_arg=z_arg, zimp_arg=0.0)
    for sg in (32, 4):
        _, out = run_mma(c, nbits, group, mirrored, True, 2, sg)
        _, without = run_mma(dict(c, s_arg=np.where(dead, 0, s_arg).astype(np.float32)), nbits,
                             group, mirrored, True, 2, sg)
        assert np.array_equal(out, without), sg


# ---- non-finite activations (issue 11.4) ------------------------------------------------------

def _nonfinite_rows(k):
    """Rows: finite, one +inf, all +inf, all 3e38 (|x| sums overflow), one NaN, -inf and
    denormals (a tiny group: contributes 0)."""
    x = np.random.default_rng(17).standard_normal((7, k)).astype(np.float32)
    x[1, 37] = np.inf
    x[2] = np.inf
    x[3] = 3e38
    x[4, k - 1] = np.nan
    x[5, :8] = -np.inf
    x[6] = 1e-40
    return x


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", [2, 3, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("strategy", ["per_token", "vec_lut"])
def test_nonfinite_activations_poison_their_row(kernel, bits, mirrored, strategy):
    """int8 tables: a row with inf / NaN / overflowing activations gives NaN in every output
    (a float GEMM gives non-finite outputs too), the same on every kernel and strategy; other
    rows are unaffected; a denormal row gives exactly 0."""
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("nf", str(bits), mirrored))
    c = make_case(rng, 7, 200, 256, nbits, 64, mirrored, ternary, True)
    c["x"] = _nonfinite_rows(256)
    kernels.set_kernel("ref")
    _, want = run_mma(c, nbits, 64, mirrored, True, 1)
    kernels.set_kernel(kernel)
    t, out = run_mma(c, nbits, 64, mirrored, True, 2, strategy=strategy)
    assert np.isnan(out[1:6]).all() and np.isfinite(out[0]).all()
    assert not out[6].any()
    assert np.array_equal(out, want, equal_nan=True) or (
        np.array_equal(np.isnan(out), np.isnan(want))
        and np.abs(out[0] - want[0]).max() <= 1e-5 * np.abs(want[0]).max())
    for row in range(1, 6):
        assert np.isnan(t.tscale[row]).any()
        assert not t.entries[row][np.repeat(np.isnan(t.tscale[row]), 8)].any()
    # the finite row matches a call without the others
    c0 = dict(c, x=c["x"][:1])
    _, alone = run_mma(c0, nbits, 64, mirrored, True, 2, strategy=strategy)
    assert np.array_equal(alone[0], out[0])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mirrored", [False, True])
def test_nonfinite_activations_f32_tables(kernel, mirrored):
    """f32 tables carry inf / NaN through like a float GEMM: those rows are non-finite."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("nf32", mirrored))
    c = make_case(rng, 7, 100, 256, 2, 64, mirrored)
    c["x"] = _nonfinite_rows(256)
    _, out = run_mma(c, 2, 64, mirrored, False, 2)
    assert (~np.isfinite(out[1:6])).all() and np.isfinite(out[[0, 6]]).all()


def test_precompute_nonfinite_clean_under_float_cast_ubsan():
    """No float -> int8 cast of inf / NaN in any precompute or mma: the runtime built with
    -fsanitize=float-cast-overflow (not part of -fsanitize=undefined) runs every kernel on
    non-finite and tiny activations without a report."""
    lib = build.runtime_library(extra_cflags=("-fsanitize=float-cast-overflow",
                                              "-fno-sanitize-recover=all"))
    code = f"""
import numpy as np, sys
sys.path.insert(0, {str(HERE)!r})
from lutc.runtime import kernels, packing
from test_kernels import _nonfinite_rows
kernels.use_library({str(lib)!r})
x = _nonfinite_rows(256)
q = np.random.default_rng(0).integers(0, 4, (64, 256)).astype(np.uint8)
for kernel in {KERNELS!r}:
    kernels.set_kernel(kernel)
    for entries in (8, 16):
        codes = packing.codes_from_q(q, 2)
        codes = packing.mirror_codes(codes) if entries == 8 else codes
        for sg in (4, 32, 64):
            t = kernels.precompute(x, group=64, entries=entries, table_i8=True, scale_group=sg)
            for strategy in ("per_token", "vec_lut"):
                out = kernels.mma(t, packing.pack_weights(codes), np.ones((64, 4), np.float32),
                                  n=64, bits=2, zimp=1.0, strategy=strategy)
                assert np.isnan(out[1:6]).all(), (kernel, entries, sg)
print("clean")
"""
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0 and "runtime error" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout.strip() == "clean"


# ---- Vec-LUT ---------------------------------------------------------------------------------

SIMD_KERNELS = [k for k in KERNELS if k != "ref"]


@pytest.mark.skipif(not SIMD_KERNELS, reason="Vec-LUT needs the avx2/avx512 kernels")
@pytest.mark.parametrize("bits", NARROW_BITS + [8])
@pytest.mark.parametrize("m", [32, 33, 64, 128])
@pytest.mark.parametrize("mirrored", [False, True])
def test_vec_lut_matches_reference(bits, m, mirrored):
    """Vec-LUT forced: the int8 formula on the given tables (partial last weight group K=688,
    G=32, explicit zeros), 1 and 2 threads, and the per-token strategy agrees with it. N = 200:
    a partial last block; 2 threads split N into single blocks."""
    nbits, ternary = _bits(bits)
    k, group, zeros = SHAPES[0]
    rng = np.random.default_rng(seed("vlut", str(bits), m, mirrored))
    c = make_case(rng, m, 200, k, nbits, group, mirrored, ternary, zeros)
    for kernel in SIMD_KERNELS:
        kernels.set_kernel(kernel)
        for threads in (1, 2):
            t, out = run_mma(c, nbits, group, mirrored, True, threads, strategy="vec_lut")
            want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], c["s_arg"],
                                             c["z_arg"], c["zimp_arg"], group, mirrored)
            scale = np.abs(want).max()
            assert np.abs(out - want).max() <= 1e-5 * scale, f"{kernel} {threads} threads"
            _, per_token = run_mma(c, nbits, group, mirrored, True, threads, strategy="per_token")
            assert np.abs(out - per_token).max() <= 1e-5 * scale


@pytest.mark.skipif(not SIMD_KERNELS, reason="Vec-LUT needs the avx2/avx512 kernels")
@pytest.mark.parametrize("tile", [(16, 32, 0), (48, 96, 4), (64, 1024, 0), (100, 40, 0)])
@pytest.mark.parametrize("shape", SHAPES + [(1024, 128, False)])
def test_vec_lut_tile_sizes(tile, shape):
    """Any token tile (rounded up to 16, capped at 64) and weight tile (rounded up to 32
    rows) gives the same result; per-tensor groups and scale group 64 (no unrolled path)."""
    kernels.set_kernel(SIMD_KERNELS[-1])
    k, group, zeros = shape
    rng = np.random.default_rng(seed("vtile", tile, k))
    c = make_case(rng, 70, 300, k, 2, group, True, zeros=zeros)
    for scale_group in (32, 64) if group % 64 == 0 else (32,):
        t, out = run_mma(c, 2, group, True, True, 2, scale_group, "vec_lut", tile)
        want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], c["s_arg"],
                                         c["z_arg"], c["zimp_arg"], group, True,
                                         scale_group=scale_group)
        assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max()


def test_strategy_dispatch():
    """AUTO follows LUTRT_VEC_LUT_MIN_M (0: never Vec-LUT, so bit-identical to per-token); the
    ref kernel and f32 tables ignore the strategy; bad fields are errors."""
    rng = np.random.default_rng(21)
    c = make_case(rng, 64, 96, 256, 2, 64, True)
    if SIMD_KERNELS:
        kernels.set_kernel(SIMD_KERNELS[-1])
        _, auto = run_mma(c, 2, 64, True, True, 1)
        _, per_token = run_mma(c, 2, 64, True, True, 1, strategy="per_token")
        assert np.array_equal(auto, per_token)
    kernels.set_kernel("ref")
    _, ref_auto = run_mma(c, 2, 64, True, True, 1)
    _, ref_vec = run_mma(c, 2, 64, True, True, 1, strategy="vec_lut")
    assert np.array_equal(ref_auto, ref_vec)
    _, f32_auto = run_mma(c, 2, 64, True, False, 1)
    _, f32_vec = run_mma(c, 2, 64, True, False, 1, strategy="vec_lut")
    assert np.array_equal(f32_auto, f32_vec)
    t = kernels.precompute(c["x"], group=64, entries=8)
    call = kernels.MmaCall(t, c["packed"], c["s_arg"], None, n=96, bits=2, zimp=c["zimp_arg"])
    call.desc.strategy = 3
    with pytest.raises(ValueError, match="strategy must be 0 .auto., 1 .per-token. or 2"):
        call()
    call.desc.strategy, call.desc.tile_m = 2, -1
    with pytest.raises(ValueError, match="tile sizes must be >= 0"):
        call()
    with pytest.raises(ValueError, match="strategy must be one of"):
        kernels.mma(t, c["packed"], c["s_arg"], n=96, bits=2, strategy="magic")


# ---- dispatch, threads, errors ---------------------------------------------------------------

def write_case(d, c, m, n, k, bits, group, mirrored, table_i8, scale_group, zeros, want):
    """A case directory for the sanitizer drivers (meta.txt + raw arrays; sanitize_driver.c)."""
    d.mkdir()
    (d / "meta.txt").write_text(f"{m} {n} {k} {bits} {group} {int(mirrored)} {int(table_i8)} "
                                f"{scale_group} {c['zimp_arg']} {int(zeros)}\n")
    c["x"].tofile(d / "x.bin")
    c["packed"].tofile(d / "packed.bin")
    packing.pack_scales(c["s_arg"]).tofile(d / "scales.bin")
    if zeros:
        packing.pack_scales(c["z_arg"]).tofile(d / "zeros.bin")
    want.tofile(d / "expected.bin")
    return str(d)


def run_driver(exe, args=(), timeout=300) -> str:
    """Runs a driver built with -fsanitize=address,undefined (leak checks on, UBSan halting);
    it must exit 0 with no sanitizer report. Returns its stdout, stripped."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0 and "runtime error" not in proc.stderr, proc.stdout + proc.stderr
    return proc.stdout.strip()


def run_sanitized(exe, dirs, timeout=300):
    """Runs a sanitizer driver on case directories; it must report every case OK, no error."""
    assert run_driver(exe, dirs, timeout) == f"OK {len(dirs)} cases"


def tsan_executable(driver, extra_cflags=()) -> Path:
    """The runtime plus a driver built with -fsanitize=thread (ThreadSanitizer) and
    `extra_cflags`; the test is skipped where the compiler has no ThreadSanitizer."""
    try:
        return build.runtime_executable(driver, extra_cflags=("-fsanitize=thread", "-O1",
                                                              *extra_cflags))
    except build.RuntimeBuildError as err:
        pytest.skip(f"no ThreadSanitizer here: {err}")


def run_tsan(exe, args=(), timeout=600) -> str:
    """Runs a ThreadSanitizer driver: exit 0 and no race report. Returns its stdout, stripped."""
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:exitcode=66")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0 and "ThreadSanitizer" not in proc.stderr, \
        proc.stdout + proc.stderr[:4000]
    return proc.stdout.strip()


def _python(code: str, **env) -> tuple[str, str]:
    e = dict(os.environ, **env)
    e["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr.strip()


def test_env_selects_kernel_and_threads():
    code = ("from lutc.runtime import kernels as k; "
            "print(k.kernel_name(), k.get_num_threads())")
    assert _python(code, LUTRT_KERNEL="ref", LUTRT_NUM_THREADS="3")[0] == "ref 3"
    out, err = _python(code, LUTRT_KERNEL="sse9")
    assert "LUTRT_KERNEL=sse9 is not available" in err
    assert out == f"{DEFAULT_KERNEL} {len(os.sched_getaffinity(0))}"
    if "avx512vbmi" in KERNELS:
        assert _python(code, LUTRT_KERNEL="avx512vbmi")[0].split()[0] == "avx512vbmi"


def test_set_kernel_and_threads_api():
    kernels.set_kernel("ref")
    assert kernels.kernel_name() == "ref"
    with pytest.raises(ValueError, match="unknown or not compiled kernel 'neon'"):
        kernels.set_kernel("neon")
    kernels.set_num_threads(1)
    assert kernels.get_num_threads() == 1
    kernels.set_num_threads(None)
    assert kernels.get_num_threads() >= 1


def test_pool_shutdown_and_restart():
    rng = np.random.default_rng(3)
    c = make_case(rng, 3, 300, 256, 2, 64, True)
    _, before = run_mma(c, 2, 64, True, True, 2)
    kernels.library().lutrt_shutdown()
    _, after = run_mma(c, 2, 64, True, True, 2)
    assert np.array_equal(before, after)


def test_errors_are_value_errors():
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(ValueError, match="x must be float32"):
        kernels.precompute(x.astype(np.float64), group=32)
    with pytest.raises(ValueError, match="K a multiple of 4"):
        kernels.precompute(np.zeros((2, 66), np.float32), group=32)
    with pytest.raises(ValueError, match="scale_group 64 must divide the weight group 32"):
        kernels.precompute(x, group=32, table_i8=True, scale_group=64)
    t = kernels.precompute(x, group=32)
    with pytest.raises(ValueError, match="packed_w must be a contiguous uint8 array of 512 bytes"):
        kernels.mma(t, np.zeros(10, np.uint8), np.ones((8, 2), np.float32), n=8, bits=2)
    with pytest.raises(ValueError, match=r"scales must have shape \[8, 2\]"):
        kernels.mma(t, np.zeros(512, np.uint8), np.ones((8, 3), np.float32), n=8, bits=2)


def test_build_errors(tmp_path, monkeypatch):
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return missing; }\n")
    with pytest.raises(build.RuntimeBuildError, match="missing. undeclared"):
        build.compile_shared([bad], tmp_path / "bad.so")
    with pytest.raises(build.RuntimeBuildError, match="C source file.s. not found: .*nope.c"):
        build.compile_shared([tmp_path / "nope.c"], tmp_path / "bad.so")
    assert issubclass(build.RuntimeBuildError, RuntimeError)
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(build.RuntimeBuildError, match="C compiler 'no-such-cc' not found"):
        build.compile_shared([bad], tmp_path / "bad.so")


def test_runtime_builds_without_amx_flags(tmp_path):
    """A C compiler that does not know -mamx-tile / -mamx-int8 (GCC < 11, Clang < 12): the
    runtime still builds, without its AMX kernel, and dispatch never picks AMX. (-O1 and a
    fresh cache: the wrapper reports the same --version, so the cached library would hide it.)"""
    if not build._is_x86():
        pytest.skip("x86 only")
    cc = tmp_path / "cc-without-amx"
    cc.write_text('#!/bin/sh\nfor a in "$@"; do case "$a" in -mamx-*) '
                  'echo "cc: error: unrecognized command-line option $a" >&2; exit 1;; '
                  f'esac; done\nexec {build.compiler()} "$@"\n')
    cc.chmod(0o755)
    code = ("import ctypes; from lutc.runtime import build; "
            "lib = ctypes.CDLL(str(build.runtime_library(extra_cflags=('-O1',)))); "
            "lib.lutrt_i8act_kernel_name.restype = ctypes.c_char_p; "
            "print(build.compiler_accepts(build.AMX_FLAGS), "
            "lib.lutrt_set_i8act_kernel(b'amx') != 0, lib.lutrt_i8act_kernel_name().decode())")
    out, _ = _python(code, CC=str(cc), LUTC_CACHE=str(tmp_path / "cache"))
    accepts, refused, name = out.split()
    assert (accepts, refused) == ("False", "True") and name != "amx", out
    assert build.compiler_accepts(build.AMX_FLAGS)  # the real compiler (gcc 12 in CI) does


# ---- sanitizers, emulated AVX-512 ----------------------------------------------------------

def test_runtime_clean_under_asan_ubsan(tmp_path):
    exe = build.runtime_executable(HERE / "sanitize_driver.c", sanitize=True, extra_cflags=("-O1",))
    rng = np.random.default_rng(7)
    dirs = []
    for i, (m, n, k, bits, group, mirrored, i8, zeros) in enumerate([
            (1, 200, 688, 2, 32, True, True, True), (3, 70, 256, 3, 256, False, True, False),
            (5, 40, 128, 1, 64, True, False, True), (2, 96, 512, 4, 128, False, True, True)]):
        c = make_case(rng, m, n, k, bits, group, mirrored, zeros=zeros)
        kernels.set_kernel("ref")
        _, want = run_mma(c, bits, group, mirrored, i8, 1)
        dirs.append(write_case(tmp_path / f"case{i}", c, m, n, k, bits, group, mirrored, i8, 32,
                               zeros, want))
    run_sanitized(exe, dirs, timeout=120)
    # the same cases on 2 threads under ThreadSanitizer (emulated AVX-512 is ASan's only)
    assert run_tsan(tsan_executable(HERE / "sanitize_driver.c"), dirs) == f"OK {len(dirs)} cases"


# (m, n, bits, mirrored, (K, G, explicit zeros), scale_group)
EMULATION_CASES = [(1, 200, 2, True, SHAPES[0], 32), (3, 200, 3, False, SHAPES[1], 32),
                   (16, 100, 1, True, SHAPES[0], 32), (33, 72, 4, False, SHAPES[0], 32),
                   # per-table scales: the vpdpbusd tiles (2, 4 bits), the others (3, 8)
                   (1, 200, 2, True, SHAPES[0], 4), (3, 200, 4, False, SHAPES[0], 4),
                   (1, 200, 3, True, SHAPES[1], 4), (2, 100, 8, True, SHAPES[0], 4)]
# avx512vbmi looks up four tables at once: every bit width both ways, GEMV (4- and 2-block
# tiles plus single blocks) and GEMM (odd M), and scale groups that are not a multiple of four
# tables (remainders of 1..3 tables, a partial last weight group of K = 688, G = 48).
VBMI_EMULATION_CASES = EMULATION_CASES + [
    (m, 200, bits, mirrored, shape, sg)
    for bits in (1, 2, 3, 4) for mirrored in (False, True)
    for m, shape, sg in [(1, (688, 48, True), 24), (3, (256, 256, False), 32), (2, (688, 48, False), 12)]
] + [(1, 100, 2, True, (688, 32, True), 4), (5, 264, 4, True, (1024, 128, False), 64)]


@pytest.mark.parametrize("kernel", ["avx512", "avx512vbmi"])
def test_avx512_kernel_under_simde_emulation(kernel):
    """The AVX-512 kernels cannot run natively on CPUs without AVX-512 (VBMI/VNNI); SIMDe's
    emulation runs the same source so their lane bookkeeping is still checked against the
    reference."""
    if kernel in KERNELS:
        pytest.skip(f"native {kernel}: covered by the int8 tests")
    if not Path("/usr/include/simde/x86/avx512.h").exists():
        pytest.skip("SIMDe headers not installed (apt install libsimde-dev)")
    kernels.use_library(build.runtime_library(avx512_emulation=True))
    try:
        kernels.set_kernel(kernel)
        assert kernels.kernel_name() == kernel
        rng = np.random.default_rng(11)
        cases = VBMI_EMULATION_CASES if kernel == "avx512vbmi" else EMULATION_CASES
        for m, n, bits, mirrored, shape, sg in cases:
            k, group, zeros = shape
            c = make_case(rng, m, n, k, bits, group, mirrored, zeros=zeros)
            t, out = run_mma(c, bits, group, mirrored, True, 2, scale_group=sg)
            want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], c["s_arg"],
                                             c["z_arg"], c["zimp_arg"], group, mirrored,
                                             scale_group=sg)
            case = (m, n, bits, mirrored, shape, sg)
            assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), case
            # the same integer sums and float order as avx512 (whose per-table path, sg 4,
            # sums mult * I in int32 instead)
            if kernel == "avx512vbmi" and sg != 4:
                kernels.set_kernel("avx512")
                _, base = run_mma(c, bits, group, mirrored, True, 2, scale_group=sg)
                kernels.set_kernel(kernel)
                assert np.array_equal(out, base), case
    finally:
        kernels.use_library(build.runtime_library())


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_table_scales_with_large_zero_points(kernel, bits):
    """Zero points far outside the code range (GGUF Q4_1 stores z = -m/d, which is large for a
    group of all-positive weights) nearly cancel the lookup sums; the per-table path still
    computes the formula to float32 rounding, relative to each output's own magnitude."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("bigz", kernel, bits))
    k, group, n = 512, 32, 96
    c = make_case(rng, 2, n, k, bits, group, True, False, True)
    z = rng.uniform(-150, 150, (n, k // group)).astype(np.float32)
    s_arg, z_arg = packing.mirror_scales(c["s"], z, bits)
    c = dict(c, s_arg=s_arg, z_arg=z_arg)
    t, out = run_mma(c, bits, group, True, True, 1, 4)
    want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], s_arg, z_arg, 0.0,
                                     group, True, scale_group=4)
    assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max()
    # the output's size comes from z * sum(x): check each against its own error scale too
    assert np.median(np.abs(out - want) / np.maximum(np.abs(want), 1e-3 * np.abs(want).max())) <= 1e-5


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("group", [16, 48])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_table_groups_across_grid_blocks(kernel, group, bits):
    """Per-table scales with weight groups that fit one grid block of 8 tables (16: straight
    into the output accumulators) and groups that straddle two (48: tables 12..23 span the
    blocks 8..15 and 16..23, through facc): both equal the int8 formula."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed(kernel, group, bits))
    c = make_case(rng, 1, 200, 480, bits, group, True, False, True)
    for threads in (1, 2):
        t, out = run_mma(c, bits, group, True, True, threads, 4)
        want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], c["s_arg"],
                                         c["z_arg"], c["zimp_arg"], group, True, scale_group=4)
        assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), f"{threads} threads"


@pytest.mark.skipif("avx512vbmi" not in KERNELS, reason="needs AVX-512 VBMI + VNNI")
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("m", [1, 3])
def test_default_kernel_runs_vbmi_per_table_tiles(bits, m):
    """The automatic kernel on a VBMI + VNNI CPU runs lmma_avx512vbmi.c's per-table tiles for
    per-table int8 tables of 1, 4 and 8 bits with whole steps of four tables (bit for bit
    what the forced avx512vbmi kernel gives) and lmma_avx512.c for the rest (2 and 3 bits; a
    weight group of 24 activations, i.e. 6 tables): all equal the int8 formula. (The int8-activation
    path, which the automatic kernel takes from a few tokens on, is off here.)"""
    rng = np.random.default_rng(seed("route", bits, m))
    for k, group in ((512, 32), (480, 24)):
        c = make_case(rng, m, 200, k, bits, group, True, False, True)
        outs = {}
        kernels.set_i8act_min_m(0)
        try:
            for kernel in (None, "avx512vbmi", "avx512"):
                kernels.set_kernel(kernel)
                t, outs[kernel] = run_mma(c, bits, group, True, True, 2, 4)
        finally:
            kernels.set_kernel(None)
            kernels.set_i8act_min_m(None)
        want = reference.mma_from_tables(t.entries, t.tscale, t.sums, c["codes"], c["s_arg"],
                                         c["z_arg"], c["zimp_arg"], group, True, scale_group=4)
        for kernel, out in outs.items():
            assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), (kernel, k, group)
        vbmi_tiles = bits in (1, 4, 8) and group % 16 == 0
        assert np.array_equal(outs[None], outs["avx512vbmi" if vbmi_tiles else "avx512"]), (k, group)
        if bits != 2 and group % 16 == 0:  # other tiles: same formula, other rounding order
            assert not np.array_equal(outs["avx512vbmi"], outs["avx512"]), (k, group)


@pytest.mark.parametrize("bits", range(1, 9))
def test_c_packing_equals_numpy_packing(bits):
    """lutrt_pack_weights (what pack_weights runs) writes the numpy reference's bytes, padding
    rows (N not a multiple of 32) included, and rejects codes above 15."""
    rng = np.random.default_rng(bits)
    for n, j in [(1, 1), (33, 7), (64, 16), (100, 3)]:
        c = rng.integers(0, 16, (bits, n, j)).astype(np.uint8)
        fast = weight_prep.pack_weights(c)
        assert fast is not None
        np.testing.assert_array_equal(fast, packing.pack_weights_numpy(c))
    c[0, 0, 0] = 16
    assert weight_prep.pack_weights(c) is None
    with pytest.raises(ValueError, match="4-bit patterns"):
        packing.pack_weights(c)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits,scale_group", [(2, 4), (4, 32), (3, 4), (8, 4)])
def test_gemm_split_over_token_rows_changes_nothing(kernel, bits, scale_group):
    """Many threads split a GEMM over super blocks and parts of the token rows (mma.c,
    gemm_split): every output equals the one-thread call bit for bit (odd M included)."""
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(0)  # the LUT kernels at every M
    try:
        rng = np.random.default_rng(seed("split", kernel, bits, scale_group))
        for m in (64, 47):
            c = make_case(rng, m, 700, 512, bits, 32, True)
            one = run_mma(c, bits, 32, True, True, 1, scale_group)[1]
            for threads in (3, 16, 64):
                assert np.array_equal(run_mma(c, bits, 32, True, True, threads, scale_group)[1], one)
    finally:
        kernels.set_i8act_min_m(None)
        kernels.set_kernel(None)
