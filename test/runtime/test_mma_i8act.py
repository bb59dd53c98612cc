"""The large-M int8-activation path of lut.mma (runtime/mma_i8act_avx512amx.c,
runtime/mma_i8act_avx512vnni.c, runtime/mma_i8act_avx2.c and the portable
runtime/mma_i8act_c.c, lutrt.h); every test runs once per kernel this CPU has.

lut.precompute stores each int8 table row's activations in two passes, xq = 128 hi + lo (one
pass, lo = 0, in groups without outliers once lutrt_set_one_pass_max_bits allows it: this module
turns it on for 1..4-bit readers to test that mechanism; test_one_pass_off_by_default checks the
default, two passes everywhere)
(|xq| <= 16256, one scale max|x| / 16256 per activation group of act_group(K, G) activations,
plus the integer sums of hi and lo); from lutrt_i8act_min_m(B) tokens on, lutrt_mma multiplies
them with the unpacked weight codes (two vpdpbusd per word) instead of looking up tables.
Checked here:
  * the activation section: portable and AVX2 precompute agree bit for bit with the numpy
    formula (round half to even, NaN / tiny groups like the tables, hi / lo bounds);
  * the kernel computes exactly that formula (1e-5 of max |out|) for bits 1..8 and ternary,
    mirrored or not, groups 16 / 24 / 32 / 64 / 128 / per-tensor, explicit and implicit zero
    points, partial last weight / activation groups and blocks (odd N, K), 1 and 2 threads;
    every output is within the stated error bound (ascale / 2 per activation in two-pass
    groups, 64.5 ascale in one-pass ones) and the NMSE below the one-pass bound 6.3e-5;
  * the one-pass rule (crest factor <= 3.5: lo = 0, S_lo = -0.0) against its integer form;
    groups with outliers keep two passes (NMSE ~1e-9, every tile's rows with a low pass);
  * W = 0 gives exactly 0, a zero group adds exactly nothing, a row with inf / NaN gives NaN
    like the LUT path;
  * dispatch: the default threshold also under strategy per_token (what lut-tile emits);
    LUTRT_KERNEL / lutrt_set_kernel / strategy vec_lut force the LUT kernels,
    LUTRT_I8ACT_MIN_M and lutrt_set_i8act_min_m override; LUTRT_I8ACT_KERNEL picks a kernel;
  * one pass is off by default (lutrt_one_pass_max_bits() == 0): flat groups keep two passes
    and the error is the two-pass one; $LUTRT_ONE_PASS_MAX_BITS and the setter turn it on;
  * AMX tiles (16 token rows, the rest on VNNI) give the VNNI kernel's outputs bit for bit;
  * weight-block groups (a task runs up to 4 blocks together once A passes 2 MiB): AMX vs
    VNNI and VNNI vs portable bit for bit, 1-3 threads; lutrt_i8act_blocks_per_task;
  * the path runs clean under -fsanitize=address,undefined.
"""

from __future__ import annotations

import numpy as np
import pytest

from lutc.runtime import abi, build, kernels, packing, reference
from test_kernels import (HERE, _bits, _nonfinite_rows, _python, make_case, run_mma, run_sanitized,
                          run_tsan, runnable, seed, tsan_executable, write_case, zero_weight_case)


I8ACT_KERNELS = runnable(kernels.set_i8act_kernel, ("amx", "avx512vnni", "avx2", "c"))


@pytest.fixture(autouse=True, params=I8ACT_KERNELS)
def i8act_kernel(request):
    """Each test on each int8-activation kernel this CPU runs."""
    if request.param != "none":
        kernels.set_i8act_kernel(request.param)
    kernels.set_one_pass_max_bits(4)  # the one-pass mechanism is tested here (off by default)
    yield request.param
    kernels.set_one_pass_max_bits(None)
    kernels.set_kernel(None)
    kernels.set_i8act_min_m(None)
    kernels.set_i8act_kernel(None)


def i8act(c, bits, group, mirrored, threads, scale_group=4, min_m=1, consumer_bits=None):
    """lut.mma with the int8-activation path forced from `min_m` tokens on, on tables built
    for `consumer_bits`-bit readers (default `bits`: one-pass groups where bits <= 4)."""
    kernels.set_i8act_min_m(min_m)
    try:
        return run_mma(c, bits, group, mirrored, True, threads, scale_group,
                       consumer_bits=bits if consumer_bits is None else consumer_bits)
    finally:
        kernels.set_i8act_min_m(None)


