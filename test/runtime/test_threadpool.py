"""The runtime's thread pool (runtime/threadpool.c): every task of a parallel loop runs exactly
once, in chunks of whole grains, for 1-8 threads, even / skewed / random task costs, nested
loops and a pool restarted after lutrt_shutdown — under AddressSanitizer and UBSan
(threadpool_driver.c)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lutc.runtime import build

HERE = Path(__file__).resolve().parent


def test_every_task_runs_once_under_sanitizers():
    exe = build.runtime_executable(HERE / "threadpool_driver.c", sanitize=True,
                                   extra_cflags=("-O1",))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "runtime error" not in proc.stderr, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"cases {2 * 8 * 9 * 4 * 3}"
