"""Thread scaling of the LUT kernels: GEMV (M=1) and GEMM (M=128), 2-bit, K = N = 4096, int8
mirrored tables with per-table scales (4, the default) and one scale per 32 activations, for each
SIMD kernel this CPU runs (kernels forced, so the int8-activation path is off). Meant for
many-core machines:

    .venv/bin/python bench/bench_scaling.py [--threads 1,2,4,8,16]
"""
import argparse
import statistics
import time

import numpy as np

from lutc.runtime import kernels, packing

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
                call = kernels.MmaCall(t, packed, s, None, n=N, bits=2, zimp=1.0, threads=th)
                call()
                ts = []
                for _ in range(40 if M == 1 else 5):
                    t0 = time.perf_counter(); call(); ts.append(time.perf_counter() - t0)
                med = statistics.median(ts) * 1e6
                base = base or med
                print(f"{kern:7} sg{sg:<2} M={M:4} threads={th:2}: {med:9.1f} us  speedup {base / med:5.2f}x")
