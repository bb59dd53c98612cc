"""lutrt attention (runtime/attention.c) against a float64 numpy reference.

lutrt_attention_kv: S = 1 (decode) and S in {3, 17, 64} query rows at start 0, 5, 100;
H/KVH in {9/3, 8/8, 4/1, 6/2}; D in {64, 48, 8}; sliding window and softcap on and off;
1..4 threads; every kernel this CPU runs (ref, avx2, avx512). lutrt_attention_kv_f16 (f16
cache): the same cases against the reference on the f16-rounded cache, the appended rows equal
to numpy's float16 rounding bit for bit (ties, overflow, subnormals, -0, inf, NaN), head dims
whose key block is under 8 rows, and head_dim > 4096 rejected. The cache rows start..start+S-1
must equal k_new/v_new and every other row must be untouched. Long contexts with several
threads take the split-K path (and its merge, with splits that see no key). lutrt_attention:
causal 0/1/2 with Sq < Skv and Sq > Skv, an additive mask with -inf entries, fully masked rows
(zeros), a sliding window. Error returns. A sanitizer build (ASan + UBSan) runs a few cases.
Tolerance: max |out - ref| <= 1e-5 max |ref|.
"""

from __future__ import annotations

import ctypes
import zlib
from pathlib import Path

import numpy as np
import pytest

from lutc.runtime import build, kernels
from test_kernels import run_sanitized, run_tsan, tsan_executable

HERE = Path(__file__).resolve().parent
KERNELS = [k for k in ("ref", "avx2", "avx512") if kernels.kernel_available(k)]
RTOL = 1e-5


class AttnDesc(ctypes.Structure):
    """Mirror of `lutrt_attn_desc` (lutrt.h)."""

    _fields_ = [("n_heads", ctypes.c_int32), ("n_kv_heads", ctypes.c_int32),
                ("head_dim", ctypes.c_int32), ("max_context", ctypes.c_int32),
                ("sliding_window", ctypes.c_int32), ("scale", ctypes.c_float),
                ("softcap", ctypes.c_float), ("num_threads", ctypes.c_int32)]


def lib() -> ctypes.CDLL:
    L = kernels.library()
    vp, i32 = ctypes.c_void_p, ctypes.c_int32
    L.lutrt_attention_kv.argtypes = [ctypes.POINTER(AttnDesc), vp, vp, vp, vp, vp, i32, i32, vp]
    L.lutrt_attention.argtypes = [ctypes.POINTER(AttnDesc), vp, vp, vp, i32, i32, i32, vp, vp]
    L.lutrt_attention_kv_f16.argtypes = L.lutrt_attention_kv.argtypes
    L.lutrt_attention_kv.restype = L.lutrt_attention.restype = ctypes.c_int
    L.lutrt_attention_kv_f16.restype = ctypes.c_int
    return L


@pytest.fixture(autouse=True)
def default_kernel():
    yield
    kernels.set_kernel(None)


def seed(*args) -> int:
    return zlib.crc32(repr(args).encode())


def ptr(a):
    return None if a is None else a.ctypes.data


def desc(H, KVH, D, max_context=0, window=0, softcap=0.0, threads=0, scale=None):
    return AttnDesc(H, KVH, D, max_context, window, 1 / np.sqrt(D) if scale is None else scale,
                    softcap, threads)


def call_kv(d, q, k_new, v_new, k_cache, v_cache, start):
    """lutrt_attention_kv, or lutrt_attention_kv_f16 for float16 caches."""
    out = np.full(q.shape, np.nan, np.float32)
    fn = lib().lutrt_attention_kv_f16 if k_cache.dtype == np.float16 else lib().lutrt_attention_kv
    rc = fn(ctypes.byref(d), ptr(q), ptr(k_new), ptr(v_new), ptr(k_cache), ptr(v_cache), start,
            q.shape[0], ptr(out))
    if rc:
        raise ValueError(lib().lutrt_last_error().decode())
    return out


def call(d, q, k, v, causal, mask=None):
    out = np.full(q.shape, np.nan, np.float32)
    rc = lib().lutrt_attention(ctypes.byref(d), ptr(q), ptr(k), ptr(v), q.shape[1], k.shape[1],
                               causal, ptr(mask), ptr(out))
    if rc:
        raise ValueError(lib().lutrt_last_error().decode())
    return out


