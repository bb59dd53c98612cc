"""GEMV share of the weight-streaming floor for GEMV prefetch distances (lutrt_internal.h's
LUTRT_GEMV_PREFETCH_BYTES, or none): one runtime build per variant, each in its own process
(a process per build keeps one thread pool), variants interleaved over `--reps` repetitions.

    python3 bench/bench_gemv_prefetch.py [--threads 1,4,16] [--bits 2,4] [--reps 3]
                                         [--variants none,1024,2048,4096]

Weights: N = K = 4096, mirrored codes, per-table int8 tables, group 64, rotated over copies
larger together than any last-level cache (each call streams from memory). Floor: (packed
weights + scales) bytes / streaming read bandwidth at that thread count (bench_kernels).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import build, kernels, packing, read_bandwidth  # noqa: E402

K = N = 4096
GROUP = 64


def flags(variant: str) -> tuple[str, ...]:
    return ("-DLUTRT_NO_GEMV_PREFETCH=1",) if variant == "none" else \
        (f"-DLUTRT_GEMV_PREFETCH_BYTES={int(variant)}",)


def child(variant: str, bits: int, threads: list[int], copies_bytes: int) -> dict:
    kernels.use_library(build.runtime_library(extra_cflags=flags(variant)))
    rng = np.random.default_rng(bits)
    q = rng.integers(0, 1 << bits, (N, K)).astype(np.uint8)
    packed = packing.pack_weights(packing.mirror_codes(packing.codes_from_q(q, bits)))
    s = (rng.random((N, K // GROUP)) + 0.5).astype(np.float32)
    copies = [packed] + [packed.copy() for _ in range(copies_bytes // packed.nbytes)]
    x = rng.standard_normal((1, K)).astype(np.float32)
    t = kernels.precompute(x, group=GROUP, entries=8, table_i8=True, scale_group=4)
    out = {}
    for th in threads:
        calls = [kernels.MmaCall(t, w, s, None, n=N, bits=bits, zimp=1.0, threads=th) for w in copies]
        calls[0]()
        ts = []
        for i in range(2 * len(calls)):
            t0 = time.perf_counter()
            calls[i % len(calls)]()
            ts.append(time.perf_counter() - t0)
        out[th] = statistics.median(ts)
    return {"bytes": packed.nbytes + s.nbytes, "times": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,4,16")
    ap.add_argument("--bits", default="2,4")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", default="none,1024,2048,4096")
    ap.add_argument("--copies-mib", type=int, default=640)
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), threads, args.copies_mib << 20)))
        return
    variants = args.variants.split(",")
    for v in variants:  # build every variant before timing anything
        build.runtime_library(extra_cflags=flags(v))
    bw = read_bandwidth(threads, nbytes=1 << 30)
    print("read GB/s:", {t: round(bw[t] / 1e9, 1) for t in threads}, flush=True)
    rows = []
    for bits in (int(b) for b in args.bits.split(",")):
        times = {v: {t: [] for t in threads} for v in variants}
        nbytes = 0
        for _ in range(args.reps):
            for v in variants:
                res = json.loads(subprocess.run(
                    [sys.executable, __file__, "--threads", args.threads, "--copies-mib",
                     str(args.copies_mib), "--child", v, str(bits)],
                    check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
                nbytes = res["bytes"]
                for t, sec in res["times"].items():
                    times[v][int(t)].append(sec)
        for v in variants:
            for t in threads:
                med = statistics.median(times[v][t])
                share = nbytes / bw[t] / med
                rows.append({"bits": bits, "variant": v, "threads": t, "us": med * 1e6,
                             "floor_share": share})
                print(f"bits {bits} prefetch {v:>5} threads {t:2}: {med * 1e6:7.0f} us "
                      f"{share:5.1%} of the floor", flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gemv_prefetch.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
