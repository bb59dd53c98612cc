"""Large-M lut.mma: the LUT kernel against the int8-activation kernels (AVX512-VNNI, AMX-INT8).

    .venv/bin/python bench/bench_large_m.py [--quick] [--repeats 5] [--groups 32,128,0]
                                            [--out bench/results/large_m.json]
    .venv/bin/python bench/bench_large_m.py --sweep [--repeats 7]    # the threshold table

For GEMM M = 32 / 128 / 512 at N = K = 4096, and the SmolLM2-135M shapes (K = 576 with
N = 576 / 1536 / 49152, and the down projection K = 1536, N = 576) at M = 32 and 128, weights
w2 / w4 / w8 (group 32 unless --groups says otherwise, 0 = per-tensor like BitNet; explicit
zero points, symmetrized tables: what lutc compiles a Q4_1 model to), 1 and 2 threads, it
times one lut.mma call on the same int8 tables each way: the LUT kernel
(lutrt_set_i8act_min_m(0)) and the int8-activation kernel (lutrt_set_i8act_min_m(1)) on
AVX512-VNNI and, where the CPU and OS allow it, on AMX-INT8 (lutrt_set_i8act_kernel).
Repeats are interleaved (LUT, VNNI, AMX, LUT, ...) and the medians reported, wall clock and
process CPU time (the latter is less disturbed by other load on a shared machine). Prints
the ratio LUT / VNNI (> 1: the VNNI kernel is faster), GOP/s (2 M N K / time), and with AMX
its time, LUT / AMX, VNNI / AMX and GOP/s.

--sweep measures what LUTRT_I8ACT_MIN_M / _NARROW are set from: M = 2..32 and 128, w2 / w4 /
w8, N = K = 4096 and the SmolLM2 shapes (K = 576, N = 576 / 1536 / 49152), 1 thread, the LUT
kernel on per-table tables (scale group 4, lut-quantize-table's default) against the
int8-activation kernel, and prints the process-CPU-time ratio LUT / VNNI per M (to
bench/results/large_m_sweep.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from bench_kernels import kernels, packing  # noqa: E402  (lutc.runtime, tree or installed)

GROUP = 32


def make_call(rng, m, n, k, bits, threads, scale_group=4, group=GROUP):
    """One lut.mma call; group: weight group size (0: per-tensor, one group of K)."""
    group = group or k
    x = rng.standard_normal((m, k)).astype(np.float32)
    q = rng.integers(0, 1 << bits, (n, k)).astype(np.uint8)
    ng = -(-k // group)
    s = (rng.random((n, ng)) * 0.02 + 0.01).astype(np.float32)
    z = (rng.random((n, ng)) * ((1 << bits) - 1)).astype(np.float32)
    codes = packing.mirror_codes(packing.codes_from_q(q, bits))
    s_sym, z_sym = packing.mirror_scales(s, z, bits)
    t = kernels.precompute(x, group=group, entries=8, table_i8=True, scale_group=scale_group)
    return kernels.MmaCall(t, packing.pack_weights(codes), s_sym, z_sym, n=n, bits=bits,
                           threads=threads)


def routes():
    """The routes this CPU runs: the LUT kernel and each int8-activation kernel it has."""
    have = []
    for name in ("avx512vnni", "amx"):
        try:
            kernels.set_i8act_kernel(name)
            have.append("vnni" if name == "avx512vnni" else "amx")
        except Exception:
            pass
    kernels.set_i8act_kernel(None)
    return ["lut", *have]


def use_route(v):
    kernels.set_i8act_min_m(0 if v == "lut" else 1)
    kernels.set_i8act_kernel({"lut": None, "vnni": "avx512vnni", "amx": "amx"}[v])


def measure(m, n, k, bits, threads, repeats, names=("lut", "vnni"), group=GROUP):
    rng = np.random.default_rng(m * 7 + n + k + bits)
    # the same tables and weights every route
    call = make_call(rng, m, n, k, bits, threads, group=group)
    wall = {v: [] for v in names}
    cpu = {v: [] for v in names}
    for v in names:  # warm-up (page faults, pool start)
        use_route(v)
        call()
    for _ in range(repeats):
        for v in names:
            use_route(v)
            w0, c0 = time.perf_counter(), time.process_time()
            call()
            wall[v].append(time.perf_counter() - w0)
            cpu[v].append(time.process_time() - c0)
    kernels.set_i8act_min_m(None)
    kernels.set_i8act_kernel(None)
    rec = dict(M=m, N=n, K=k, bits=bits, threads=threads)
    for v in names:
        rec[f"{v}_us"] = float(np.median(wall[v]) * 1e6)
        rec[f"{v}_cpu_us"] = float(np.median(cpu[v]) * 1e6)
    rec["ratio"] = rec["lut_us"] / rec["vnni_us"]
    rec["ratio_cpu"] = rec["lut_cpu_us"] / rec["vnni_cpu_us"]
    rec["vnni_gops"] = 2.0 * m * n * k / rec["vnni_us"] / 1e3
    if "amx" in names:
        rec["amx_vs_lut"] = rec["lut_us"] / rec["amx_us"]
        rec["amx_vs_vnni"] = rec["vnni_us"] / rec["amx_us"]
        rec["amx_gops"] = 2.0 * m * n * k / rec["amx_us"] / 1e3
    return rec


SWEEP_M = (2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 128)
SWEEP_NK = ((4096, 4096), (576, 576), (1536, 576), (49152, 576))


def sweep(bits_list, repeats, out):
    """The threshold table: ratio LUT / VNNI (process CPU time) per M, 1 thread."""
    print(f"{'N':>6} {'K':>5} {'w':>2} | " + " ".join(f"{m:>5}" for m in SWEEP_M))
    records = []
    for n, k in SWEEP_NK:
        for bits in bits_list:
            ratios = []
            for m in SWEEP_M:
                r = measure(m, n, k, bits, 1, repeats)
                records.append(r)
                ratios.append(r["ratio_cpu"])
            print(f"{n:>6} {k:>5} {bits:>2} | " + " ".join(f"{v:>5.2f}" for v in ratios),
                  flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                               "scale_group": 4, "records": records}, indent=1))
    print(f"wrote {out}")


def shapes(quick):
    if quick:
        return [(128, 4096, 4096), (128, 576, 576)]
    gemm = [(m, 4096, 4096) for m in (32, 128, 512)]
    smollm = [(m, n, k) for m in (32, 128) for n, k in ((576, 576), (1536, 576), (49152, 576),
                                                       (576, 1536))]
    return gemm + smollm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two shapes, w4 only")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--bits", default="2,4,8")
    ap.add_argument("--groups", default="32",
                    help="weight group sizes, 0 = per-tensor (activation groups follow: "
                         "lutrt_act_group, up to 128)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--sweep", action="store_true",
                    help="the threshold table: M = 2..32, 128, 1 thread, per-table tables")
    args = ap.parse_args(argv)
    kernels.set_i8act_min_m(1)
    if kernels.i8act_min_m(4) != 1:
        print("this CPU has no AVX512-VNNI: the int8-activation kernel is not available")
        return 0
    kernels.set_i8act_min_m(None)
    bits_list = [4] if args.quick else [int(b) for b in args.bits.split(",")]
    results = REPO / "bench" / "results"
    if args.sweep:
        sweep(bits_list, args.repeats, Path(args.out or results / "large_m_sweep.json"))
        return 0
    records = []
    names = routes()
    amx = "amx" in names
    print(f"{'M':>4} {'N':>6} {'K':>5} {'w':>2} {'G':>4} {'thr':>3} | {'LUT us':>9} {'VNNI us':>9} "
          f"{'ratio':>6} | {'LUT cpu':>9} {'VNNI cpu':>9} {'ratio':>6} | {'GOP/s':>6}"
          + (f" | {'AMX us':>9} {'/LUT':>5} {'/VNNI':>5} {'GOP/s':>6}" if amx else ""))
    for m, n, k in shapes(args.quick):
        for bits, group in [(b, int(g)) for b in bits_list for g in args.groups.split(",")]:
            for threads in [int(t) for t in args.threads.split(",")]:
                r = measure(m, n, k, bits, threads, args.repeats, names, group)
                r["group"] = group
                records.append(r)
                print(f"{m:>4} {n:>6} {k:>5} {bits:>2} {group or 'K':>4} {threads:>3} | "
                      f"{r['lut_us']:>9.0f} "
                      f"{r['vnni_us']:>9.0f} {r['ratio']:>6.2f} | {r['lut_cpu_us']:>9.0f} "
                      f"{r['vnni_cpu_us']:>9.0f} {r['ratio_cpu']:>6.2f} | {r['vnni_gops']:>6.0f}"
                      + (f" | {r['amx_us']:>9.0f} {r['amx_vs_lut']:>5.2f} {r['amx_vs_vnni']:>5.2f}"
                         f" {r['amx_gops']:>6.0f}" if amx else ""),
                      flush=True)
    out = Path(args.out or results / "large_m.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                               "default_min_m": {b: kernels.i8act_min_m(b) for b in bits_list},
                               "records": records}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
