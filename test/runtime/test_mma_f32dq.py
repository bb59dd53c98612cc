"""The lossless mode's large-M path of lut.mma (runtime/mma_f32dq_avx512.c and
mma_f32dq_avx2.c, lutrt.h), each test on each of the two kernels this CPU runs.

From lutrt_f32dq_min_m(B) tokens on, lutrt_mma on f32 tables rebuilds the activations from the
tables and multiplies them with the dequantized weights w = s (q - z) in f32 (FMA) instead of
looking the tables up. Checked here:
  * the result is the float matmul of the dequantized weights: against exact float64
    (dequantize-then-matmul) within 2e-6 of max |out|, and within 1e-5 of the f32-table kernel
    on the same tables, for bits 1..8 and ternary, plain and mirrored tables, explicit and
    implicit zero points, groups 16 / 32 / 48 / per-tensor, partial last groups and blocks,
    M around the 12-row tile (1, 5, 12, 13, 30), 1 and 2 threads;
  * W = 0 gives exactly 0 and a zero-point group adds exactly nothing (w = 0 exactly);
  * a row with inf / NaN activations gives non-finite outputs in that row only;
  * dispatch: the default thresholds (B <= 2: 32, 3..4: 8, > 4: 1 token), a forced kernel or
    strategy vec_lut turns the path off, lutrt_set_f32dq_min_m and LUTRT_F32DQ_MIN_M override;
  * the AVX-512 and AVX2 kernels give bit-identical outputs (where the CPU runs both);
  * the path runs clean under -fsanitize=address,undefined.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import abi, build, kernels, packing, reference
from test_kernels import (HERE, _bits, _nonfinite_rows, _python, make_case, run_mma, run_sanitized,
                          runnable, seed, write_case, zero_weight_case)


F32DQ_KERNELS = runnable(kernels.set_f32dq_kernel, ("avx512", "avx2"))
pytestmark = pytest.mark.skipif(not F32DQ_KERNELS, reason="needs AVX-512BW or AVX2 + FMA")


@pytest.fixture(autouse=True, params=F32DQ_KERNELS or ["none"])
def f32dq_kernel(request):
    """Each test on each f32-dequantize kernel this CPU runs."""
    if request.param != "none":
        kernels.set_f32dq_kernel(request.param)
    yield request.param
    kernels.set_kernel(None)
    kernels.set_f32dq_min_m(None)
    kernels.set_f32dq_kernel(None)


def dq(c, bits, group, mirrored, threads, on=True):
    """lut.mma on f32 tables with the dequantize path from 1 token on (on) or off."""
    kernels.set_f32dq_min_m(1 if on else 0)
    try:
        return run_mma(c, bits, group, mirrored, False, threads)
    finally:
        kernels.set_f32dq_min_m(None)


CASES = [(688, 32, True), (256, 256, False), (720, 48, True), (512, 16, False)]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", CASES)
def test_matches_the_float_matmul(bits, mirrored, shape):
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed("dq", str(bits), mirrored, k))
    for m in (1, 5, 12, 13, 30):
        c = make_case(rng, m, 200, k, nbits, group, mirrored, ternary, zeros)
        exact = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], group)
        scale = np.abs(exact).max()
        for threads in (1, 2):
            _, out = dq(c, nbits, group, mirrored, threads)
            assert np.abs(out - exact).max() <= 2e-6 * scale, (m, threads)
        if nbits <= 4:  # the f32-table SIMD kernels (wider codes: the slow scalar one)
            _, tab = dq(c, nbits, group, mirrored, 2, on=False)
            assert np.abs(out - tab).max() <= 1e-5 * scale, m


@pytest.mark.parametrize("bits", [2, 4, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_weights_give_exact_zero(bits, mirrored):
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("dq0", str(bits), mirrored))
    for zeros, (k, group) in ((True, (688, 32)), (False, (256, 256))):
        c = zero_weight_case(rng, 13, 200, k, nbits, group, mirrored, ternary, zeros)
        _, out = dq(c, nbits, group, mirrored, 2)
        assert not out.any(), (zeros, np.abs(out).max())


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_zero_groups_contribute_exactly_zero(bits):
    rng = np.random.default_rng(seed("dqg", bits))
    k, group, n = 512, 64, 100
    c = make_case(rng, 9, n, k, bits, group, True, False, True)
    z = rng.integers(0, 1 << bits, (n, k // group)).astype(np.float32)
    dead = rng.random((n, k // group)) < 0.5
    q = np.where(np.repeat(dead, group, axis=1), np.repeat(z, group, axis=1), c["q"]).astype(np.uint8)
    codes = packing.mirror_codes(packing.codes_from_q(q, bits))
    s_arg, z_arg = packing.mirror_scales(c["s"], z, bits)
    c = dict(c, packed=packing.pack_weights(codes), s_arg=s_arg, z_arg=z_arg, zimp_arg=0.0)
    _, out = dq(c, bits, group, True, 2)
    _, without = dq(dict(c, s_arg=np.where(dead, 0, s_arg).astype(np.float32)), bits, group, True, 2)
    assert np.array_equal(out, without)


@pytest.mark.parametrize("mirrored", [False, True])
def test_nonfinite_rows_stay_in_their_row(mirrored):
    k = 256
    rng = np.random.default_rng(seed("dqnan", mirrored))
    c = make_case(rng, 7, 100, k, 4, 32, mirrored)
    c["x"] = _nonfinite_rows(k)  # rows 1, 2, 4, 5 hold inf / NaN; 0 and 6 are finite
    _, out = dq(c, 4, 32, mirrored, 2)
    # (row 3, all 3e38, is finite: where the tables hold overflowed sums this path computes
    # the float matmul of the activations themselves)
    assert (~np.isfinite(out[[1, 2, 4, 5]])).all() and np.isfinite(out[[0, 6]]).all()


def test_dispatch_thresholds_and_overrides():
    assert kernels.f32dq_min_m(2) == abi.F32DQ_MIN_M_NARROW
    assert kernels.f32dq_min_m(4) == abi.F32DQ_MIN_M
    assert kernels.f32dq_min_m(8) == abi.F32DQ_MIN_M_WIDE
    kernels.set_f32dq_min_m(5)
    assert kernels.f32dq_min_m(2) == kernels.f32dq_min_m(8) == 5
    kernels.set_f32dq_min_m(None)
    kernels.set_kernel("avx2")  # a forced kernel runs at every M
    assert kernels.f32dq_min_m(4) == 0
    code = "from lutc.runtime import kernels; print(kernels.f32dq_min_m(4))"
    assert _python(code, LUTRT_F32DQ_MIN_M="3")[0] == "3"
    assert _python(code, LUTRT_F32DQ_MIN_M="0")[0] == "0"
    assert _python(code, LUTRT_KERNEL="ref")[0] == "0"


def test_kernel_choice(f32dq_kernel):
    assert kernels.f32dq_kernel_name() == f32dq_kernel
    with pytest.raises(ValueError, match="unknown f32-dequantize kernel"):
        kernels.set_f32dq_kernel("avx9")
    kernels.set_f32dq_kernel(None)
    assert kernels.f32dq_kernel_name() == F32DQ_KERNELS[0]  # auto: the widest


@pytest.mark.skipif(len(F32DQ_KERNELS) < 2, reason="needs a CPU that runs both kernels")
@pytest.mark.parametrize("bits", [2, 4, 8, "ternary"])
def test_avx512_and_avx2_kernels_are_bit_identical(bits):
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("dqx", str(bits)))
    for m, (k, group, zeros) in ((13, CASES[0]), (7, CASES[2]), (30, CASES[1])):
        c = make_case(rng, m, 77, k, nbits, group, True, ternary, zeros)
        outs = []
        for name in F32DQ_KERNELS:
            kernels.set_f32dq_kernel(name)
            outs.append(dq(c, nbits, group, True, 2)[1])
        assert np.array_equal(outs[0], outs[1]), (m, k)


def test_the_path_changes_the_result_only_by_rounding():
    """It is taken: outputs differ from the f32-table kernel's in the last bits only."""
    rng = np.random.default_rng(3)
    c = make_case(rng, 16, 200, 688, 4, 32, True)
    _, on = dq(c, 4, 32, True, 1)
    _, off = dq(c, 4, 32, True, 1, on=False)
    assert not np.array_equal(on, off)
    assert np.abs(on - off).max() <= 1e-5 * np.abs(off).max()


def test_clean_under_asan_ubsan(tmp_path):
    exe = build.runtime_executable(HERE / "large_m_sanitize_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    rng = np.random.default_rng(12)
    dirs = []
    for i, (m, n, k, bits, group, mirrored, zeros) in enumerate([
            (17, 200, 688, 2, 32, True, True), (6, 70, 256, 3, 256, False, False),
            (13, 40, 1000, 8, 40, True, True), (25, 96, 512, 4, 128, False, True)]):
        c = make_case(rng, m, n, k, bits, group, mirrored, zeros=zeros)
        _, want = dq(c, bits, group, mirrored, 1)
        dirs.append(write_case(tmp_path / f"case{i}", c, m, n, k, bits, group, mirrored, False, 32,
                               zeros, want))
    run_sanitized(exe, dirs, timeout=300)
