"""lut.mma's per-call prologue of per-table int8 tables (jt == 1): the AVX2 version
(runtime/table_prologue_avx2.c) equals the portable one (mma.c) bit for bit, under
AddressSanitizer and UBSan, on NaN / zero / tiny / huge / subnormal scales, partial grid
blocks, plain and mirrored tables (table_prologue_driver.c); and lut.mma outputs through it
are unchanged on the AVX-512 kernels that read its multipliers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lutc.runtime import build, kernels, packing, reference
from test_kernels import run_driver

HERE = Path(__file__).resolve().parent


def test_avx2_prologue_equals_portable_under_sanitizers():
    exe = build.runtime_executable(HERE / "table_prologue_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    stdout = run_driver(exe, timeout=120)
    if "no AVX2" in stdout:
        pytest.skip("no AVX2 on this CPU")
    assert stdout == "cases 400"


@pytest.mark.parametrize("kernel", [k for k in ("avx512", "avx512vbmi") if kernels.kernel_available(k)])
@pytest.mark.parametrize("k", [256, 1000])  # J = 64 (whole grid blocks), 250 (a partial one)
def test_per_table_mma_through_prologue_matches_reference(kernel, k):
    """GEMV and a small GEMM on per-table tables, with a row of zeros, a tiny row and a NaN
    row (its outputs NaN, the others finite and within 2e-2 of the float reference)."""
    rng = np.random.default_rng(k)
    n, bits, group = 96, 4, 8 if k == 1000 else 32
    q = rng.integers(0, 1 << bits, (n, k)).astype(np.uint8)
    s = (rng.random((n, k // group)) * 0.02 + 0.01).astype(np.float32)
    z = (rng.random((n, k // group)) * ((1 << bits) - 1)).astype(np.float32)
    codes = packing.mirror_codes(packing.codes_from_q(q, bits))
    s_sym, z_sym = packing.mirror_scales(s, z, bits)
    packed = packing.pack_weights(codes)
    x = rng.standard_normal((5, k)).astype(np.float32)
    x[1] = 0.0
    x[2] *= 1e-32
    x[3, 7] = np.nan
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(0)
    try:
        for m in (1, 5):
            t = kernels.precompute(x[:m], group=group, entries=8, table_i8=True, scale_group=4)
            out = kernels.mma(t, packed, s_sym, z_sym, n=n, bits=bits, zimp=0.0, threads=2)
            want = reference.matmul_reference(x[:m], q, s, z, 0.0, group)
            ok = [r for r in range(m) if r != 3]
            assert np.isfinite(out[ok]).all()
            err = np.abs(out[ok] - want[ok]).max() / np.abs(want[ok]).max()
            assert err <= 2e-2, err
            assert (out[1] == 0).all() if m > 1 else True
            if m > 3:
                assert np.isnan(out[3]).all()
    finally:
        kernels.set_kernel(None)
        kernels.set_i8act_min_m(None)
