"""The runtime's thread pool (runtime/threadpool.c): every task of a parallel loop runs exactly
once, in chunks of whole grains, for 1-8 threads, even / skewed / random task costs, nested
loops and a pool restarted after lutrt_shutdown — under AddressSanitizer and UBSan
(threadpool_driver.c)."""

from __future__ import annotations

from pathlib import Path

from lutc.runtime import build
from test_kernels import run_driver

HERE = Path(__file__).resolve().parent


def test_every_task_runs_once_under_sanitizers():
    exe = build.runtime_executable(HERE / "threadpool_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    assert run_driver(exe) == f"cases {2 * 8 * 9 * 4 * 3}"