def lut(c, bits, group, mirrored, threads, scale_group=4):
    """lut.mma with the int8-activation path off: the per-token LUT kernel."""
    kernels.set_i8act_min_m(0)
    try:
        return run_mma(c, bits, group, mirrored, True, threads, scale_group)
    finally:
        kernels.set_i8act_min_m(None)


def formula(t, c, group):
    """reference.mma_from_acts on the tables' activation section, with the original
    (unsymmetrized) codes, scales and zero points: mirrored calls check the kernel's mapping
    back (s = 2 s', z = (z' + 2^B - 1) / 2) too."""
    return reference.mma_from_acts(t.hi, t.lo, t.ascale, t.shi, t.slo, c["q"], c["s"], c["z"],
                                   c["zimp"], group)


# ---- the activation section of the tables ---------------------------------------------------

@pytest.mark.parametrize("group", [16, 24, 64, 688])
@pytest.mark.parametrize("scale_group", [4, 8])
@pytest.mark.parametrize("entries", [8, 16])
@pytest.mark.parametrize("consumer_bits", [0, 2, 8])
def test_precompute_writes_int8_activations(group, scale_group, entries, consumer_bits):
    x = np.random.default_rng(scale_group + group).standard_t(3, (6, 688)).astype(np.float32)
    x[1, :64] = 0.0  # zero groups: scale 0, codes 0
    x[2, 100] = np.inf  # non-finite group: NaN scale, codes 0
    x[3, :8] = 1e-40  # tiny group
    x[5, 40:44] = 3e38  # |x| sums overflow: the tables' NaN rule
    want = reference.acts_reference(x, group, scale_group, consumer_bits)
    assert reference.act_group(688, group) == abi.act_group(688, group)
    rows = []
    for kernel in ("ref", "avx2"):
        kernels.set_kernel(kernel)
        # unknown readers: every entry and activation written, for the byte comparison below;
        # B-bit readers read the activations alone where the int8-activation path takes every M
        kernels.set_i8act_min_m(0 if consumer_bits == 0 else 1)
        t = kernels.precompute(x, group=group, entries=entries, scale_group=scale_group,
                               consumer_bits=consumer_bits)
        kernels.set_i8act_min_m(None)
        assert t.rows.shape[1] == abi.table_row_bytes(688, entries, True)
        assert one_pass(t.slo).any() == (consumer_bits == 2)
        for got, w in zip((t.hi, t.lo, t.ascale, t.shi, t.slo), want):
            assert np.array_equal(got, w, equal_nan=True)
        assert np.abs(t.lo).max() <= 64 and np.abs(t.hi).max() <= 127
        assert np.isnan(t.ascale).any(axis=1).tolist() == np.isnan(t.tscale).any(axis=1).tolist()
        # the entries too where they are written (consumer_bits 0), else the activations
        rows.append(t.rows.copy() if consumer_bits == 0 else t.rows[:, t.entries[0].size:].copy())
    assert np.array_equal(rows[0], rows[1])


def test_act_group():
    assert [abi.act_group(4096, g) for g in (16, 24, 32, 48, 64, 96, 128, 256, 4096, 8192)] == \
        [16, 24, 32, 48, 64, 96, 128, 128, 128, 128]
    assert abi.act_group(4096, 44) == 44 and abi.act_group(4096, 36) == 36
    assert abi.act_group(4096, 132) == 44 and abi.act_group(4096, 200) == 100


# ---- the kernel -------------------------------------------------------------------------------

CASES = [  # (K, G, explicit zeros): partial last group; per-tensor; g16 / g24 / g64 / g128
    (688, 32, True), (256, 256, False), (1000, 64, True), (1024, 128, False), (1000, 128, True),
    (688, 16, True), (696, 24, False), (1020, 1020, True)]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", CASES)
