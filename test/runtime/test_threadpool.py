"""The runtime's thread pool (runtime/threadpool.c): every task of a parallel loop runs exactly
once, guided or owner-first (the caller runs the front of its own range), in chunks of whole grains, for 1-8 threads, even / skewed / random task costs, nested
loops and a pool restarted after lutrt_shutdown — under AddressSanitizer and UBSan
(threadpool_driver.c); back-to-back loops of changing size never overlap
(threadpool_stress_driver.c); and its parallel-loop profile (lutrt_pool_profile)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from lutc.runtime import build
from test_kernels import run_driver, run_tsan, tsan_executable

HERE = Path(__file__).resolve().parent


def test_every_task_runs_once_under_sanitizers():
    exe = build.runtime_executable(HERE / "threadpool_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    assert run_driver(exe) == f"cases {2 * 8 * 9 * 4 * 3 * 2}"  # x 2 schedules


def test_back_to_back_loops_never_overlap():
    """Loops of 2 and 64 tasks in turn on 2-4 threads (threadpool_stress_driver.c): a worker
    that re-reads the claim of the finished small loop while the large one is published must
    not take tasks of the large one. Without the closed claim this failed within ~10^4 loops
    on the 2-core VM (a task run twice, the caller returning before it ended); optimized and
    without sanitizers, so that the race window is as narrow as in a real build."""
    exe = build.runtime_executable(HERE / "threadpool_stress_driver.c")
    assert run_driver(exe, ["300000"]) == "loops 300000"
    sanitized = build.runtime_executable(HERE / "threadpool_stress_driver.c", sanitize=True,
                                         extra_cflags=("-O1",))
    assert run_driver(sanitized, ["20000"]) == "loops 20000"


def test_pool_has_no_data_race_under_thread_sanitizer():
    """Both drivers under ThreadSanitizer: the pool's loads and stores between the caller and
    the workers are ordered (atomics, the claim's CAS), no plain access races."""
    assert run_tsan(tsan_executable(HERE / "threadpool_stress_driver.c"), ["20000"]) == \
        "loops 20000"
    assert run_tsan(tsan_executable(HERE / "threadpool_driver.c")) == \
        f"cases {2 * 8 * 9 * 4 * 3 * 2}"


# ---- the parallel-loop profile (lutrt_pool_profile, runtime/pool_profile.py) ------------------

def _gemv(n: int, threads: int):
    """A 2-bit GEMV lut.mma call over n weight rows (n / 32 blocks) on `threads` threads."""
    import numpy as np

    from lutc.runtime import kernels, packing

    rng = np.random.default_rng(0)
    k, bits = 256, 2
    x = rng.standard_normal((1, k)).astype(np.float32)
    q = rng.integers(0, 1 << bits, (n, k)).astype(np.uint8)
    s = np.full((n, 1), 0.01, np.float32)
    z = np.ones((n, 1), np.float32)
    codes = packing.mirror_codes(packing.codes_from_q(q, bits))
    s_sym, z_sym = packing.mirror_scales(s, z, bits)
    t = kernels.precompute(x, group=k, entries=8, table_i8=True, scale_group=4)
    return kernels.MmaCall(t, packing.pack_weights(codes), s_sym, z_sym, n=n, bits=bits,
                           threads=threads)


def test_pool_profile_records_loops_while_on():
    from lutc.runtime import kernels, pool_profile

    lib = kernels.library()
    wide, narrow = _gemv(4096, 2), _gemv(32, 2)  # 128 blocks; one block: one chunk
    wide()
    with pool_profile.recording(lib) as prof:
        for _ in range(3):
            wide()
        narrow()
    (entry,) = [s for s in prof.loops if s.name == "mma_task"]  # named from the symbol table
    assert entry.loops == 4
    assert 0 < entry.wall_s <= prof.wall_s
    assert entry.busy_s <= entry.held_s * 1.02 + 1e-4  # threads' time in chunks <= time held
    assert entry.held_s == pytest.approx(2 * entry.wall_s, rel=1e-6)
    assert entry.busy_s > 0.5 * entry.wall_s  # the caller works in its own loops
    text = pool_profile.report(prof, threads=2)
    assert "mma_task" in text and "serial code outside loops" in text
    with pool_profile.recording(lib) as again:  # recording again starts from zero
        narrow()
    (entry,) = [s for s in again.loops if s.name == "mma_task"]
    assert entry.loops == 1 and entry.held_s == pytest.approx(2 * entry.wall_s, rel=1e-6)
    wide()  # not recording: nothing added
    fn, v = ctypes.c_void_p(), (ctypes.c_int64 * 4)()
    assert lib.lutrt_pool_profile_entry(0, ctypes.byref(fn), v) == 1 and v[0] == 1
    assert lib.lutrt_pool_profile_entry(len(again.loops), ctypes.byref(fn), v) == 0
