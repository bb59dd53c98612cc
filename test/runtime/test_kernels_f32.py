"""The lossless (f32-table) lut.mma kernels: lmma_f32_avx2.c and lmma_f32_avx512.c.

Every kernel this CPU runs (ref, avx2, avx512, avx512vbmi — the last two share the AVX-512 f32
kernel) is checked on f32 tables against
  * the numpy formula on the same tables (float64): max |out - want| <= 1e-5 max |want|, and
  * the scalar kernel lutrt_mma_f32_ref (LUTRT_KERNEL=ref) on the same tables: max |out - ref|
    <= 1e-6 max |ref|. (The vpermps kernels keep per plane-pair accumulators and take the
    zero-point term from the tables' all-ones sums, so W = 0 gives exactly 0; the scalar
    kernel sums in another order, so the two differ by float32 rounding only);
for bits 1..4 and ternary, plain and mirrored tables, explicit zeros (K=688, G=32: a partial
last group) and the implicit zero point (K=256, G=K), M = 1, 3, 16, 33 (GEMV tiles and GEMM
4-token tiles with leftover tokens), N = 200 (not a multiple of 32: 4-, 2- and 1-block tiles
and a partial block) and 1..3 threads. Plus: LUTRT_KERNEL selects the kernel in a fresh
process, wider codes fall back to the scalar kernel, and an ASan/UBSan run.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import build, kernels, reference

from test_kernels import (HERE, KERNELS, _bits, _python, make_case, run_mma, run_sanitized, seed,
                          write_case)

N = 200  # 6 full blocks + 8 rows
SHAPES = [(688, 32, True), (256, 256, False)]  # (K, G, explicit zeros)


@pytest.fixture(autouse=True)
def default_kernel():
    yield
    kernels.set_kernel(None)


def _tables(c, group, mirrored):
    """f32 tables of the case (every kernel's precompute gives the same entries, but group sums
    may differ in rounding: the kernels under test all get these)."""
    return kernels.precompute(c["x"], group=group, entries=8 if mirrored else 16, table_i8=False)


def _mma(kernel, c, t, bits, threads):
    kernels.set_kernel(kernel)
    return kernels.mma(t, c["packed"], c["s_arg"], c["z_arg"], n=c["q"].shape[0], bits=bits,
                       zimp=c["zimp_arg"], threads=threads)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", [1, 2, 3, 4, "ternary"])
@pytest.mark.parametrize("m", [1, 3, 16, 33])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_f32_kernel_matches_reference(kernel, bits, m, mirrored, shape):
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed("f32", kernel, str(bits), m, mirrored, k))
    c = make_case(rng, m, N, k, nbits, group, mirrored, ternary, zeros)
    t = _tables(c, group, mirrored)
    scalar = _mma("ref", c, t, nbits, 1)
    want = reference.mma_from_tables(t.entries, None, t.sums, c["codes"], c["s_arg"],
                                     c["z_arg"], c["zimp_arg"], group, mirrored)
    for threads in (1, 2, 3):
        out = _mma(kernel, c, t, nbits, threads)
        assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), f"{threads} threads vs numpy"
        assert np.abs(out - scalar).max() <= 1e-6 * np.abs(scalar).max(), f"{threads} threads vs f32_ref"


def test_f32_large_k_gemv_and_gemm():
    """K = 4096 in one group (1024 tables summed before the flush): still within 1e-6 of the
    scalar kernel; M = 1 and 8 (two 4-token tiles), mirrored 2-bit as the benchmark runs it."""
    rng = np.random.default_rng(seed("f32-large"))
    for m in (1, 8):
        c = make_case(rng, m, 96, 4096, 2, 4096, True, zeros=False)
        t = _tables(c, 4096, True)
        scalar = _mma("ref", c, t, 2, 1)
        for kernel in KERNELS:
            out = _mma(kernel, c, t, 2, 2)
            assert np.abs(out - scalar).max() <= 1e-6 * np.abs(scalar).max(), (kernel, m)


def test_env_var_selects_f32_kernel():
    """LUTRT_KERNEL (read once by the dispatcher) picks the kernel for f32 tables too."""
    code = ("import numpy as np; from lutc.runtime import kernels as k, packing as p; "
            "rng = np.random.default_rng(0); x = rng.standard_normal((2, 256), dtype=np.float32); "
            "q = rng.integers(0, 4, (40, 256)).astype(np.uint8); "
            "t = k.precompute(x, group=64, entries=16, table_i8=False); "
            "o = k.mma(t, p.pack_weights(p.codes_from_q(q, 2)), np.ones((40, 4), np.float32), "
            "n=40, bits=2, zimp=1.5); "
            "w = x.astype(np.float64) @ (q.astype(np.float64) - 1.5).T; "
            "print(k.kernel_name(), float(np.abs(o - w).max() / np.abs(w).max()) < 1e-5)")
    for kernel in KERNELS:
        assert _python(code, LUTRT_KERNEL=kernel)[0] == f"{kernel} True"


def test_wider_codes_fall_back_to_scalar():
    """Codes wider than 4 bits (another packed layout) take lutrt_mma_f32_ref on every kernel."""
    rng = np.random.default_rng(seed("f32-wide"))
    try:
        c = make_case(rng, 3, N, 256, 5, 64, True)
        t = _tables(c, 64, True)
        scalar = _mma("ref", c, t, 5, 1)
    except ValueError as e:  # this build of the runtime stops at 4 bits
        pytest.skip(str(e))
    for kernel in KERNELS:
        out = _mma(kernel, c, t, 5, 2)
        assert np.array_equal(out, scalar), kernel


def test_f32_kernels_clean_under_asan_ubsan(tmp_path):
    """sanitize_driver.c runs every available kernel (1 and 2 threads) on exact-size heap
    buffers; these cases are all f32 tables, so the vpermps kernels are the ones exercised."""
    exe = build.runtime_executable(HERE / "sanitize_driver.c", sanitize=True, extra_cflags=("-O1",))
    rng = np.random.default_rng(17)
    dirs = []
    for i, (m, n, k, bits, group, mirrored, zeros) in enumerate([
            (1, 200, 688, 2, 32, True, True), (5, 70, 256, 3, 256, False, False),
            (9, 40, 128, 1, 64, True, True), (3, 264, 512, 4, 128, False, True),
            (1, 100, 688, 3, 48, True, False)]):
        c = make_case(rng, m, n, k, bits, group, mirrored, zeros=zeros)
        kernels.set_kernel("ref")
        _, want = run_mma(c, bits, group, mirrored, False, 1)
        dirs.append(write_case(tmp_path / f"case{i}", c, m, n, k, bits, group, mirrored, False, 32,
                               zeros, want))
    run_sanitized(exe, dirs, timeout=300)
