"""lut.mma on code-byte weights (lutrt.h LUTRT_LAYOUT_CODE_BYTES: one byte per unsigned code,
block-major [NB][K/4][2][16][4]), which every int8-activation kernel reads in place at every M
(mma_i8act_avx512amx.c, mma_i8act_avx512vnni.c, mma_i8act_avx2.c, mma_i8act_c.c). Checked on every kernel this CPU
runs, the portable C one included:
  * packing: pack_code_bytes / unpack_code_bytes / q_from_planes round trips;
  * the same integers as bit planes: for one kernel, code bytes give bit for bit the output the
    same kernel gives from the bit planes (int8-activation path forced), for B = 1..8 and
    ternary, mirrored or not, any M (1 included: no table is read), partial blocks and groups,
    1-3 threads; the C kernel equals the VNNI one bit for bit;
  * W = 0 gives exactly 0 at M = 1; rows with inf / NaN give NaN;
  * descriptor errors: an unknown layout, code bytes with f32 tables, a short weight buffer;
  * the path runs clean under -fsanitize=address,undefined.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import build, kernels, packing, reference
from test_kernels import (HERE, _bits, _nonfinite_rows, make_case, run_sanitized, seed,
                          write_case, zero_weight_case)
from test_mma_i8act import I8ACT_KERNELS


KERNELS = I8ACT_KERNELS  # every int8-activation kernel this CPU runs, the C one included


@pytest.fixture(autouse=True, params=KERNELS)
def i8act_kernel(request):
    kernels.set_i8act_kernel(request.param)
    assert kernels.code_bytes_kernel_name() == request.param
    yield request.param
    kernels.set_i8act_min_m(None)
    kernels.set_i8act_kernel(None)


def code_bytes_case(c):
    return dict(c, bytes=packing.pack_code_bytes(c["q"]))


def tables(c, group, mirrored, scale_group=4):
    return kernels.precompute(c["x"], group=group, entries=8 if mirrored else 16,
                              scale_group=scale_group)


def with_code_bytes(c, t, bits, threads):
    return kernels.mma(t, c["bytes"], c["s_arg"], c["z_arg"], n=c["q"].shape[0], bits=bits,
                       zimp=c["zimp_arg"], threads=threads, layout="code_bytes")


def with_planes(c, t, bits, threads):
    """The same kernel on bit planes (the int8-activation path forced from one token on)."""
    kernels.set_i8act_min_m(1)
    try:
        return kernels.mma(t, c["packed"], c["s_arg"], c["z_arg"], n=c["q"].shape[0], bits=bits,
                           zimp=c["zimp_arg"], threads=threads)
    finally:
        kernels.set_i8act_min_m(None)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("n", [1, 32, 70])
def test_packing_round_trips(bits, n):
    rng = np.random.default_rng(seed("cbpack", bits, n))
    q = rng.integers(0, 1 << bits, (n, 36)).astype(np.uint8)
    packed = packing.pack_code_bytes(q)
    assert packed.size == packing.packed_nbytes(bits, n, 36, "code_bytes") == -(-n // 32) * 9 * 128
    assert np.array_equal(packing.unpack_code_bytes(packed, n, 36), q)
    assert packed.reshape(-1, 9, 2, 16, 4)[0, 2, 1, 3, 1] == (q[19, 9] if n > 19 else 0)
    for mirrored in (False, True):
        assert np.array_equal(packing.q_from_planes(packing.bit_planes(q, bits, mirrored), mirrored), q)


CASES = [(1, 70, 688, 32, True), (1, 33, 256, 256, False), (2, 40, 1000, 64, True),
         (5, 96, 512, 128, False), (17, 200, 696, 24, True), (3, 1, 36, 12, True),
         (20, 70, 688, 32, True)]  # 16 rows on AMX tiles where the CPU has them


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_code_bytes_equal_bit_planes_on_the_same_kernel(bits, mirrored, i8act_kernel):
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("cb", str(bits), mirrored))
    for m, n, k, group, zeros in CASES:
        c = code_bytes_case(make_case(rng, m, n, k, nbits, group, mirrored, ternary, zeros,
                                      dist="student_t3"))
        t = tables(c, group, mirrored)
        planes = with_planes(c, t, nbits, 1)
        want = reference.mma_from_acts(t.hi, t.lo, t.ascale, t.shi, t.slo, c["q"], c["s"], c["z"],
                                       c["zimp"], group)
        assert np.abs(planes - want).max() <= 1e-5 * np.abs(want).max()
        for threads in (1, 2, 3):
            out = with_code_bytes(c, t, nbits, threads)
            assert np.array_equal(out, planes), (m, n, k, group, threads)
        if i8act_kernel in ("amx", "avx512vnni") or (i8act_kernel == "avx2" and nbits <= 4):
            # the VNNI and AMX kernels, and the AVX2 one on <= 4-bit codes, compute the
            # portable one's integers and float epilogue in its order
            kernels.set_i8act_kernel("c")
            assert np.array_equal(with_code_bytes(c, t, nbits, 2), planes), (m, n, k)
            kernels.set_i8act_kernel(i8act_kernel)


@pytest.mark.parametrize("bits", [4, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_weights_give_exact_zero_at_one_token(bits, mirrored):
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("cbw0", str(bits), mirrored))
    for zeros, (k, group) in ((True, (688, 32)), (False, (256, 256)), (True, (696, 24))):
        c = code_bytes_case(zero_weight_case(rng, 1, 70, k, nbits, group, mirrored, ternary, zeros))
        assert not with_code_bytes(c, tables(c, group, mirrored), nbits, 2).any(), (zeros, k)


@pytest.mark.parametrize("mirrored", [False, True])
def test_nonfinite_activations_poison_their_row(mirrored):
    rng = np.random.default_rng(seed("cbnf", mirrored))
    c = code_bytes_case(make_case(rng, 7, 100, 256, 8, 64, mirrored))
    c["x"] = _nonfinite_rows(256)
    out = with_code_bytes(c, tables(c, 64, mirrored), 8, 2)
    assert np.isnan(out[1:6]).all() and np.isfinite(out[0]).all() and not out[6].any()


def test_bad_descriptors_are_errors():
    rng = np.random.default_rng(3)
    c = code_bytes_case(make_case(rng, 2, 40, 64, 8, 32, True))
    t = tables(c, 32, True)
    with pytest.raises(ValueError, match="layout must be one of"):
        kernels.mma(t, c["bytes"], c["s_arg"], n=40, bits=8, layout="nibbles")
    with pytest.raises(ValueError, match=r"pack_code_bytes of \[40, 64\] codes"):
        kernels.mma(t, c["bytes"][:-4], c["s_arg"], n=40, bits=8, layout="code_bytes")
    f32 = kernels.precompute(c["x"], group=32, entries=8, table_i8=False)
    with pytest.raises(ValueError, match="code-byte layout needs int8 tables"):
        kernels.mma(f32, c["bytes"], c["s_arg"], n=40, bits=8, layout="code_bytes")
    desc = kernels._desc(2, 40, 64, 8, 32, True, True, 4)
    desc.layout = 7
    assert kernels.library().lutrt_mma(desc, t.rows.ctypes.data, t.tscale.ctypes.data,
                                       t.sums.ctypes.data, c["bytes"].ctypes.data,
                                       packing.pack_scales(c["s_arg"]).ctypes.data, None,
                                       np.empty((2, 40), np.float32).ctypes.data) != 0
    assert "layout must be 0 (bit planes) or 1 (code bytes), got 7" in \
        kernels.library().lutrt_last_error().decode()


def test_clean_under_asan_ubsan(tmp_path, i8act_kernel):
    if i8act_kernel != KERNELS[0]:
        pytest.skip("the driver runs every kernel itself")
    exe = build.runtime_executable(HERE / "large_m_sanitize_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    rng = np.random.default_rng(12)
    dirs = []
    for i, (m, n, k, bits, group, mirrored, zeros) in enumerate([
            (1, 70, 688, 8, 32, True, False), (3, 33, 256, 5, 256, False, True),
            (6, 200, 1000, 8, 128, True, True)]):
        c = code_bytes_case(make_case(rng, m, n, k, bits, group, mirrored, zeros=zeros))
        want = with_code_bytes(c, tables(c, group, mirrored), bits, 1)
        d = write_case(tmp_path / f"case{i}", c, m, n, k, bits, group, mirrored, True, 4, zeros,
                       want)
        c["bytes"].tofile(tmp_path / f"case{i}" / "code_bytes.bin")
        dirs.append(d)
    run_sanitized(exe, dirs, timeout=300)
