"""What per-table scales cost in the LUT kernel (issue 10): lut.mma on int8 tables with one scale
per table (scale group 4, the default; on its power-of-two grid, lutrt.h) against one scale per
32 activations (the old default), same weights and activations, calls interleaved.

    .venv/bin/python bench/bench_table_scales.py [--threads 1,2] [--bits 2,4,8] [--m 1,128]

N = K = 4096, mirrored codes, group 32, explicit zero points. The kernel is the default LUT
kernel with the int8-activation path off (lutrt_set_i8act_min_m(0)), so M = 128 measures the
tables too. Prints median µs per call and the ratio per-table / scale-group-32 (the issue's
target: <= 1.10); writes bench/results/table_scales.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import kernels, packing  # noqa: E402  (the runtime, installed or in-tree)

ROOT = Path(__file__).resolve().parent.parent
N = K = 4096
GROUP = 32


def calls(rng, m: int, bits: int, threads: int) -> dict:
    q = rng.integers(0, 1 << bits, (N, K)).astype(np.uint8)
    s = (rng.random((N, K // GROUP)) * 0.02 + 0.01).astype(np.float32)
    z = (rng.random((N, K // GROUP)) * ((1 << bits) - 1)).astype(np.float32)
    codes = packing.mirror_codes(packing.codes_from_q(q, bits))
    s_sym, z_sym = packing.mirror_scales(s, z, bits)
    packed = packing.pack_weights(codes)
    x = rng.standard_normal((m, K)).astype(np.float32)
    out = {}
    for sg in (4, 32):
        t = kernels.precompute(x, group=GROUP, entries=8, table_i8=True, scale_group=sg)
        out[sg] = kernels.MmaCall(t, packed, s_sym, z_sym, n=N, bits=bits, zimp=0.0, threads=threads)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--bits", default="2,4,8")
    ap.add_argument("--m", default="1,128")
    args = ap.parse_args(argv)
    kernels.set_i8act_min_m(0)
    rows = []
    print("   M  bits  threads | per-table µs | scale group 32 µs | ratio")
    for m in (int(v) for v in args.m.split(",")):
        for bits in (int(v) for v in args.bits.split(",")):
            rng = np.random.default_rng(bits)
            for th in (int(v) for v in args.threads.split(",")):
                c = calls(rng, m, bits, th)
                times = {4: [], 32: []}
                for _ in range(60 if m == 1 else 6):
                    for sg, call in c.items():
                        t0 = time.perf_counter()
                        call()
                        times[sg].append(time.perf_counter() - t0)
                pt, sg32 = (float(np.median(times[k]) * 1e6) for k in (4, 32))
                rows.append({"M": m, "bits": bits, "threads": th, "per_table_us": pt,
                             "sg32_us": sg32, "ratio": pt / sg32})
                print(f"{m:4} {bits:5} {th:8} | {pt:12.0f} | {sg32:17.0f} | {pt / sg32:5.2f}",
                      flush=True)
    kernels.set_i8act_min_m(None)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "table_scales.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