def test_kernel_matches_formula(bits, mirrored, shape):
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed("i8act", str(bits), mirrored, k, group))
    for m, n in ((17, 200), (6, 37)):
        c = make_case(rng, m, n, k, nbits, group, mirrored, ternary, zeros, dist="student_t3")
        exact = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], group)
        _, looked = lut(c, nbits, group, mirrored, 1)
        for threads in (1, 2):
            t, out = i8act(c, nbits, group, mirrored, threads)
            want = formula(t, c, group)
            assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max(), (m, threads)
        # the stated error bound, element by element: |out - exact| <= sum_k |w[n, k]| e[m, k]
        # with e = ascale / 2 in two-pass groups, 64.5 ascale in one-pass ones (lutrt.h), plus
        # float32 summation
        w = reference.dequantize(c["q"], c["s"], c["z"], c["zimp"], group)
        err = activation_error_bound(t, k, group)
        assert np.all(np.abs(out - exact) <= err @ np.abs(w).T + 2e-6 * np.abs(exact).max())
        nmse = np.mean((out - exact) ** 2) / np.mean(exact**2)
        nmse_lut = np.mean((looked - exact) ** 2) / np.mean(exact**2)
        # groups with a crest factor <= 3.5 round once to int8: expected relative error at most
        # 3.5^2 / (12 * 127^2) = 6.3e-5 per group (measured 1e-6..5e-5 here; per-table int8
        # tables 1e-5..5e-5)
        assert nmse <= 3.5**2 / (12 * 127**2), (nmse, nmse_lut)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", [(2100, 64, True), (1000, 32, False), (688, 16, True),
                                   (696, 24, True), (1020, 1020, False), (1056, 96, True)])
def test_low_bit_kernels_match_c_bit_for_bit(i8act_kernel, bits, mirrored, shape):
    """For codes of at most 4 bits the SIMD kernels (VNNI vpdpbusd; AVX2 vpmaddubsw with int16
    sums) compute the portable kernel's integers and its float epilogue in the same order, so
    the outputs are identical: token counts 1..9 (every tile height and remainder), N not a
    multiple of 32, K over several L1 chunks (2100 activations), activation groups of 16 to 128
    (the AVX2 kernel's int16 sums widened every 8 tables), one-pass and two-pass groups
    mixed within a tile (outliers in some rows' groups), 1 and 2 threads."""
    if i8act_kernel == "c":
        pytest.skip("the reference itself")
    for m, t, out, want in against_kernel("c", i8act_kernel, bits, mirrored, shape,
                                          (1, 2, 3, 4, 5, 9), lambda m: 1 + m % 2):
        assert one_pass(t.slo).any() or m == 1
        assert np.array_equal(out, want), (m, np.abs(out - want).max())


def against_kernel(ref, kernel, bits, mirrored, shape, ms, threads):
    """For each token count m in ms, a case of N = 70 whose even rows have outliers (Student-t
    activations, every 37th x40: their groups keep two passes) and odd rows Gaussian
    activations (their groups, up to 128 wide, mostly take one pass), run on `kernel` with
    threads(m) threads and on `ref` with one:
    yields (m, tables, outputs on kernel, outputs on ref)."""
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed("i8act-vs", ref, kernel, str(bits), mirrored, k, group))
    for m in ms:
        c = make_case(rng, m, 70, k, nbits, group, mirrored, ternary, zeros, dist="student_t3")
        c["x"][1::2] = rng.standard_normal((m // 2, k)).astype(np.float32)
        c["x"][0::2, ::37] *= 40.0
        t, out = i8act(c, nbits, group, mirrored, threads(m))
        kernels.set_i8act_kernel(ref)
        try:
            want = i8act(c, nbits, group, mirrored, 1)[1]
        finally:
            kernels.set_i8act_kernel(kernel)
        yield m, t, out, want


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", [(2100, 64, True), (688, 32, False), (1024, 128, True),
                                   (688, 16, True), (24, 24, False), (1020, 1020, True),
                                   (2112, 96, False), (4100, 4100, True)])
