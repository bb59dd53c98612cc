"""Lossless (f32-table) lut.mma against the int8-table default: is the lossless mode usable?

    .venv/bin/python bench/bench_lossless.py [--kernel avx512] [--repeats 15] [--bits 2 4]
                                             [--m 1 128] [--threads 1 2] [--with-ref]

K = N = 4096, group 128, mirrored (8-entry) tables, no zero tensor, hot weights. For each
(bits, M, threads) the lossless and int8 lut.mma calls (precompute excluded: it is a separate
op, and the same for both up to the table store) are timed round-robin — one call of each in
turn, `repeats` rounds — so load from other processes hits both alike; the table shows the
medians in µs and lossless/int8. `--with-ref` adds the scalar f32 kernel (lutrt_mma_f32_ref,
through LUTRT_KERNEL=ref semantics) for M = 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import kernels, packing  # noqa: E402  (the runtime, installed or in-tree)

K = N = 4096
GROUP = 128
SCALE_GROUP = 32


def weights(rng, bits):
    q = rng.integers(0, 1 << bits, (N, K)).astype(np.uint8)
    s = (rng.random((N, K // GROUP)) * 0.01 + 0.005).astype(np.float32)
    codes = packing.mirror_codes(packing.codes_from_q(q, bits))
    s_sym, zimp = packing.mirror_scales(s, float(1 << (bits - 1)), bits)  # symmetrization (§3.3)
    return packing.pack_weights(codes), packing.pack_scales(s_sym), zimp


def calls_for(rng, bits, m, threads, with_ref):
    packed, scales, zimp = weights(rng, bits)
    x = rng.standard_normal((m, K), dtype=np.float32)
    out = {}
    for mode, i8 in (("int8", True), ("lossless", False)):
        t = kernels.precompute(x, group=GROUP, entries=8, table_i8=i8, scale_group=SCALE_GROUP)
        out[mode] = kernels.MmaCall(t, packed, scales, None, n=N, bits=bits, zimp=zimp,
                                    threads=threads)
    if with_ref:
        out["ref"] = out["lossless"]
    return out


def timed(call, kernel):
    kernels.set_kernel(kernel)
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default=None, help="LUTRT kernel for both modes (default: auto)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--bits", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--m", type=int, nargs="+", default=[1, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--with-ref", action="store_true", help="also the scalar f32 kernel (M=1)")
    args = ap.parse_args(argv)
    kernels.set_kernel(args.kernel)
    kernel = kernels.kernel_name()
    print(f"lossless vs int8 lut.mma, K=N={K}, group {GROUP}, mirrored, kernel {kernel}, "
          f"medians of {args.repeats} interleaved rounds (µs)")
    head = f"{'bits':>4} {'M':>4} {'thr':>3} {'int8':>10} {'lossless':>10} {'ratio':>6}"
    print(head + (f" {'f32 ref':>11} {'ref/int8':>8}" if args.with_ref else ""), flush=True)
    rng = np.random.default_rng(0)
    for bits in args.bits:
        for m in args.m:
            for th in args.threads:
                calls = calls_for(rng, bits, m, th, args.with_ref and m == 1)
                kern = {"int8": kernel, "lossless": kernel, "ref": "ref"}
                for name, c in calls.items():  # warm-up
                    timed(c, kern[name])
                times = {name: [] for name in calls}
                for _ in range(args.repeats):
                    for name, c in calls.items():
                        times[name].append(timed(c, kern[name]))
                med = {name: float(np.median(v)) * 1e6 for name, v in times.items()}
                line = (f"{bits:>4} {m:>4} {th:>3} {med['int8']:>10.0f} {med['lossless']:>10.0f} "
                        f"{med['lossless'] / med['int8']:>6.2f}")
                if "ref" in med:
                    line += f" {med['ref']:>11.0f} {med['ref'] / med['int8']:>8.1f}"
                print(line, flush=True)
    kernels.set_kernel(None)


if __name__ == "__main__":
    main()
