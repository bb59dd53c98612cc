"""8-bit weights: the code-byte layout (lutrt.h LUTRT_LAYOUT_CODE_BYTES, what lut-pack-weights
gives 8-bit GEMMs on int8 tables) against bit planes on the LUT kernel, same weights and
activations, calls interleaved.

    .venv/bin/python bench/bench_code_bytes.py [--threads 1,2] [--m 1,16] [--shapes 49152x576,...]

Shapes (N x K): SmolLM2-135M's tied Q8_0 head, a SmolLM2 MLP projection, a 7B-sized square.
Mirrored codes, group 32, the implicit zero point of GGUF Q8_0, per-table int8 tables (the
default). Bit planes run with the int8-activation path off (lutrt_set_i8act_min_m(0)), i.e. the
LUT kernel a decode step ran before; code bytes run the int8-activation kernel at every M.
Prints median µs per call, the weight bytes streamed per second and the ratio planes / code
bytes; then the default against the old default (issue 10: at most 10% slower): code bytes /
bit planes on int8 tables with one scale per 32 activations. Writes
bench/results/code_bytes.json.
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
GROUP, BITS = 32, 8


def calls(rng, m: int, n: int, k: int, threads: int) -> tuple[dict, int]:
    q = rng.integers(0, 1 << BITS, (n, k)).astype(np.uint8)
    s = (rng.random((n, k // GROUP)) * 0.02 + 0.01).astype(np.float32)
    s_sym, z_sym = packing.mirror_scales(s, 128.0, BITS)
    planes = packing.pack_weights(packing.bit_planes(q, BITS, True))
    code_bytes = packing.pack_code_bytes(q)
    x = rng.standard_normal((m, k)).astype(np.float32)
    t = kernels.precompute(x, group=GROUP, entries=8, table_i8=True, scale_group=4)
    t32 = kernels.precompute(x, group=GROUP, entries=8, table_i8=True, scale_group=32)
    common = dict(n=n, bits=BITS, zimp=float(z_sym), threads=threads)
    out = {"planes": kernels.MmaCall(t, planes, s_sym, None, **common),
           "code_bytes": kernels.MmaCall(t, code_bytes, s_sym, None, layout="code_bytes", **common),
           # its own copy: every call streams its own weights (a shared array would stay in L3
           # between its two calls of a round and favour the bit planes)
           "planes_sg32": kernels.MmaCall(t32, planes.copy(), s_sym, None, **common)}
    return out, planes.nbytes + s_sym.nbytes


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--m", default="1,16")
    ap.add_argument("--shapes", default="49152x576,1536x576,4096x4096")
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args(argv)
    rows = []
    print(f"code-byte kernel: {kernels.code_bytes_kernel_name()}, LUT kernel: {kernels.kernel_name()}")
    print("       N     K    M threads | planes µs  GB/s | code bytes µs  GB/s | ratio "
          "| sg32 planes µs | code bytes / sg32 planes")
    for shape in args.shapes.split(","):
        n, k = (int(v) for v in shape.split("x"))
        for m in (int(v) for v in args.m.split(",")):
            for th in (int(v) for v in args.threads.split(",")):
                c, nbytes = calls(np.random.default_rng(n + k + m), m, n, k, th)
                times = {name: [] for name in c}
                reps = args.repeats if n * k < 1 << 24 or m == 1 else max(4, args.repeats // 8)
                for _ in range(reps):
                    for name, call in c.items():
                        kernels.set_i8act_min_m(0 if name.startswith("planes") else None)
                        t0 = time.perf_counter()
                        call()
                        times[name].append(time.perf_counter() - t0)
                kernels.set_i8act_min_m(None)
                p, b, old = (float(np.median(times[name]) * 1e6)
                             for name in ("planes", "code_bytes", "planes_sg32"))
                rows.append({"N": n, "K": k, "M": m, "threads": th, "planes_us": p,
                             "code_bytes_us": b, "planes_sg32_us": old, "weight_bytes": nbytes,
                             "ratio": p / b, "default_over_old_default": b / old})
                print(f"{n:8} {k:5} {m:4} {th:7} | {p:9.0f} {nbytes / p / 1e3:5.1f} | "
                      f"{b:13.0f} {nbytes / b / 1e3:5.1f} | {p / b:5.2f} | {old:14.0f} | "
                      f"{b / old:5.2f}", flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "code_bytes.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d"), "code_bytes_kernel": kernels.code_bytes_kernel_name(),
         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