def test_amx_matches_vnni_bit_for_bit(i8act_kernel, bits, mirrored, shape):
    """The AMX kernel runs every 16 token rows on tiles (tdpbsud: exact int32 sums, then the
    VNNI kernel's float epilogue in its order) and the rest on the VNNI tiles, so its outputs
    equal the VNNI kernel's bit for bit: token counts 16, 17, 31, 32, 35, 48 (whole tiles and
    remainders), K over several L1 chunks (2100, 2112, 4100), a partial last activation group
    (688 = 21.5 groups of 32; 1020 and 4100 per-tensor: 7.97 and 32.03 groups of 128; 24 < one
    group), activation groups of 16 (VNNI only), 32 and 96 (tdpbsud steps of 32 activations),
    64 and 128 (steps of 64), one-pass and two-pass groups mixed (outliers), N not a multiple of
    32, 1 to 3 threads."""
    if i8act_kernel != "amx":
        pytest.skip("compares the AMX kernel with the VNNI one")
    for m, _, out, want in against_kernel("avx512vnni", "amx", bits, mirrored, shape,
                                          (16, 17, 31, 32, 35, 48), lambda m: 1 + m % 3):
        assert kernels.i8act_kernel_name() == "amx"
        assert np.array_equal(out, want), (m, np.abs(out - want).max())
        assert np.abs(out).max() > 0