def reference(q, k, v, visible, scale, softcap=0.0, mask=None):
    """q [H, Sq, D], k/v [KVH, Skv, D], visible bool [Sq, Skv] -> out [H, Sq, D] in float64:
    s = scale q.k, softcap, + mask, invisible keys dropped; rows seeing nothing give zeros."""
    H, KVH = q.shape[0], k.shape[0]
    kh = np.repeat(k.astype(np.float64), H // KVH, axis=0)
    vh = np.repeat(v.astype(np.float64), H // KVH, axis=0)
    s = scale * np.einsum("hqd,hkd->hqk", q.astype(np.float64), kh)
    if softcap:
        s = softcap * np.tanh(s / softcap)
    if mask is not None:
        s = s + mask.astype(np.float64)
    s = np.where(visible, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    p = np.exp(s - np.where(np.isfinite(m), m, 0.0))
    l = p.sum(axis=-1, keepdims=True)
    return np.einsum("hqk,hkd->hqd", p / np.where(l > 0, l, 1.0), vh)


def kv_visible(start, S, window):
    pos = start + np.arange(S)[:, None]
    j = np.arange(start + S)[None, :]
    return (j <= pos) & ((pos - j < window) if window else True)


def assert_close(out, want, what):
    err = np.abs(out.astype(np.float64) - want).max()
    assert err <= RTOL * max(np.abs(want).max(), 1e-30), f"{what}: max error {err}"


def kv_case(rng, H, KVH, D, start, S, max_context, cache_dtype=np.float32):
    q = rng.standard_normal((S, H, D)).astype(np.float32)
    k_new = rng.standard_normal((S, KVH, D)).astype(np.float32)
    v_new = rng.standard_normal((S, KVH, D)).astype(np.float32)
    k_cache = rng.standard_normal((KVH, max_context, D)).astype(cache_dtype)
    v_cache = rng.standard_normal((KVH, max_context, D)).astype(cache_dtype)
    return q, k_new, v_new, k_cache, v_cache


def same_bits(a, b):
    """Equal bit for bit, except that any NaN equals any NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all((a.view(np.uint16 if a.dtype == np.float16 else
                                                      np.uint32) ==
                                               b.view(np.uint16 if b.dtype == np.float16 else
                                                      np.uint32)) | (np.isnan(a) & np.isnan(b))))


def check_kv(H, KVH, D, start, S, window, softcap, threads, rng, spare=7,
             cache_dtype=np.float32):
    """One lutrt_attention_kv(_f16) call against the reference, cache contents included."""
    max_context = start + S + spare
    q, k_new, v_new, k_cache, v_cache = kv_case(rng, H, KVH, D, start, S, max_context,
                                                cache_dtype)
    k_before, v_before = k_cache.copy(), v_cache.copy()
    d = desc(H, KVH, D, max_context, window, softcap, threads)
    out = call_kv(d, q, k_new, v_new, k_cache, v_cache, start)
    rows = slice(start, start + S)
    assert same_bits(k_cache[:, rows], k_new.transpose(1, 0, 2).astype(cache_dtype))
    assert same_bits(v_cache[:, rows], v_new.transpose(1, 0, 2).astype(cache_dtype))
    for c, before in ((k_cache, k_before), (v_cache, v_before)):
        assert np.array_equal(c[:, :start], before[:, :start])
        assert np.array_equal(c[:, start + S:], before[:, start + S:])
    ctx = start + S
    want = reference(q.transpose(1, 0, 2), k_cache[:, :ctx], v_cache[:, :ctx],
                     kv_visible(start, S, window), d.scale, softcap)
    assert_close(out, want.transpose(1, 0, 2),
                 (H, KVH, D, start, S, window, softcap, threads))
    return out


HEADS = [(9, 3), (8, 8), (4, 1), (6, 2)]
DIMS = [64, 48, 8]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("S", [1, 3, 17, 64])
@pytest.mark.parametrize("start", [0, 5, 100])
def test_attention_kv(kernel, S, start):
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed(kernel, S, start))
    i = 0
    for H, KVH in HEADS:
        for D in DIMS:
            # every (window, softcap) pair and thread count comes up for each (S, start)
            window = (0, 0, 4, 40)[i % 4]
            softcap = (0.0, 5.0, 0.0, 2.0)[(i // 4 + i) % 4]
            check_kv(H, KVH, D, start, S, window, softcap, i % 4 + 1, rng)
            i += 1


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("S,start", [(1, 0), (1, 100), (17, 5), (64, 100)])
def test_attention_kv_f16(kernel, S, start):
    """The f16 cache: every head layout, head dims with widening tails, windows, softcaps."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("f16", kernel, S, start))
    i = 0
    for H, KVH in HEADS:
        for D in DIMS + [17]:
            window = (0, 0, 4, 40)[i % 4]
            softcap = (0.0, 5.0, 0.0, 2.0)[(i // 4 + i) % 4]
            check_kv(H, KVH, D, start, S, window, softcap, i % 4 + 1, rng,
                     cache_dtype=np.float16)
            i += 1


@pytest.mark.parametrize("kernel", KERNELS)
def test_attention_kv_f16_long_rows_and_split(kernel):
    """Head dims of 600 and 4096 (key blocks of 6 and 1 rows) and split-K over a long f16
    context; head_dim 4097 is rejected without touching the cache."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("f16long", kernel))
    check_kv(2, 1, 600, 30, 2, 0, 0.0, 2, rng, cache_dtype=np.float16)
    check_kv(2, 2, 4096, 3, 1, 0, 0.0, 1, rng, cache_dtype=np.float16)
    for threads in (1, 3):
        check_kv(4, 1, 64, 1500, 1, 0, 0.0, threads, rng, cache_dtype=np.float16)
    q, k_new, v_new, k_cache, v_cache = kv_case(rng, 2, 1, 4097, 0, 1, 2, np.float16)
    before = k_cache.copy()
    with pytest.raises(ValueError, match="head_dim must be <= 4096 with an f16 cache, got 4097"):
        call_kv(desc(2, 1, 4097, 2), q, k_new, v_new, k_cache, v_cache, 0)
    assert np.array_equal(k_cache, before)


@pytest.mark.parametrize("kernel", KERNELS)
def test_f16_cache_rounding(kernel):
    """Appended rows equal numpy's IEEE round-to-nearest-even bit for bit on hostile values;
    the output stays finite where the cache is."""
    kernels.set_kernel(kernel)
    tiny = np.float32(2.0 ** -24)  # the smallest f16 subnormal
    special = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 65519.0, 65520.0, -65520.0, 1e6, -1e30,
                        6.1e-5, 6.097e-5, tiny, tiny / 2, tiny * 0.5000001, tiny * 1.5,
                        -tiny * 2.5, 1e-10, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11,
                        2049.0, 2051.0, np.inf, -np.inf, np.nan, 3.4e38], np.float32)
    rng = np.random.default_rng(seed("round", kernel))
    D = 32
    vals = np.concatenate([special, rng.standard_normal(2 * D * 3 - special.size).astype(np.float32)
                           * np.float32(10.0) ** rng.integers(-9, 6, 2 * D * 3 - special.size)])
    k_new = vals[:D * 3].reshape(3, 1, D).astype(np.float32)
    v_new = vals[D * 3:].reshape(3, 1, D).astype(np.float32)
    q = rng.standard_normal((3, 2, D)).astype(np.float32)
    k_cache = np.zeros((1, 3, D), np.float16)
    v_cache = np.zeros((1, 3, D), np.float16)
    call_kv(desc(2, 1, D, 3), q, k_new, v_new, k_cache, v_cache, 0)
    with np.errstate(over="ignore"):
        assert same_bits(k_cache[0], k_new[:, 0].astype(np.float16))
        assert same_bits(v_cache[0], v_new[:, 0].astype(np.float16))
    q, k_new, v_new, k_cache, v_cache = kv_case(rng, 2, 1, D, 0, 3, 3, np.float16)
    k_new[0, 0, :4] = [1e-7, -3e-6, 60000.0, -60000.0]
    v_new[1, 0, :4] = [1e-7, -3e-6, 60000.0, -60000.0]
    out = call_kv(desc(2, 1, D, 3, scale=1e-5), q, k_new, v_new, k_cache, v_cache, 0)
    want = reference(q.transpose(1, 0, 2), k_cache, v_cache, kv_visible(0, 3, 0), 1e-5)
    assert_close(out, want.transpose(1, 0, 2), "f16 extremes")


@pytest.mark.parametrize("kernel", KERNELS)
def test_decode_loop(kernel):
    """Token by token through one cache, as generated code does: prefill 5 rows, then S = 1."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("loop", kernel))
    H, KVH, D, T = 9, 3, 64, 40
    q, k_new, v_new, k_cache, v_cache = kv_case(rng, H, KVH, D, 0, T, T)
    d = desc(H, KVH, D, T, threads=2)
    outs = [call_kv(d, q[:5], k_new[:5], v_new[:5], k_cache, v_cache, 0)]
    for t in range(5, T):
        outs.append(call_kv(d, q[t:t + 1], k_new[t:t + 1], v_new[t:t + 1], k_cache, v_cache, t))
    want = reference(q.transpose(1, 0, 2), k_new.transpose(1, 0, 2), v_new.transpose(1, 0, 2),
                     kv_visible(0, T, 0), d.scale)
    assert_close(np.concatenate(outs), want.transpose(1, 0, 2), "decode loop")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("start,S,window", [(700, 1, 0), (2000, 1, 0), (2000, 1, 100),
                                            (1500, 3, 0), (600, 2, 300)])
def test_split_context(kernel, start, S, window):
    """Few tasks (H=4, KVH=1) and a long context: 2..4 threads split the context; a window
    leaves some splits without a visible key. Also equal to the 1-thread (unsplit) result."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("split", kernel, start, S, window))
    outs = [check_kv(4, 1, 64, start, S, window, 0.0, t, np.random.default_rng(seed(start, S)))
            for t in (1, 2, 3, 4)]
    for o in outs[1:]:
        assert_close(o, outs[0].astype(np.float64), "split vs unsplit")
    check_kv(16, 4, 128, start, S, window, 0.0, 2, rng)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("S,start", [(16, 0), (40, 3), (16, 1500)])
@pytest.mark.parametrize("D", [32, 64, 128])
def test_attention_kv_prefill_tasks(kernel, S, start, D):
    """Prefill tasks of 8..16 query vectors (GQA group x rows), which the AVX-512 kernel runs
    with one query per vector lane: head dims 32 / 64 / 128, GQA 9/3, 16/4, 8/8 and 12/1 (a
    group of 12: one row per task), windows, 1..4 threads (a long context with few tasks
    splits it), both caches; equal across thread counts within the tolerance."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("lanes", kernel, S, start, D))
    for i, (H, KVH) in enumerate([(9, 3), (16, 4), (8, 8), (12, 1)]):
        window = (0, 7, 0, 25)[i]
        outs = [check_kv(H, KVH, D, start, S, window, 0.0, t, np.random.default_rng(seed(i, D)),
                         cache_dtype=cache)
                for t in (1, 4) for cache in (np.float32, np.float16)]
        assert_close(outs[2], outs[0].astype(np.float64), "4 threads vs 1, f32 cache")
        assert_close(outs[3], outs[1].astype(np.float64), "4 threads vs 1, f16 cache")


def attention_case(rng, H, KVH, D, Sq, Skv, causal):
    """q [H, Sq, D], k / v [KVH, Skv, D] and the keys each row sees (lutrt_attention's causal
    0: all, 1: aligned to the last key, 2: to the first)."""
    q = rng.standard_normal((H, Sq, D)).astype(np.float32)
    k = rng.standard_normal((KVH, Skv, D)).astype(np.float32)
    v = rng.standard_normal((KVH, Skv, D)).astype(np.float32)
    i, j = np.arange(Sq)[:, None], np.arange(Skv)[None, :]
    visible = {0: np.ones((Sq, Skv), bool), 1: j <= i + (Skv - Sq), 2: j <= i}[causal]
    return q, k, v, visible


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("Sq,Skv", [(20, 9), (9, 20), (33, 33)])
@pytest.mark.parametrize("causal", [0, 1, 2])
def test_attention_causal_prefill_tasks(kernel, Sq, Skv, causal):
    """lutrt_attention with tasks of 8..16 query vectors (head dim 64): rows that see no key
    (causal 1 with Sq > Skv) give zeros; a mask keeps the per-query kernels, the same result."""
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("attn-lanes", kernel, Sq, Skv, causal))
    H, KVH, D = 8, 2, 64
    q, k, v, visible = attention_case(rng, H, KVH, D, Sq, Skv, causal)
    zero_mask = np.zeros((Sq, Skv), np.float32)
    for threads in (1, 2):
        d = desc(H, KVH, D, threads=threads)
        out = call(d, q, k, v, causal)
        assert_close(out, reference(q, k, v, visible, d.scale), ("lanes", causal, threads))
        assert_close(call(d, q, k, v, causal, zero_mask), out.astype(np.float64), "masked path")
        assert not out[:, ~visible.any(axis=1)].any()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("Sq,Skv", [(5, 9), (9, 5), (7, 7), (1, 300)])
@pytest.mark.parametrize("causal", [0, 1, 2])
def test_attention_causal_and_mask(kernel, Sq, Skv, causal):
    kernels.set_kernel(kernel)
    rng = np.random.default_rng(seed("attn", kernel, Sq, Skv, causal))
    H, KVH, D = 6, 2, 48
    q, k, v, visible = attention_case(rng, H, KVH, D, Sq, Skv, causal)
    mask = (rng.standard_normal((Sq, Skv)) * 2).astype(np.float32)
    mask[rng.random((Sq, Skv)) < 0.2] = -np.inf
    mask[0, :] = -np.inf  # a fully masked row: zeros
    for softcap in (0.0, 3.0):
        for threads in (1, 3):
            d = desc(H, KVH, D, softcap=softcap, threads=threads)
            assert_close(call(d, q, k, v, causal), reference(q, k, v, visible, d.scale, softcap),
                         ("no mask", softcap, threads))
            out = call(d, q, k, v, causal, mask)
            assert_close(out, reference(q, k, v, visible, d.scale, softcap, mask),
                         ("mask", softcap, threads))
            assert not out[:, 0].any()
    if causal:  # sliding window, relative to each query's diagonal position
        i, j = np.arange(Sq)[:, None], np.arange(Skv)[None, :]
        p = i + (Skv - Sq if causal == 1 else 0)
        d = desc(H, KVH, D, window=3, threads=2)
        assert_close(call(d, q, k, v, causal, mask),
                     reference(q, k, v, visible & (p - j < 3), d.scale, 0.0, mask), "window")


def test_attention_kv_errors():
    rng = np.random.default_rng(1)
    q, k_new, v_new, k_cache, v_cache = kv_case(rng, 4, 2, 8, 0, 3, 10)
    before = k_cache.copy()
    cases = [
        (desc(4, 2, 8, 10), 8, "start . S = 11 exceeds max_context 10"),
        (desc(4, 2, 8, 10), -1, "start must be >= 0"),
        (desc(4, 3, 8, 10), 0, r"n_heads \(4\) must be a positive multiple of n_kv_heads \(3\)"),
        (desc(4, 2, 0, 10, scale=1.0), 0, "head_dim must be >= 1"),
        (desc(4, 2, 8, 10, window=-1), 0, "sliding_window must be >= 0"),
        (desc(4, 2, 8, 10, softcap=-1.0), 0, "softcap must be >= 0"),
        (desc(4, 2, 8, 10, scale=float("nan")), 0, "scale must be finite"),
        (desc(4, 2, 8, 10, threads=-2), 0, "num_threads must be >= 0"),
    ]
    for d, start, msg in cases:
        with pytest.raises(ValueError, match=msg):
            call_kv(d, q, k_new, v_new, k_cache, v_cache, start)
    assert np.array_equal(k_cache, before)
    L, d, out = lib(), desc(4, 2, 8, 10), np.empty_like(q)
    assert L.lutrt_attention_kv(ctypes.byref(d), ptr(q), ptr(k_new), ptr(v_new), ptr(k_cache),
                                ptr(v_cache), 0, 0, ptr(out)) == -1
    assert "S (query rows) must be >= 1" in L.lutrt_last_error().decode()
    assert L.lutrt_attention_kv(ctypes.byref(d), ptr(q), None, ptr(v_new), ptr(k_cache),
                                ptr(v_cache), 0, 3, ptr(out)) == -1
    assert "NULL buffer" in L.lutrt_last_error().decode()
    assert L.lutrt_attention_kv(None, ptr(q), ptr(k_new), ptr(v_new), ptr(k_cache),
                                ptr(v_cache), 0, 3, ptr(out)) == -1
    assert "NULL descriptor" in L.lutrt_last_error().decode()


def test_attention_errors():
    q = np.zeros((4, 3, 8), np.float32)
    kv = np.zeros((2, 5, 8), np.float32)
    with pytest.raises(ValueError, match="causal must be 0 .none., 1 .bottom-right. or 2"):
        call(desc(4, 2, 8), q, kv, kv, 3)
    with pytest.raises(ValueError, match="sliding_window 4 needs causal attention"):
        call(desc(4, 2, 8, window=4), q, kv, kv, 0)
    with pytest.raises(ValueError, match="Sq and Skv must be >= 1"):
        call(desc(4, 2, 8), q, np.zeros((2, 0, 8), np.float32), kv, 1)


# ---- sanitizers ----------------------------------------------------------------------------

def test_attention_clean_under_asan_ubsan(tmp_path):
    exe = build.runtime_executable(HERE / "attention_sanitize_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    rng = np.random.default_rng(5)
    dirs = []
    # mode 0 (f32 cache) and mode 2 (f16 cache): (H, KVH, D, start, S, window, softcap, spare rows)
    kv_cases = [(0, np.float32, c) for c in [
        (9, 3, 64, 0, 17, 0, 0.0, 3), (4, 1, 48, 700, 1, 0, 0.0, 0),
        (6, 2, 8, 100, 3, 40, 5.0, 9), (8, 8, 36, 5, 64, 0, 0.0, 1)]]
    kv_cases += [(2, np.float16, c) for c in [
        (9, 3, 64, 0, 17, 0, 0.0, 3), (4, 1, 600, 300, 1, 0, 0.0, 0),
        (6, 2, 17, 100, 3, 40, 5.0, 9)]]
    for i, (mode, dtype, (H, KVH, D, start, S, window, softcap, spare)) in enumerate(kv_cases):
        max_context = start + S + spare
        q, k_new, v_new, k_cache, v_cache = kv_case(rng, H, KVH, D, start, S, max_context,
                                                    dtype)
        d = tmp_path / f"kv{i}"
        d.mkdir()
        for name, a in (("q", q), ("k_new", k_new), ("v_new", v_new), ("k_cache", k_cache),
                        ("v_cache", v_cache)):
            a.tofile(d / f"{name}.bin")
        kernels.set_kernel("ref")
        out = call_kv(desc(H, KVH, D, max_context, window, softcap, 1), q, k_new, v_new,
                      k_cache, v_cache, start)
        out.tofile(d / "expected.bin")
        k_cache.tofile(d / "k_after.bin")
        v_cache.tofile(d / "v_after.bin")
        (d / "meta.txt").write_text(f"{mode} {H} {KVH} {D} {max_context} {window} "
                                    f"{1 / np.sqrt(D)} {softcap} {start} {S} 0 0 0 0\n")
        dirs.append(str(d))
    # mode 1: (Sq, Skv, causal, mask)
    for i, (Sq, Skv, causal, masked) in enumerate([(5, 9, 1, True), (9, 5, 2, False),
                                                   (3, 70, 0, True)]):
        H, KVH, D = 6, 2, 40
        q = rng.standard_normal((H, Sq, D)).astype(np.float32)
        k = rng.standard_normal((KVH, Skv, D)).astype(np.float32)
        v = rng.standard_normal((KVH, Skv, D)).astype(np.float32)
        mask = None
        if masked:
            mask = rng.standard_normal((Sq, Skv)).astype(np.float32)
            mask[0] = -np.inf
        kernels.set_kernel("ref")
        out = call(desc(H, KVH, D, softcap=2.0, threads=1), q, k, v, causal, mask)
        d = tmp_path / f"attn{i}"
        d.mkdir()
        for name, a in (("q", q), ("k", k), ("v", v), ("mask", mask), ("expected", out)):
            if a is not None:
                a.tofile(d / f"{name}.bin")
        (d / "meta.txt").write_text(f"1 {H} {KVH} {D} 0 0 {1 / np.sqrt(D)} 2.0 0 0 {Sq} {Skv} "
                                    f"{causal} {int(masked)}\n")
        dirs.append(str(d))
    run_sanitized(exe, dirs)
    tsan = tsan_executable(HERE / "attention_sanitize_driver.c")  # 2 threads: no data race
    assert run_tsan(tsan, dirs) == f"OK {len(dirs)} cases"
