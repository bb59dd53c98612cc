"""Thread scaling of the LUT kernels: GEMV (M=1) and GEMM (M=128), 2-bit, K = N = 4096, int8
mirrored tables with per-table scales (4, the default) and one scale per 32 activations, for each
SIMD kernel this CPU runs (kernels forced, so the int8-activation path is off). Meant for
many-core machines:

    .venv/bin/python bench/bench_scaling.py [--threads 1,2,4,8,16]

GEMV rows also give the share of the weight-streaming floor: (packed weights + scales bytes) /
the streaming read bandwidth at that thread count (bench_kernels.read_bandwidth, same run) /
the call's median time. Writes bench/results/scaling.json.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import kernels, packing, read_bandwidth  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", default="1,2,4,8,16")
THREADS = [int(t) for t in ap.parse_args().threads.split(",")]
print("available:", [k for k in ("ref", "avx2", "avx512") if kernels.kernel_available(k)])
rng = np.random.default_rng(0)
K = N = 4096
q = rng.integers(0, 4, (N, K)).astype(np.uint8)
codes = packing.mirror_codes(packing.codes_from_q(q, 2))
packed = packing.pack_weights(codes)
s = rng.standard_normal((N, K // 64)).astype(np.float32)
bw = read_bandwidth(THREADS, nbytes=1 << 30)  # past any last-level cache (300 MiB on the Xeon)
print("read bandwidth GB/s:", {t: round(bw[t] / 1e9, 1) for t in THREADS})
weight_bytes = packed.nbytes + s.nbytes
# GEMV rotates over copies of the weights larger together than any last-level cache, so every
# call streams from memory (one copy alone, 5 MB, stays in cache between calls)
COPIES = [packed] + [packed.copy() for _ in range(127)]  # 660 MB
rows = []
for kern in [k for k in ("avx2", "avx512") if kernels.kernel_available(k)]:
    kernels.set_kernel(kern)
    for sg in (4, 32):
        for M in (1, 128):
            x = rng.standard_normal((M, K)).astype(np.float32)
            t = kernels.precompute(x, group=64, entries=8, table_i8=True, scale_group=sg)
            base = None
            for th in THREADS:
                # the call object is built once: building it packs the scales, which is not
                # the kernel's time (timing kernels.mma() measured mostly that at 16 threads)
                calls = [kernels.MmaCall(t, w, s, None, n=N, bits=2, zimp=1.0, threads=th)
                         for w in (COPIES if M == 1 else COPIES[:1])]
                calls[0]()
                ts = []
                for i in range(len(COPIES) if M == 1 else 5):
                    call = calls[i % len(calls)]
                    t0 = time.perf_counter(); call(); ts.append(time.perf_counter() - t0)
                med = statistics.median(ts) * 1e6
                base = base or med
                floor = weight_bytes / bw[th] * 1e6 / med  # GEMV: share of the streaming floor
                rows.append({"kernel": kern, "scale_group": sg, "M": M, "threads": th, "us": med,
                             "speedup": base / med, "floor_share": floor if M == 1 else None})
                print(f"{kern:7} sg{sg:<2} M={M:4} threads={th:2}: {med:9.1f} us  speedup "
                      f"{base / med:5.2f}x" + (f"  {100 * floor:4.0f}% of the read floor" if M == 1 else ""))
out = Path(__file__).resolve().parent / "results"
out.mkdir(exist_ok=True)
(out / "scaling.json").write_text(json.dumps({
    "date": time.strftime("%Y-%m-%d"), "bandwidth_Bps": {str(t): bw[t] for t in THREADS},
    "weight_bytes": weight_bytes, "rows": rows}, indent=1))
