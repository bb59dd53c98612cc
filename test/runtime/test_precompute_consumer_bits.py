"""lutrt_mma_desc.consumer_bits (lutrt.h): a precompute whose readers are all per-token/auto
lut.mma calls with B-bit weights skips the table entries exactly when those calls take the
int8-activation kernel (M >= lutrt_i8act_min_m(B) > 0), and nothing else changes:

  * below the threshold (or with the path off) the rows are byte-identical to consumer_bits 0;
  * from the threshold on only the activation section is written, byte-identical: the entries
    and sums are left as they were (sentinels survive) and tscale marks the non-finite scale
    groups (NaN where the full tscale is NaN, else 0); lut.mma gives a bit-identical output,
    rows with inf / NaN / sums past FLT_MAX included;
  * every precompute implementation (ref, avx2, the AVX-512 kernels' row) and the
    multi-threaded row split agree;
  * an out-of-range consumer_bits is an error naming the field.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import kernels, packing

PRECOMPUTE_KERNELS = [k for k in ("ref", "avx2", "avx512", "avx512vbmi") if kernels.kernel_available(k)]
SENTINEL = 0x5A


@pytest.fixture(autouse=True)
def restore():
    yield
    kernels.set_kernel(None)
    kernels.set_i8act_min_m(None)


def tables(x, bits, group, mirrored, sg, threads, consumer_bits):
    call = kernels.PrecomputeCall(x, group=group, entries=8 if mirrored else 16, table_i8=True,
                                  scale_group=sg, threads=threads, consumer_bits=consumer_bits)
    call.tables.rows[...] = SENTINEL
    call.tables.sums[...] = SENTINEL
    return call()


@pytest.mark.parametrize("kernel", PRECOMPUTE_KERNELS)
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("sg", [4, 32])
def test_entries_skipped_exactly_when_unread(kernel, bits, mirrored, sg):
    if kernels.i8act_min_m(bits) == 0:
        pytest.skip("no int8-activation kernel on this CPU")
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(3)  # a forced kernel turns the path off unless set explicitly
    rng = np.random.default_rng(bits * 10 + mirrored + sg)
    k, group, n = 320, 64, 96
    q = rng.integers(0, 1 << bits, (n, k)).astype(np.uint8)
    codes = packing.codes_from_q(q, bits)
    s = (rng.random((n, k // group)) * 0.02 + 0.01).astype(np.float32)
    z = rng.integers(0, 1 << bits, (n, k // group)).astype(np.float32)
    if mirrored:
        codes = packing.mirror_codes(codes)
        s, z = packing.mirror_scales(s, z, bits)
    packed = packing.pack_weights(codes)
    for m in (1, 2, 3, 9):
        x = rng.standard_normal((m, k)).astype(np.float32)
        if m == 9:  # non-finite scale groups: inf, NaN, and a table whose sum |x| overflows
            x[1, 5], x[4, 70] = np.inf, np.nan
            x[7, 200:202] = 3e38
        for threads in (1, 2):
            # the same readers (one-pass activation groups where bits <= 4), every entry written
            kernels.set_i8act_min_m(0)
            full = tables(x, bits, group, mirrored, sg, threads, bits)
            kernels.set_i8act_min_m(3)
            lean = tables(x, bits, group, mirrored, sg, threads, bits)
            nent = full.entries[0].size
            assert np.array_equal(full.rows[:, nent:], lean.rows[:, nent:])  # activations
            if m >= 3:
                assert (lean.rows[:, :nent] == SENTINEL).all(), (m, threads)
                assert (lean.sums == SENTINEL).all(), (m, threads)
                nan = np.isnan(full.tscale)
                assert nan.any() == (m == 9)
                assert np.array_equal(np.isnan(lean.tscale), nan), (m, threads)
                assert (lean.tscale[~nan] == 0).all(), (m, threads)
            else:
                assert np.array_equal(full.rows, lean.rows), (m, threads)
                assert np.array_equal(full.tscale, lean.tscale)
                assert np.array_equal(full.sums, lean.sums)
            want = kernels.mma(full, packed, s, z, n=n, bits=bits, threads=threads)
            got = kernels.mma(lean, packed, s, z, n=n, bits=bits, threads=threads)
            assert np.array_equal(want, got, equal_nan=True), (m, threads)


@pytest.mark.parametrize("kernel", PRECOMPUTE_KERNELS)
def test_entries_written_when_path_off(kernel):
    """With the int8-activation path off the LUT kernel reads the entries at every M."""
    kernels.set_kernel(kernel)
    kernels.set_i8act_min_m(0)
    x = np.random.default_rng(5).standard_normal((16, 128)).astype(np.float32)
    full = tables(x, 4, 32, False, 4, 2, 0)
    lean = tables(x, 4, 32, False, 4, 2, 4)
    nent = full.entries[0].size
    assert np.array_equal(full.rows[:, :nent], lean.rows[:, :nent])  # the activation sections
    # differ: 4-bit readers allow one-pass groups


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
