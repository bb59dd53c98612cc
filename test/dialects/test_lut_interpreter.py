"""The interpreter's numpy semantics of the lut ops (dialects/lut_semantics.py): batch rows,
mirrored tables, int8 tables. The lowering's end-to-end numbers are in
test/passes/test_lower_mpgemm.py."""

import numpy as np

from lutc.dialects import lut_semantics as sem
from lutc.runtime import packing


def test_batch_rows_are_independent():
    """Row m of a batched mma equals the GEMV of row m alone (a batch>1 bug guard)."""
    rng = np.random.default_rng(1)
    q = rng.integers(0, 4, (32, 64)).astype(np.uint8)
    s = rng.standard_normal((32, 1)).astype(np.float32)
    planes = packing.codes_from_q(q, 2)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    t, sums = sem.precompute(x, 16, 64)
    full = sem.mma(t, sums, planes, s, None, 64, 2.0, False)
    for row in range(5):
        t1, s1 = sem.precompute(x[row:row + 1], 16, 64)
        np.testing.assert_allclose(full[row], sem.mma(t1, s1, planes, s, None, 64, 2.0, False)[0],
                                   rtol=1e-6)


def test_mirrored_tables_are_odd():
    """T(p) = -T(~p): the 8 stored entries and their negations give all 16 ±1 patterns."""
    x = np.random.default_rng(2).standard_normal((1, 8)).astype(np.float32)
    t8, _ = sem.precompute(x, 8, 8)
    signs = 2.0 * (((np.arange(16)[:, None] >> np.arange(4)) & 1)) - 1.0
    full = x.reshape(2, 4).astype(np.float64) @ signs.T  # [T, 16]
    codes = packing.mirror_codes(np.arange(16, dtype=np.uint8))
    looked = np.where(codes & 8, -t8.entries[0][:, codes & 7], t8.entries[0][:, codes & 7])
    np.testing.assert_allclose(looked, full, rtol=1e-6, atol=1e-6)


def test_int8_tables_nmse():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 512)).astype(np.float32)
    q = rng.integers(0, 4, (64, 512)).astype(np.uint8)
    s = rng.standard_normal((64, 8)).astype(np.float32)
    planes = packing.codes_from_q(q, 2)
    tf, sums = sem.precompute(x, 16, 64)
    ti, _ = sem.precompute(x, 16, 64, quantized=True, scale_group=32)
    exact = sem.mma(tf, sums, planes, s, None, 64, 2.0, False)
    approx = sem.mma(ti, sums, planes, s, None, 64, 2.0, False)
    nmse = np.mean((approx - exact) ** 2) / np.mean(exact**2)
    assert nmse <= 5e-4
    assert ti.entries.dtype == np.int8 and np.abs(ti.entries).max() <= 127
