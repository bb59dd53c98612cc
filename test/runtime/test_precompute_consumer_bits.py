"""lutrt_mma_desc.consumer_bits (lutrt.h): a precompute whose readers are all per-token/auto
lut.mma calls with B-bit weights in one layout (the precompute's `layout`) skips what those
calls do not read, and nothing else changes:

  * bit-plane readers from lutrt_i8act_min_m(B) tokens on take the int8-activation kernel: only
    the activation section is written, byte-identical to unknown readers' (consumer_bits 0);
    the entries and sums are left as they were (sentinels survive) and tscale marks the
    non-finite scale groups (NaN where the full tscale is NaN, else 0);
  * below that M (or with the path off) they take a LUT kernel: the entries, tscale and sums
    are byte-identical and the activation section is left as it was;
  * code-byte readers read the activation section alone at every M;
  * lut.mma gives a bit-identical output either way, rows with inf / NaN / sums past FLT_MAX
    included; every precompute implementation (ref, avx2, the AVX-512 kernels' row) and the
    multi-threaded row split agree;
  * an out-of-range consumer_bits or layout is an error naming the field.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import kernels, packing

PRECOMPUTE_KERNELS = [k for k in ("ref", "avx2", "avx512", "avx512vbmi") if kernels.kernel_available(k)]
SENTINEL = 0x5A


@pytest.fixture(autouse=True)
def restore():
    kernels.set_one_pass_max_bits(0)  # B-bit and unknown readers then get the same activations
    yield
    kernels.set_kernel(None)
    kernels.set_i8act_min_m(None)
    kernels.set_one_pass_max_bits(None)


def tables(x, bits, group, mirrored, sg, threads, consumer_bits, layout="bit_planes"):
    call = kernels.PrecomputeCall(x, group=group, entries=8 if mirrored else 16, table_i8=True,
                                  scale_group=sg, threads=threads, consumer_bits=consumer_bits,
                                  consumer_layout=layout)
    call.tables.rows[...] = SENTINEL
    call.tables.sums[...] = SENTINEL
    return call()


def weights(rng, bits, mirrored, k, group, n, layout="bit_planes"):
    q = rng.integers(0, 1 << bits, (n, k)).astype(np.uint8)
    codes = packing.codes_from_q(q, bits)
    s = (rng.random((n, k // group)) * 0.02 + 0.01).astype(np.float32)
    z = rng.integers(0, 1 << bits, (n, k // group)).astype(np.float32)
    if mirrored:
        codes = packing.mirror_codes(codes)
        s, z = packing.mirror_scales(s, z, bits)
    # code bytes hold the unsigned codes q, whatever the tables' mirroring
    packed = packing.pack_code_bytes(q) if layout == "code_bytes" else packing.pack_weights(codes)
    return packed, s, z


def rows_of(rng, m, k):
    x = rng.standard_normal((m, k)).astype(np.float32)
    if m == 9:  # non-finite scale groups: inf, NaN, and a table whose sum |x| overflows
        x[1, 5], x[4, 70] = np.inf, np.nan
        x[7, 200:202] = 3e38
    return x


def assert_activations_alone(full, lean, m, threads):
    """lean wrote the activation section alone: full's, byte for byte; tscale the marks."""
    nent = full.entries[0].size
    assert np.array_equal(full.rows[:, nent:], lean.rows[:, nent:]), (m, threads)
    assert (lean.rows[:, :nent] == SENTINEL).all(), (m, threads)
    assert (lean.sums == SENTINEL).all(), (m, threads)
    nan = np.isnan(full.tscale)
    assert nan.any() == (m == 9)
    assert np.array_equal(np.isnan(lean.tscale), nan), (m, threads)
    assert (lean.tscale[~nan] == 0).all(), (m, threads)


def assert_tables_alone(full, lean, m, threads):
    """lean wrote everything but the activation section: full's, byte for byte."""
    nent = full.entries[0].size
    assert np.array_equal(full.rows[:, :nent], lean.rows[:, :nent]), (m, threads)
    assert (lean.rows[:, nent:] == SENTINEL).all(), (m, threads)
    assert np.array_equal(full.tscale, lean.tscale, equal_nan=True)
    assert np.array_equal(full.sums, lean.sums, equal_nan=True)