@pytest.mark.parametrize("bits", [2, 4, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("shape", [(4100, 4100, True), (4032, 64, True), (4000, 32, False),
                                   (4096, 128, True)])
def test_block_groups_match_bit_for_bit(i8act_kernel, bits, mirrored, shape):
    """From 2 MiB of A (token rows x K, hi and lo bytes) a task of the AMX and AVX512-VNNI
    kernels runs up to 4 weight blocks together, each row tile of A against every block's
    codes in turn (run_group), summing every output's groups in run_block's order: AMX gives
    the VNNI kernel's outputs and VNNI the portable kernel's (codes of at most 4 bits, as in
    test_low_bit_kernels_match_c_bit_for_bit) bit for bit. 264 token rows (16 AMX tiles and 8
    rows on the VNNI tiles) x K = 4000-4100 (2.1 MiB; per-tensor with a partial last group,
    groups of 32 / 64 / 128), N = 300 (10 blocks, the last partial): 4 blocks a task on 1
    thread (tasks of 4, 4, 2), 2 on 2 threads, one at a time on 3."""
    ref = {"amx": "avx512vnni", "avx512vnni": "c"}.get(i8act_kernel)
    if ref is None:
        pytest.skip("the AVX2 and portable kernels take one block at a time")
    if ref == "c" and bits == 8:
        pytest.skip("8-bit codes: the VNNI kernel is not bitwise the portable one")
    nbits, ternary = _bits(bits)
    k, group, zeros = shape
    rng = np.random.default_rng(seed("i8act-groups", str(bits), mirrored, k, group))
    c = make_case(rng, 264, 300, k, nbits, group, mirrored, ternary, zeros, dist="student_t3")
    c["x"][0::2, ::37] *= 40.0  # outliers: two-pass groups among one-pass ones
    kernels.set_i8act_kernel(ref)
    try:
        want = i8act(c, nbits, group, mirrored, 1)[1]
    finally:
        kernels.set_i8act_kernel(i8act_kernel)
    assert np.abs(want).max() > 0
    for threads, per_task in ((1, 4), (2, 2), (3, 1)):
        assert kernels.i8act_blocks_per_task(264, k, 300, threads) == per_task
        out = i8act(c, nbits, group, mirrored, threads)[1]
        assert kernels.i8act_kernel_name() == i8act_kernel
        assert np.array_equal(out, want), (threads, np.abs(out - want).max())


def test_i8act_blocks_per_task():
    """Groups only where A (M x K x 2 bytes) reaches 2 MiB, up to 4 blocks, while every thread
    keeps two tasks."""
    per_task = kernels.i8act_blocks_per_task
    assert [per_task(512, 2048, 2048, t) for t in (1, 2, 8, 16, 32, 64)] == [4, 4, 4, 2, 1, 1]
    assert per_task(511, 2048, 2048, 1) == 1 and per_task(128, 8192, 2048, 1) == 4
    assert per_task(512, 2048, 96, 1) == 1 and per_task(512, 2048, 128, 1) == 2
    assert per_task(0, 2048, 2048, 1) == 1 and per_task(512, 0, 2048, 1) == 1


def test_env_selects_i8act_kernel(i8act_kernel):
    """$LUTRT_I8ACT_KERNEL picks the int8-activation kernel (code bytes follow it); a name this
    CPU cannot run is reported once on stderr and auto stays; the API wins over the variable."""
    if i8act_kernel != I8ACT_KERNELS[0]:
        pytest.skip("runs once")
    code = ("from lutc.runtime import kernels as k; "
            "print(k.i8act_kernel_name(), k.code_bytes_kernel_name())")
    auto = _python(code)[0].split()[0]
    for name in I8ACT_KERNELS:
        if name in ("none", "c"):
            continue
        assert _python(code, LUTRT_I8ACT_KERNEL=name)[0] == f"{name} {name}"
    out, err = _python(code, LUTRT_I8ACT_KERNEL="sse9")
    assert out.split()[0] == auto and "LUTRT_I8ACT_KERNEL=sse9 is not available" in err
    api = ("from lutc.runtime import kernels as k; k.set_i8act_kernel('c'); "
           "print(k.i8act_kernel_name())")
    assert _python(api, LUTRT_I8ACT_KERNEL=auto)[0] == "c"


def one_pass(slo):
    """The groups marked one-pass: S_lo = -0.0 exactly."""
    return (slo == 0) & np.signbit(slo)


def activation_error_bound(t, k, group):
    """[M, K]: the most |x - x_stored| can be for each activation (lutrt.h): ascale / 2 in a
    two-pass group, 64.5 ascale in a one-pass group (S_lo = -0.0)."""
    ag = abi.act_group(k, group)
    na = -(-k // ag)
    one = one_pass(t.slo[:, :na])
    per_group = np.where(one, 64.5, 0.5) * t.ascale[:, :na].astype(np.float64)
    return np.repeat(per_group, ag, axis=1)[:, :k]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_outlier_groups_keep_two_passes(bits):
    """A group with an outlier (crest factor > 3.5) keeps its low pass: with one outlier in
    every activation group the error is the two-pass one, ~1e-9 (float32 summation included),
    every row marked two-pass, on all tiles' paths (every row with a low pass)."""
    rng = np.random.default_rng(seed("outlier", bits))
    c = make_case(rng, 13, 96, 1024, bits, 32, True)
    c["x"][:, ::32] = 30.0 * np.sign(c["x"][:, ::32])
    exact = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], 32)
    t, out = i8act(c, bits, 32, True, 2)
    assert not one_pass(t.slo[:, :32]).any() and np.abs(t.lo).max() > 0
    nmse = np.mean((out - exact) ** 2) / np.mean(exact**2)
    assert nmse <= 2e-8, nmse


def test_one_pass_rule():
    """Groups of flat activations (crest factor <= 3.5) round once: lo = 0, S_lo = -0.0, and
    the kernel still computes the formula; the rule is the exact integer test of lutrt.h, and
    applies only to tables whose readers have 1..4-bit weights (consumer_bits)."""
    x = np.ones((3, 64), np.float32)
    x[1, 5] = 3.4  # crest sqrt(32) * 3.4 / sqrt(31 + 3.4^2) = 2.95: one pass
    x[2, 5] = 40.0  # crest 5.6: two passes
    x[:, 32:] = np.linspace(-1, 1, 32, dtype=np.float32)  # crest 1.68: one pass
    kernels.set_i8act_min_m(1)  # readers on the int8 activations at every M (3 rows here)
    t = kernels.precompute(x, group=32, entries=8, scale_group=4, consumer_bits=4)
    assert one_pass(t.slo[:, :2]).tolist() == [[True, True], [True, True], [False, True]]
    assert not t.lo[:2].any() and t.lo[2, :32].any() and not t.lo[2, 32:].any()
    for bits in (0, 5, 8):  # unknown or wider readers: two passes everywhere
        t = kernels.precompute(x, group=32, entries=8, scale_group=4, consumer_bits=bits)
        assert not one_pass(t.slo[:, :2]).any() and t.lo[:, 32:].any()
    # the rule on random heavy-tailed rows, against its integer form on xq
    x = np.random.default_rng(3).standard_t(4, (64, 256)).astype(np.float32)
    t = kernels.precompute(x, group=32, entries=8, scale_group=4, consumer_bits=1)
    g = x.reshape(64, 8, 32)
    mx = np.abs(g).max(axis=2, keepdims=True)
    xq = np.rint(g * (np.float32(16256) / mx)).astype(np.int64)
    one = 4 * np.abs(xq).max(axis=2) ** 2 * 32 <= 49 * (xq * xq).sum(axis=2)
    assert 0 < one.mean() < 1
    assert np.array_equal(one_pass(t.slo[:, :8]), one)
    lo = t.lo.reshape(64, 8, 32)
    assert not lo[one].any() and np.array_equal(t.hi.reshape(64, 8, 32), np.rint(xq / 128))


def test_one_pass_off_by_default():
    """By default (lutrt.h: one pass costs perplexity against float compute on the same
    weights) every group keeps two passes, flat ones and 1..4-bit readers included: lo is
    nonzero, no S_lo = -0.0 mark, the error of every activation at most ascale / 2, and the
    kernel's NMSE the two-pass one; $LUTRT_ONE_PASS_MAX_BITS=4 turns one pass on, values
    above 4 clip to 4, the setter overrides the environment."""
    kernels.set_one_pass_max_bits(None)
    assert kernels.one_pass_max_bits() == 0
    kernels.set_i8act_min_m(1)  # readers on the int8 activations at every M
    rng = np.random.default_rng(11)
    x = rng.standard_normal((9, 512)).astype(np.float32)  # Gaussian: nearly all flat groups
    for bits in (1, 2, 4):
        t = kernels.precompute(x, group=64, entries=8, scale_group=4, consumer_bits=bits)
        assert not one_pass(t.slo).any() and t.lo.any(), bits
        step = np.repeat(t.ascale[:, :8].astype(np.float64), 64, axis=1)  # 8 groups of 64
        xs = (128.0 * t.hi.astype(np.float64) + t.lo) * step
        # ascale / 2, plus the float32 roundings of x * (16256 / max) and of ascale (~1e-3 of
        # a step); one pass would leave errors up to 64.5 steps
        assert np.all(np.abs(xs - x) <= 0.505 * step)
    c = make_case(rng, 9, 96, 1024, 2, 64, True, dist="normal")
    exact = reference.matmul_reference(c["x"], c["q"], c["s"], c["z"], c["zimp"], 64)
    t, out = i8act(c, 2, 64, True, 2)
    assert not one_pass(t.slo).any()
    nmse = np.mean((out - exact) ** 2) / np.mean(exact**2)
    assert nmse <= 2e-8, nmse  # one pass on these flat groups gives ~1e-5
    code = ("from lutc.runtime import kernels as k; import numpy as np; "
            "x = np.random.default_rng(1).standard_normal((4, 256)).astype(np.float32); "
            "k.set_i8act_min_m(1); "
            "t = k.precompute(x, group=64, entries=8, scale_group=4, consumer_bits=2); "
            "print(k.one_pass_max_bits(), int(((t.slo == 0) & np.signbit(t.slo)).sum()))")
    assert _python(code)[0] == "0 0"
    got = _python(code, LUTRT_ONE_PASS_MAX_BITS="4")[0].split()
    assert got[0] == "4" and int(got[1]) > 0
    assert _python(code, LUTRT_ONE_PASS_MAX_BITS="9")[0].split()[0] == "4"
    setter_first = code.replace("t = k.precompute", "k.set_one_pass_max_bits(0); t = k.precompute")
    assert _python(setter_first, LUTRT_ONE_PASS_MAX_BITS="4")[0] == "0 0"


@pytest.mark.parametrize("scale_group", [4, 16, 64])
def test_scale_groups_inside_weight_groups(scale_group):
    """Several activation groups per weight group; the table scale group does not matter."""
    rng = np.random.default_rng(seed("sg", scale_group))
    c = make_case(rng, 9, 100, 1024, 4, 128, True)
    t, out = i8act(c, 4, 128, True, 2, scale_group)
    want = formula(t, c, 128)
    assert np.abs(out - want).max() <= 1e-5 * np.abs(want).max()


def test_threshold_switches_paths():
    """Below the threshold the LUT kernel runs, from it on the int8-activation kernel (both
    for strategy auto and per_token, the one lut-tile emits)."""
    rng = np.random.default_rng(5)
    c = make_case(rng, 40, 96, 512, 4, 32, True)
    kernels.set_i8act_min_m(16)
    for m in (15, 16, 17):
        cm = dict(c, x=c["x"][:m])
        _, auto = run_mma(cm, 4, 32, True, True, 2, 4, consumer_bits=4)
        _, per_token = run_mma(cm, 4, 32, True, True, 2, 4, strategy="per_token", consumer_bits=4)
        _, looked = lut(cm, 4, 32, True, 2)
        _, forced = i8act(cm, 4, 32, True, 2)
        kernels.set_i8act_min_m(16)
        assert np.array_equal(auto, forced if m >= 16 else looked), m
        assert np.array_equal(per_token, auto)
        assert not np.array_equal(looked, forced)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_weights_give_exact_zero(bits, mirrored):
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(seed("i8w0", str(bits), mirrored))
    for zeros, (k, group) in ((True, (688, 32)), (False, (256, 256)), (True, (512, 128)),
                              (True, (696, 24))):
        c = zero_weight_case(rng, 20, 200, k, nbits, group, mirrored, ternary, zeros)
        for threads in (1, 2):
            _, out = i8act(c, nbits, group, mirrored, threads)
            assert not out.any(), (zeros, k, threads)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_weights_with_power_of_two_zero_points(bits, mirrored):
    """Zero points 0, 1, 2, 4, ... in weight groups that span several activation groups, where
    the VNNI kernel takes s and z out of the group loop (out += s (F - z C)): W = 0 still gives
    exactly 0, one-pass and two-pass activation groups alike."""
    rng = np.random.default_rng(seed("i8w0p2", bits, mirrored))
    z_values = [0] + [2**e for e in range(bits)]
    for k, group in ((512, 128), (1000, 1000), (768, 256)):
        c = zero_weight_case(rng, 20, 200, k, bits, group, mirrored, False, True, z_values)
        c["x"][::3, ::32] = 40.0  # outliers: every third row keeps two passes
        for threads in (1, 2):
            _, out = i8act(c, bits, group, mirrored, threads)
            assert not out.any(), (k, threads)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("mirrored", [False, True])
def test_zero_groups_contribute_exactly_zero(bits, mirrored):
    rng = np.random.default_rng(seed("i8zg", bits, mirrored))
    k, group, n = 512, 64, 100
    c = make_case(rng, 18, n, k, bits, group, mirrored, False, True)
    z = rng.integers(0, 1 << bits, (n, k // group)).astype(np.float32)
    dead = rng.random((n, k // group)) < 0.5
    q = np.where(np.repeat(dead, group, axis=1), np.repeat(z, group, axis=1), c["q"]).astype(np.uint8)
    codes = packing.codes_from_q(q, bits)
    s_arg, z_arg = c["s"], z
    if mirrored:
        codes = packing.mirror_codes(codes)
        s_arg, z_arg = packing.mirror_scales(c["s"], z, bits)
    c = dict(c, packed=packing.pack_weights(codes), s_arg=s_arg, z_arg=z_arg, zimp_arg=0.0)
    _, out = i8act(c, bits, group, mirrored, 2)
    _, without = i8act(dict(c, s_arg=np.where(dead, 0, s_arg).astype(np.float32)), bits, group,
                       mirrored, 2)
    assert np.array_equal(out, without)


@pytest.mark.parametrize("bits", [2, 3, 8])
@pytest.mark.parametrize("mirrored", [False, True])
def test_nonfinite_activations_poison_their_row(bits, mirrored):
    """Like the LUT path (test_kernels.py): rows with inf / NaN / overflowing |x| sums give NaN
    everywhere, a denormal row exactly 0, finite rows are unaffected."""
    rng = np.random.default_rng(seed("i8nf", bits, mirrored))
    c = make_case(rng, 7, 200, 256, bits, 64, mirrored, False, True)
    c["x"] = _nonfinite_rows(256)
    _, looked = lut(c, bits, 64, mirrored, 2)
    _, out = i8act(c, bits, 64, mirrored, 2)
    assert np.isnan(out[1:6]).all() and np.isfinite(out[0]).all()
    assert np.array_equal(np.isnan(out), np.isnan(looked))
    assert not out[6].any()
    _, alone = i8act(dict(c, x=c["x"][:1]), bits, 64, mirrored, 2)
    assert np.array_equal(alone[0], out[0])


# ---- dispatch -------------------------------------------------------------------------------

def test_default_threshold_and_overrides(i8act_kernel):
    # narrow: B <= 2 on VNNI; B <= 4 (the vpmaddubsw kernel) on AVX2
    if i8act_kernel == "avx2":
        want = {b: abi.I8ACT_MIN_M_AVX2_NARROW if b <= abi.I8ACT_AVX2_BYTES_MAX_BITS
                else abi.I8ACT_MIN_M_AVX2 for b in range(1, 9)}
    else:
        want = {b: abi.I8ACT_MIN_M_NARROW if b <= 2 else abi.I8ACT_MIN_M for b in range(1, 9)}
    assert kernels.i8act_kernel_name() == i8act_kernel
    assert {b: kernels.i8act_min_m(b) for b in range(1, 9)} == want
    kernels.set_i8act_min_m(0)
    assert kernels.i8act_min_m(4) == 0
    kernels.set_i8act_min_m(None)
    lut_kernel = kernels.kernel_name()  # the automatic LUT kernel
    kernels.set_kernel(lut_kernel)  # a forced kernel runs at every M
    assert kernels.i8act_min_m(4) == 0
    kernels.set_i8act_min_m(7)  # unless the threshold is set explicitly
    assert kernels.i8act_min_m(4) == 7
    # a fresh process runs the automatic choice: VNNI, else AVX2 where the LUT kernels are
    # AVX2 too (none on AVX-512 CPUs without VNNI)
    kernels.set_i8act_kernel(None)
    kernels.set_kernel(None)
    kernels.set_i8act_min_m(None)
    auto = kernels.i8act_min_m(4)
    assert auto in (abi.I8ACT_MIN_M, abi.I8ACT_MIN_M_AVX2_NARROW, 0)
    code = "from lutc.runtime import kernels as k; print(k.kernel_name(), k.i8act_min_m(4))"
    assert _python(code, LUTRT_KERNEL=lut_kernel)[0] == f"{lut_kernel} 0"
    assert _python(code, LUTRT_KERNEL="auto")[0] == f"{lut_kernel} {auto}"
    assert _python(code, LUTRT_I8ACT_MIN_M="0")[0] == f"{lut_kernel} 0"
    assert _python(code, LUTRT_I8ACT_MIN_M="3", LUTRT_KERNEL="avx2")[0] == "avx2 3"


def test_unknown_or_unavailable_kernel_is_an_error():
    with pytest.raises(ValueError, match="unknown int8-activation kernel 'avx9'"):
        kernels.set_i8act_kernel("avx9")


def test_vec_lut_and_f32_tables_ignore_the_path():
    """f32 tables and the strategy vec_lut always run the LUT kernels."""
    rng = np.random.default_rng(9)
    c = make_case(rng, 20, 64, 256, 2, 64, False)
    runs = {}
    for min_m in (0, 1):
        kernels.set_i8act_min_m(min_m)
        runs[min_m] = [run_mma(c, 2, 64, False, False, 1)[1],
                       run_mma(c, 2, 64, False, True, 1, strategy="vec_lut")[1]]
    for off, on in zip(runs[0], runs[1]):
        assert np.array_equal(off, on)


# ---- sanitizers -------------------------------------------------------------------------------

# the kernels' weight-block groups (run_group) from any A size, so that the drivers' small
# cases run them: N = 200 and 300 take 3 and 4 blocks a task on 1 thread, 1 and 2 on 2
GROUPS_ALWAYS = ("-DLUTRT_I8ACT_GROUP_MIN_A_BYTES=0",)


def test_clean_under_asan_ubsan(tmp_path):
    exe = build.runtime_executable(HERE / "large_m_sanitize_driver.c", sanitize=True,
                                   extra_cflags=("-O1", *GROUPS_ALWAYS))
    rng = np.random.default_rng(11)
    dirs = []
    for i, (m, n, k, bits, group, mirrored, zeros, sg) in enumerate([
            (17, 200, 688, 2, 32, True, True, 32), (6, 70, 256, 3, 256, False, False, 32),
            (9, 40, 1000, 8, 128, True, True, 64), (20, 96, 512, 4, 128, False, True, 16),
            (35, 300, 1000, 4, 64, True, True, 32)]):
        c = make_case(rng, m, n, k, bits, group, mirrored, zeros=zeros)
        _, want = i8act(c, bits, group, mirrored, 1, sg, consumer_bits=0)  # as the driver's
        dirs.append(write_case(tmp_path / f"case{i}", c, m, n, k, bits, group, mirrored, True, sg,
                               zeros, want))
    run_sanitized(exe, dirs, timeout=300)
    tsan = tsan_executable(HERE / "large_m_sanitize_driver.c", GROUPS_ALWAYS)  # 2 threads
    assert run_tsan(tsan, dirs) == f"OK {len(dirs)} cases"
