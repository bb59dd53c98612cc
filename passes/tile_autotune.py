"""Measured tile choice for `lut-tile{autotune=true}`: time the cost model's best candidates
with the lutrt runtime and cache the winner per (M, N, K, bits, table kind, CPU model) in
`$LUTC_CACHE/tiles.json` (default `~/.cache/lutc/tiles.json`).

Candidates are timed as generated code runs them: `lutrt_mma` on random tables and weights
of the GEMM's shape, with the thread count the tile allows (a tile of n weight rows splits N
into ceil(N/n) units of work). Candidates the runtime would run identically are timed once.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from lutc.passes.tile_cost import Gemm, Machine, Tile, candidates

TOP_CANDIDATES = 6


def cache_path() -> Path:
    from lutc.runtime.build import cache_dir

    return cache_dir() / "tiles.json"


def cache_key(gemm: Gemm, machine: Machine) -> str:
    table = f"{gemm.entries}x{'i8' if gemm.entry_bytes == 1 else 'f32'} sg{gemm.scale_group}"
    return (f"M{gemm.m} N{gemm.n} K{gemm.k} w{gemm.bits} g{gemm.group} {table} | "
            f"{machine.model}")


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _store(path: Path, key: str, tile: Tile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _load(path)
    data[key] = {"m": tile.m, "n": tile.n, "k": tile.k, "strategy": tile.strategy,
                 "seconds": tile.seconds}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)  # concurrent compiles never read a partial file


def _time_gemm(gemm: Gemm, threads: int, repeats: int) -> float:
    from lutc.runtime import kernels, packing

    rng = np.random.default_rng(0)
    group = min(gemm.group, gemm.k)
    x = rng.standard_normal((gemm.m, gemm.k)).astype(np.float32)
    i8 = gemm.entry_bytes == 1
    tables = kernels.precompute(x, group=group, entries=gemm.entries, table_i8=i8,
                                scale_group=gemm.scale_group or 32)
    codes = rng.integers(0, 16, (gemm.bits, gemm.n, gemm.k // 4), dtype=np.uint8)
    if gemm.entries == 8:
        codes = packing.mirror_codes(codes)
    scales = rng.standard_normal((gemm.n, -(-gemm.k // group))).astype(np.float32)
    call = kernels.MmaCall(tables, packing.pack_weights(codes), scales, n=gemm.n,
                           bits=gemm.bits, threads=threads or None)
    call()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def autotune(gemm: Gemm, machine: Machine, repeats: int = 20) -> Tile:
    """The fastest of the model's top candidates on this machine (cached)."""
    path = cache_path()
    key = cache_key(gemm, machine)
    hit = _load(path).get(key)
    if hit:
        return Tile(hit["m"], hit["n"], hit["k"], hit["strategy"], hit["seconds"])
    timed: dict[int, float] = {}
    best: Tile | None = None
    for tile in candidates(gemm, machine)[:TOP_CANDIDATES]:
        threads = tile.threads(gemm, machine)
        if threads not in timed:
            timed[threads] = _time_gemm(gemm, threads, repeats)
        measured = Tile(tile.m, tile.n, tile.k, tile.strategy, timed[threads])
        if best is None or measured.seconds < best.seconds:
            best = measured
    assert best is not None
    _store(path, key, best)
    return best