@pytest.mark.parametrize("kernel", PRECOMPUTE_KERNELS)
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("sg", [4, 32])
def test_sections_skipped_exactly_when_unread(kernel, bits, mirrored, sg):
    if kernels.i8act_min_m(bits) == 0:
        pytest.skip("no int8-activation kernel on this CPU")
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(3)  # a forced kernel turns the path off unless set explicitly
    rng = np.random.default_rng(bits * 10 + mirrored + sg)
    k, group, n = 320, 64, 96
    packed, s, z = weights(rng, bits, mirrored, k, group, n)
    for m in (1, 2, 3, 9):
        x = rows_of(rng, m, k)
        for threads in (1, 2):
            full = tables(x, bits, group, mirrored, sg, threads, 0)  # unknown readers: everything
            lean = tables(x, bits, group, mirrored, sg, threads, bits)
            if m >= 3:  # the int8-activation kernel
                assert_activations_alone(full, lean, m, threads)
            else:  # the LUT kernel
                assert_tables_alone(full, lean, m, threads)
            want = kernels.mma(full, packed, s, z, n=n, bits=bits, threads=threads)
            got = kernels.mma(lean, packed, s, z, n=n, bits=bits, threads=threads)
            assert np.array_equal(want, got, equal_nan=True), (m, threads)


@pytest.mark.parametrize("kernel", PRECOMPUTE_KERNELS)
def test_activations_skipped_when_path_off(kernel):
    """With the int8-activation path off the LUT kernel reads the tables at every M."""
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(0)
    rng = np.random.default_rng(5)
    packed, s, z = weights(rng, 4, False, 128, 32, 40)
    x = rng.standard_normal((16, 128)).astype(np.float32)
    full = tables(x, 4, 32, False, 4, 2, 0)
    lean = tables(x, 4, 32, False, 4, 2, 4)
    assert_tables_alone(full, lean, 16, 2)
    want = kernels.mma(full, packed, s, z, n=40, bits=4, threads=2)
    assert np.array_equal(want, kernels.mma(lean, packed, s, z, n=40, bits=4, threads=2))


@pytest.mark.parametrize("kernel", PRECOMPUTE_KERNELS)
@pytest.mark.parametrize("min_m", [0, 3])
def test_code_byte_readers_read_activations_alone(kernel, min_m):
    """Code-byte weights run the int8-activation formula at every M, the path's threshold (or
    its being off) notwithstanding: the entries and sums are never written."""
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(min_m)
    rng = np.random.default_rng(7 + min_m)
    k, group, n = 320, 32, 40
    packed, s, z = weights(rng, 8, True, k, group, n, "code_bytes")
    for m in (1, 2, 9):
        x = rows_of(rng, m, k)
        for threads in (1, 2):
            full = tables(x, 8, group, True, 4, threads, 0)
            lean = tables(x, 8, group, True, 4, threads, 8, "code_bytes")
            assert_activations_alone(full, lean, m, threads)
            want = kernels.mma(full, packed, s, z, n=n, bits=8, threads=threads, layout="code_bytes")
            got = kernels.mma(lean, packed, s, z, n=n, bits=8, threads=threads, layout="code_bytes")
            assert np.array_equal(want, got, equal_nan=True), (m, threads)


def test_f32_tables_ignore_consumer_bits():
    x = np.random.default_rng(6).standard_normal((8, 64)).astype(np.float32)
    a = kernels.precompute(x, group=32, table_i8=False)
    b = kernels.precompute(x, group=32, table_i8=False, consumer_bits=4)
    assert np.array_equal(a.entries, b.entries)


@pytest.mark.parametrize("value", [-1, 9])
def test_consumer_bits_out_of_range(value):
    x = np.zeros((1, 64), np.float32)
    with pytest.raises(ValueError, match="consumer_bits must be 0..8"):
        kernels.precompute(x, group=32, consumer_bits=value)


def test_consumer_layout_unknown():
    x = np.zeros((1, 64), np.float32)
    with pytest.raises(ValueError, match="layout must be one of bit_planes, code_bytes"):
        kernels.precompute(x, group=32, consumer_bits=4, consumer_layout="planes")
