"""End-to-end fixtures: models are exported and compiled once per session and shared; every
compile is timed and every compared output lands in one table, printed after the run."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lutc.compiler.codegen.build import build_library
from lutc.compiler.api import compile_model
from lutc.runtime.model_loader import CompiledModel

# The lossless pipeline keeps float tables; the default one quantizes them to int8.
LOSSLESS = ("lut-quantize-table",)
DEFAULT = ()


def rel_max_abs(a: np.ndarray, ref: np.ndarray) -> float:
    """max|a - ref| / max|ref|."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(a - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def nmse(a: np.ndarray, ref: np.ndarray) -> float:
    """sum (a - ref)^2 / sum ref^2."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.sum((a - ref) ** 2) / max(float(np.sum(ref**2)), 1e-30))


@dataclass
class Row:
    model: str
    fmt: str
    path: str
    pipeline: str
    error: str
    compile_s: float


ROWS: list[Row] = []


def report(model: str, fmt: str | None, path: str, pipeline: str, error: str,
           compile_s: float) -> None:
    ROWS.append(Row(model, fmt or "f32", path, pipeline, error, compile_s))


# Compiles a test needs at once run on this many threads. Most of a compile is `cc` in a
# subprocess, which overlaps; importing and the passes are not thread-safe (xDSL's implicit
# builders are process-wide), so they hold a lock. LUTC_E2E_JOBS=1: undisturbed timings.
JOBS = int(os.environ.get("LUTC_E2E_JOBS", "2"))


class Compiler:
    """compile_model once per key into the session folder; remembers each compile's time."""

    def __init__(self, root: Path):
        self.root = root
        self.models: dict[str, tuple[CompiledModel, float]] = {}
        self.lock = threading.Lock()

    def __call__(self, key: str, model, fmt: str | None = None, disabled=DEFAULT):
        """(loaded model, compile seconds)."""
        if key not in self.models:
            outdir = self.root / key
            with self.lock:
                start = time.perf_counter()
                c_file = compile_model(model, outdir, weights=fmt, disabled=disabled,
                                       emit="c", out=lambda s: None)
                secs = time.perf_counter() - start
            start = time.perf_counter()
            build_library(c_file)
            secs += time.perf_counter() - start
            self.models[key] = (CompiledModel(outdir), secs)
        return self.models[key]

    def prefetch(self, jobs: list[tuple]) -> None:
        """Compile the (key, model, fmt, disabled) jobs not compiled yet, JOBS at a time. The
        session's first compile runs alone: it builds the runtime library."""
        todo = [j for j in dict((j[0], j) for j in jobs).values() if j[0] not in self.models]
        if not self.models and todo:
            self(*todo.pop(0))
        if len(todo) > 1 and JOBS > 1:
            with ThreadPoolExecutor(JOBS) as pool:
                list(pool.map(lambda job: self(*job), todo))


@pytest.fixture(scope="session")
def compiled(tmp_path_factory) -> Compiler:
    return Compiler(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e_models")


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("lutc end to end: C vs references")
    head = ("model", "format", "path", "pipeline", "error", "compile s")
    cells = [head] + [(r.model, r.fmt, r.path, r.pipeline, r.error, f"{r.compile_s:.1f}")
                      for r in ROWS]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for i, row in enumerate(cells):
        tr.write_line(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            tr.write_line("-+-".join("-" * w for w in widths))
