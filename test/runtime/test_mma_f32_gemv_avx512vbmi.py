"""The lossless mode's GEMV (runtime/lmma_f32_gemv_avx512vbmi.c, lutrt.h).

At one token with 4-bit weights, lutrt_mma on f32 tables may round each table to an integer
in three balanced base-255 digits (one rounding of 2^-24 of its sub-group's largest entry) and
sum the lookups per digit in int32 (vpermb + vpdpbusd). Checked here:
  * the result is the float matmul of the dequantized weights: against exact float64 within
    2e-6 of max |out| and within 1e-5 of the vpermps kernel on the same tables, plain and
    mirrored tables, explicit and implicit zero points, groups 16 / 32 / 48 / per-tensor (one
    group of up to 1024 tables: sub-groups of 64), a partial last block, 1-3 threads, Gaussian
    and Student-t activations, activations scaled by 1e-30 and 1e30;
  * W = 0 gives exactly 0 and a zero-point group adds exactly nothing;
  * a row with inf / NaN activations gives non-finite outputs, a denormal row exactly 0;
  * dispatch: automatic from 12 weight blocks a thread, vpermps below (bit-identical to it),
    lutrt_set_f32_gemv / LUTRT_F32_GEMV force it on or off, a forced kernel turns it off;
  * it runs clean under -fsanitize=address,undefined.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import build, kernels, reference
from test_kernels import (HERE, _nonfinite_rows, _python, make_case, run_mma, run_sanitized,
                          seed, write_case, zero_weight_case)


def _has_path() -> bool:
    kernels.set_f32_gemv(True)
    try:
        return kernels.f32_gemv_enabled()
    finally:
        kernels.set_f32_gemv(None)


pytestmark = pytest.mark.skipif(not _has_path(), reason="needs AVX-512 VBMI + VNNI")


@pytest.fixture(autouse=True)
def restore_defaults():
    yield
    kernels.set_kernel(None)
    kernels.set_f32_gemv(None)


def gemv(c, group, mirrored, threads, on=True):
    """lut.mma at M = 1 on f32 tables with the digit GEMV forced on (on) or off."""
    kernels.set_f32_gemv(on)
    try:
        return run_mma(c, 4, group, mirrored, False, threads)[1]
    finally:
        kernels.set_f32_gemv(None)


CASES = [(688, 32, True), (4096, 4096, False), (720, 48, True), (512, 16, False), (1000, 1000, True)]


@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", CASES)
@pytest.mark.parametrize("dist", ["normal", "t"])
def test_matches_the_float_matmul(mirrored, shape, dist):
    k, group, zeros = shape
    rng = np.random.default_rng(seed("f32gemv", mirrored, k, dist))
    c = make_case(rng, 1, 200, k, 4, group, mirrored, zeros=zeros, dist=dist)
    exact = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], group)
    scale = np.abs(exact).max()
    tab = gemv(c, group, mirrored, 1, on=False)
    for threads in (1, 2, 3):
        out = gemv(c, group, mirrored, threads)
        assert np.abs(out - exact).max() <= 2e-6 * scale, threads
        assert np.abs(out - tab).max() <= 1e-5 * scale, threads


@pytest.mark.parametrize("factor", [1e-30, 1e30])
def test_extreme_magnitudes(factor):
    """Each sub-group scales to its own largest entry: tiny and huge activations alike."""
    rng = np.random.default_rng(seed("f32gemvmag", factor))
    c = make_case(rng, 1, 96, 512, 4, 32, True)
    c["x"] = (c["x"] * np.float32(factor)).astype(np.float32)
    exact = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], 32)
    out = gemv(c, 32, True, 2)
    assert np.isfinite(out).all()
    assert np.abs(out - exact).max() <= 2e-6 * np.abs(exact).max()


@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_weights_give_exact_zero(mirrored):
    rng = np.random.default_rng(seed("f32gemv0", mirrored))
    for zeros, (k, group) in ((True, (688, 32)), (False, (256, 256)), (True, (1024, 1024))):
        c = zero_weight_case(rng, 1, 200, k, 4, group, mirrored, False, zeros)
        for threads in (1, 2):
            out = gemv(c, group, mirrored, threads)
            assert not out.any(), (zeros, k, np.abs(out).max())


def test_zero_groups_contribute_exactly_zero():
    """Groups whose codes all equal their integer zero point add nothing: the output equals
    that of the same weights with those groups' scales set to 0."""
    from lutc.runtime import packing

    rng = np.random.default_rng(seed("f32gemvg"))
    k, group, n = 512, 64, 100
    c = make_case(rng, 1, n, k, 4, group, True, False, True)
    z = rng.integers(0, 16, (n, k // group)).astype(np.float32)
    dead = rng.random((n, k // group)) < 0.5
    q = np.where(np.repeat(dead, group, axis=1), np.repeat(z, group, axis=1), c["q"]).astype(np.uint8)
    codes = packing.mirror_codes(packing.codes_from_q(q, 4))
    s_arg, z_arg = packing.mirror_scales(c["s"], z, 4)
    c = dict(c, packed=packing.pack_weights(codes), s_arg=s_arg, z_arg=z_arg, zimp_arg=0.0)
    out = gemv(c, group, True, 2)
    without = gemv(dict(c, s_arg=np.where(dead, 0, s_arg).astype(np.float32)), group, True, 2)
    assert np.array_equal(out, without)


@pytest.mark.parametrize("mirrored", [False, True])
def test_nonfinite_and_denormal_rows(mirrored):
    k = 256
    rng = np.random.default_rng(seed("f32gemvnan", mirrored))
    rows = _nonfinite_rows(k)  # finite, inf, all inf, all 3e38, NaN, -inf, denormals
    for r in range(rows.shape[0]):
        c = make_case(rng, 1, 100, k, 4, 32, mirrored)
        c["x"] = rows[r:r + 1]
        out = gemv(c, 32, mirrored, 2)
        if r in (1, 2, 4, 5):
            assert not np.isfinite(out).any(), r
        elif r == 6:
            assert not out.any()
        else:  # finite rows, 3e38 included (its tables hold finite f32 sums or inf)
            tab = gemv(c, 32, mirrored, 2, on=False)
            assert np.array_equal(np.isfinite(out), np.isfinite(tab)), r


def test_dispatch():
    rng = np.random.default_rng(seed("f32gemvd"))
    small = make_case(rng, 1, 64, 256, 4, 32, True)    # 2 blocks: below the automatic bound
    large = make_case(rng, 1, 1024, 256, 4, 32, True)  # 32 blocks: above it at 1 and 2 threads
    for c in (small, large):
        kernels.set_f32_gemv(None)
        auto = run_mma(c, 4, 32, True, False, 2)[1]
        off = gemv(c, 32, True, 2, on=False)
        on = gemv(c, 32, True, 2)
        if c is small:
            assert np.array_equal(auto, off) and not np.array_equal(on, off)
        else:
            assert np.array_equal(auto, on) and not np.array_equal(on, off)
    kernels.set_kernel("avx512")  # a forced kernel: off, unless set explicitly
    assert not kernels.f32_gemv_enabled()
    assert np.array_equal(run_mma(large, 4, 32, True, False, 2)[1], gemv(large, 32, True, 2, on=False))
    kernels.set_f32_gemv(True)
    assert kernels.f32_gemv_enabled()
    code = "from lutc.runtime import kernels; print(kernels.f32_gemv_enabled())"
    assert _python(code)[0] == "True"
    assert _python(code, LUTRT_F32_GEMV="0")[0] == "False"
    assert _python(code, LUTRT_KERNEL="avx512")[0] == "False"
    assert _python(code, LUTRT_KERNEL="avx512", LUTRT_F32_GEMV="1")[0] == "True"


def test_clean_under_asan_ubsan(tmp_path):
    exe = build.runtime_executable(HERE / "large_m_sanitize_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    rng = np.random.default_rng(13)
    dirs = []
    for i, (n, k, group, mirrored, zeros) in enumerate([
            (200, 688, 32, True, True), (70, 256, 256, False, False), (40, 4096, 4096, True, False),
            (96, 520, 40, False, True)]):
        c = make_case(rng, 1, n, k, 4, group, mirrored, zeros=zeros)
        want = gemv(c, group, mirrored, 1)
        dirs.append(write_case(tmp_path / f"case{i}", c, 1, n, k, 4, group, mirrored, False, 32,
                               zeros, want))
    run_sanitized(exe, dirs, timeout=300)
