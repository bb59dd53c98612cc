"""Kernel benchmark: lutc's LUT mpGEMM (lutrt) against fp32 and low-bit CPU baselines.

    .venv/bin/python bench/bench_kernels.py [--quick] [--out bench/results/kernels.json]

For (K, N) in (4096, 4096), (4096, 11008), (11008, 4096), M = 1 (GEMV), 32 and 128, 1 and 2
threads, it measures the median time of one call:
  * lutc: precompute (int8 tables, 8-entry mirrored, one scale per table: the pipeline's default;
    from M = 3 on AVX512-VNNI CPUs lutrt_mma takes the int8-activation kernel, as in a model) + mma,
    weights 1/2/4-bit and ternary, group 128, no zero tensor; hot (same weights every call) and
    cold (rotating over enough weight copies to exceed 48 MiB, more than the 32 MiB L3);
  * numpy f32 matmul, torch f32 linear, onnxruntime fp32 MatMul (f32 weights of 64+ MiB never
    fit in cache, so they are effectively cold);
  * onnxruntime com.microsoft MatMulNBits, 2 and 4 bits, block 128, accuracy_level 0 and 4,
    hot, and cold (rotating sessions) for GEMV where the kernel is not compute-bound.
It also measures the read bandwidth (C streaming read, 8 streams per thread) and prints the
memory bound of each lutc GEMV (packed weight bytes / bandwidth) and the precompute share.
Results go to bench/results/kernels.json (and kernels.png when matplotlib is installed).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import glob
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _import_runtime():
    """lutc.runtime, from the installed package or, failing that, straight from the tree."""
    try:
        from lutc.runtime import build, kernels, packing
    except ModuleNotFoundError:
        import importlib.util
        import types

        pkg = types.ModuleType("lutc")
        pkg.__path__ = [str(REPO / "lutc_init")]
        sys.modules["lutc"] = pkg
        spec = importlib.util.spec_from_file_location(
            "lutc.runtime", REPO / "runtime" / "__init__.py",
            submodule_search_locations=[str(REPO / "runtime")])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["lutc.runtime"] = mod
        spec.loader.exec_module(mod)
        from lutc.runtime import build, kernels, packing
    return build, kernels, packing


build, kernels, packing = _import_runtime()

GROUP = 128        # weight group (= MatMulNBits block_size)
SCALE_GROUP = 4    # int8 table scale group: one scale per table (lut-quantize-table's default)
COLD_BYTES = 64 << 20  # rotate over > 48 MiB of weights for "cold"

# ---- timing --------------------------------------------------------------------------------


QUICK = False  # --quick: shorter timing loops


def timeit(calls, min_time=None, min_reps=5, max_reps=400, max_time=3.0):
    """Median seconds of one call; `calls` rotate (one entry: hot). One untimed warm-up pass."""
    if min_time is None:
        min_time = 0.1 if QUICK else 0.25
    if QUICK:
        min_reps = min(min_reps, 3)
    for c in calls:
        c()
    times = []
    t_start = time.perf_counter()
    i = 0
    while len(times) < max_reps:
        now = time.perf_counter()
        if len(times) >= min_reps and now - t_start >= min_time:
            break
        if len(times) >= 2 and now - t_start >= max_time:
            break
        c = calls[i % len(calls)]
        i += 1
        t0 = time.perf_counter()
        c()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def timeit_interleaved(variants: dict, min_time=None, min_reps=5, max_time=4.0):
    """Median seconds per variant, measured round-robin (one call of each in turn) so that
    load from other processes hits all variants alike. `variants`: name -> rotating calls."""
    if min_time is None:
        min_time = 0.15 if QUICK else 0.4
    if QUICK:
        min_reps = min(min_reps, 3)
    for calls in variants.values():
        for c in calls:
            c()
    times = {name: [] for name in variants}
    t_start = time.perf_counter()
    i = 0
    while True:
        elapsed = time.perf_counter() - t_start
        if i >= min_reps and (elapsed >= min_time or elapsed >= max_time):
            break
        for name, calls in variants.items():
            c = calls[i % len(calls)]
            t0 = time.perf_counter()
            c()
            times[name].append(time.perf_counter() - t0)
        i += 1
    return {name: float(np.median(t)) for name, t in times.items()}


def settle():
    """Let other libraries' spinning worker threads go idle before the next measurement."""
    gc.collect()
    time.sleep(0.15)


# ---- read bandwidth ------------------------------------------------------------------------

BW_C = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stddef.h>
/* Reads `bytes` as `streams` interleaved sequential streams per thread (like the GEMV). */
typedef struct { const uint8_t *p; size_t bytes; int streams; uint64_t out; } job_t;
static void *run(void *arg) {
    job_t *j = arg;
    size_t per = j->bytes / j->streams / 64 * 64;
    __m256i acc = _mm256_setzero_si256();
    for (size_t off = 0; off < per; off += 64)
        for (int s = 0; s < j->streams; s++) {
            const __m256i *q = (const __m256i *)(j->p + s * per + off);
            acc = _mm256_add_epi64(acc, _mm256_xor_si256(_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)));
        }
    j->out = (uint64_t)_mm256_extract_epi64(acc, 0);
    return 0;
}
uint64_t read_stream(const uint8_t *p, size_t bytes, int threads, int streams) {
    pthread_t t[64]; job_t j[64]; uint64_t r = 0;
    size_t per = bytes / threads;
    for (int i = 0; i < threads; i++) {
        j[i] = (job_t){p + i * per, per, streams, 0};
        if (i) pthread_create(&t[i], 0, run, &j[i]);
    }
    run(&j[0]);
    for (int i = 1; i < threads; i++) pthread_join(t[i], 0);
    for (int i = 0; i < threads; i++) r += j[i].out;
    return r;
}
"""


def read_bandwidth(threads_list, nbytes=256 << 20):
    """{threads: bytes/s} of a streaming read (C, AVX2 loads, 8 streams per thread), and the
    numpy-sum bandwidth for reference."""
    out_dir = build.cache_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "read_stream.c"
    src.write_text(BW_C)
    so = build.compile_shared([src], out_dir / "libread_stream.so", extra_cflags=["-mavx2"])
    lib = ctypes.CDLL(str(so))
    lib.read_stream.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    lib.read_stream.restype = ctypes.c_uint64
    buf = np.ones(nbytes, np.uint8)
    res = {}
    for t in threads_list:
        sec = timeit([lambda t=t: lib.read_stream(buf.ctypes.data, nbytes, t, 8)], min_reps=7)
        res[t] = nbytes / sec
    f = buf.view(np.float32)
    res["numpy_sum_1t"] = nbytes / timeit([lambda: f.sum()], min_reps=5)
    return res


# ---- baselines -----------------------------------------------------------------------------

def _openblas_set_threads():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


SET_BLAS_THREADS = _openblas_set_threads()


def ort_session(model, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ort_matmul_model(w_kn, m):
    from onnx import TensorProto, helper, numpy_helper

    k, n = w_kn.shape
    node = helper.make_node("MatMul", ["A", "B"], ["Y"])
    g = helper.make_graph([node], "mm", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
                          initializer=[numpy_helper.from_array(w_kn, "B")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def ort_mnb_model(rng, m, k, n, bits, acc):
    """MatMulNBits with random packed weights [N, K/128, 128*bits/8] and scales [N*K/128]
    (no zero points: the default 2^(bits-1))."""
    from onnx import TensorProto, helper, numpy_helper

    nb = k // GROUP
    b = rng.integers(0, 256, (n, nb, GROUP * bits // 8), dtype=np.uint8)
    s = (rng.random(n * nb, dtype=np.float32) * 0.01).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft",
                            K=k, N=n, bits=bits, block_size=GROUP, accuracy_level=acc)
    g = helper.make_graph([node], "mnb", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
                          initializer=[numpy_helper.from_array(b, "B"), numpy_helper.from_array(s, "scales")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21),
                                                helper.make_opsetid("com.microsoft", 1)])
    return model, b.nbytes + s.nbytes


# ---- lutc ----------------------------------------------------------------------------------

class LutcWeights:
    """Packed weights of one (K, N, bits) plus extra random copies for cold runs; copy 0 holds
    real codes (checked against numpy once)."""

    def __init__(self, rng, k, n, bits, ternary, copies):
        self.k, self.n, self.bits = k, n, bits
        q = rng.integers(0, 3 if ternary else 1 << bits, (n, k)).astype(np.uint8)
        s = (rng.random((n, -(-k // GROUP))) * 0.01 + 0.005).astype(np.float32)
        zimp = 1.0 if ternary else float(1 << (bits - 1))
        codes = packing.mirror_codes(packing.codes_from_q(q, bits))
        s_sym, self.zimp = packing.mirror_scales(s, zimp, bits)  # symmetrization (§3.3)
        self.q, self.s, self.zimp_orig = q, s, zimp
        w0 = packing.pack_weights(codes)
        self.packed = [w0] + [rng.integers(0, 256, w0.size, dtype=np.uint8) for _ in range(copies - 1)]
        s0 = packing.pack_scales(s_sym)
        self.scales = [s0] + [(rng.random(s0.shape, dtype=np.float32) * 0.01).astype(np.float32)
                              for _ in range(copies - 1)]
        self.nbytes = w0.nbytes
        self.scale_nbytes = s0.nbytes

    def check(self, x, out):
        """NMSE of the lutc output (copy 0) against dequantize-then-matmul."""
        w = self.s.repeat(GROUP, axis=1)[:, : self.k] * (self.q.astype(np.float32) - self.zimp_orig)
        ref = x.astype(np.float64) @ w.T.astype(np.float64)
        return float(np.mean((out - ref) ** 2) / np.mean(ref**2))


def bench_lutc(w: LutcWeights, x, threads, strategy=None):
    pre = kernels.PrecomputeCall(x, group=GROUP, entries=8, table_i8=True,
                                 scale_group=SCALE_GROUP, threads=threads)
    tables = pre()
    mmas = [kernels.MmaCall(tables, p, s, None, n=w.n, bits=w.bits, zimp=w.zimp, threads=threads,
                            strategy=strategy)
            for p, s in zip(w.packed, w.scales)]

    def step(mma):
        return lambda: (pre(), mma())

    t = timeit_interleaved({"precompute": [pre], "hot": [step(mmas[0])],
                            "cold": [step(m) for m in mmas]})
    res = {"precompute_us": t["precompute"] * 1e6, "hot_us": t["hot"] * 1e6,
           "cold_us": t["cold"] * 1e6}
    pre()
    res["nmse_vs_f32"] = w.check(x, mmas[0]()) if x.shape[0] == 1 else None
    return res


# ---- driver --------------------------------------------------------------------------------

LUTC_BITS = [("w1", 1, False), ("w2", 2, False), ("ternary", 2, True), ("w4", 4, False)]
VEC_LUT_M = (32, 128)
VEC_LUT_BITS = ("w2", "ternary")


def run_vec_lut(repeats: int) -> list[dict]:
    """Per-token vs Vec-LUT lut.mma (precompute excluded: it is shared), hot weights,
    K = N = 4096: `repeats` rounds, each timing every variant once in turn (A/B interleaved, so
    a concurrent load hits all alike); medians of the rounds."""
    rng = np.random.default_rng(0)
    k = n = 4096
    records = []
    for name, bits, ternary in [b for b in LUTC_BITS if b[0] in VEC_LUT_BITS]:
        w = LutcWeights(rng, k, n, bits, ternary, 1)
        for m in VEC_LUT_M:
            x = rng.standard_normal((m, k), dtype=np.float32)
            tables = kernels.precompute(x, group=GROUP, entries=8, table_i8=True,
                                        scale_group=SCALE_GROUP)
            calls = {(st, th): kernels.MmaCall(tables, w.packed[0], w.scales[0], None, n=n,
                                               bits=bits, zimp=w.zimp, threads=th, strategy=st)
                     for st in ("per_token", "vec_lut") for th in (1, 2)}
            out = {key: c().copy() for key, c in calls.items()}
            err = np.abs(out["vec_lut", 1] - out["per_token", 1]).max()
            assert err <= 1e-5 * np.abs(out["per_token", 1]).max(), "vec-lut != per-token"
            times = {key: [] for key in calls}
            for _ in range(repeats):
                for key, c in calls.items():
                    t0 = time.perf_counter()
                    c()
                    times[key].append(time.perf_counter() - t0)
            med = {key: float(np.median(v)) * 1e3 for key, v in times.items()}
            for (st, th), ms in med.items():
                records.append(dict(K=k, N=n, M=m, threads=th, bits=name, strategy=st, ms=ms,
                                    all_ms=[t * 1e3 for t in times[st, th]]))
            print(f"{name:<8} M={m:<4} " + "  ".join(
                f"{th}t: per-token {med['per_token', th]:7.2f} ms  vec-lut {med['vec_lut', th]:7.2f} ms "
                f"({med['per_token', th] / med['vec_lut', th]:.2f}x)" for th in (1, 2)) +
                f"   2t/1t: per-token {med['per_token', 1] / med['per_token', 2]:.2f}x"
                f"  vec-lut {med['vec_lut', 1] / med['vec_lut', 2]:.2f}x", flush=True)
    return records
MNB = [(2, 0), (2, 4), (4, 0), (4, 4)]


def run(quick: bool):
    import onnxruntime
    import torch

    global QUICK
    QUICK = quick
    rng = np.random.default_rng(0)
    threads_list = [1, 2]
    shapes = [(4096, 4096)] if quick else [(4096, 4096), (4096, 11008), (11008, 4096)]
    ms = [1, 32] if quick else [1, 32, 128]
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "lutc_kernel": kernels.kernel_name(), "numpy": np.__version__,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "group": GROUP, "scale_group": SCALE_GROUP, "quick": quick}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"lutc kernel benchmark — {info['cpu']}, {info['cores']} cores, lutrt kernel "
          f"{info['lutc_kernel']}, numpy {np.__version__}, torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}", flush=True)
    bw = read_bandwidth(threads_list)
    print("read bandwidth (C, 8 streams/thread): " +
          ", ".join(f"{t} thread{'s' if t > 1 else ''} {bw[t] / 1e9:.1f} GB/s" for t in threads_list) +
          f"; numpy sum {bw['numpy_sum_1t'] / 1e9:.1f} GB/s", flush=True)
    records = []

    for k, n in shapes:
        lutc_bits = LUTC_BITS
        weights = {}
        for name, bits, ternary in lutc_bits:
            nbytes = packing.packed_nbytes(bits, n, k)
            weights[name] = LutcWeights(rng, k, n, bits, ternary, max(2, -(-COLD_BYTES // nbytes)))
        w32 = (rng.standard_normal((n, k), dtype=np.float32) * 0.02).astype(np.float32)
        w32_kn = np.ascontiguousarray(w32.T)
        for m in ms:
            x = rng.standard_normal((m, k), dtype=np.float32)
            for th in threads_list:
                head = dict(K=k, N=n, M=m, threads=th)
                for name, bits, _ in lutc_bits:
                    if quick and m > 1 and name not in ("w2", "w4"):
                        continue
                    w = weights[name]
                    r = bench_lutc(w, x, th)
                    bound = (w.nbytes / bw[th] * 1e6) if m == 1 else None
                    records.append(dict(head, method=f"lutc {name}", bits=name, **r,
                                        weight_bytes=w.nbytes, scale_bytes=w.scale_nbytes,
                                        mem_bound_us=bound))
                    if (k, n) == (4096, 4096) and m in VEC_LUT_M and name in VEC_LUT_BITS:
                        r = bench_lutc(w, x, th, strategy="vec_lut")
                        records.append(dict(head, method=f"lutc vec-lut {name}", bits=name, **r,
                                            weight_bytes=w.nbytes, scale_bytes=w.scale_nbytes,
                                            mem_bound_us=None))
                settle()
                # fp32 baselines (weights >= 64 MiB: no cache reuse between calls)
                if SET_BLAS_THREADS:
                    SET_BLAS_THREADS(th)
                t = timeit([lambda: x @ w32.T], min_reps=3) * 1e6
                records.append(dict(head, method="numpy f32", bits="f32", hot_us=t, cold_us=t))
                settle()
                torch.set_num_threads(th)
                xt, wt = torch.from_numpy(x), torch.from_numpy(w32)
                with torch.inference_mode():
                    t = timeit([lambda: torch.nn.functional.linear(xt, wt)], min_reps=3) * 1e6
                records.append(dict(head, method="torch f32", bits="f32", hot_us=t, cold_us=t))
                settle()
                sess = ort_session(ort_matmul_model(w32_kn, m), th)
                t = timeit([lambda: sess.run(None, {"A": x})], min_reps=3) * 1e6
                records.append(dict(head, method="ort MatMul f32", bits="f32", hot_us=t, cold_us=t))
                del sess
                settle()
                for bits, acc in MNB:
                    if quick and m > 1 and (bits, acc) == (2, 0):
                        continue  # a dequantize-per-call path, ~0.1-0.5 s per call
                    model, nbytes = ort_mnb_model(rng, m, k, n, bits, acc)
                    sess = ort_session(model, th)
                    hot = timeit([lambda s=sess: s.run(None, {"A": x})], min_reps=3) * 1e6
                    cold = None
                    if m == 1 and hot < 5000 and not (quick and acc == 0):  # rotate sessions
                        sessions = [sess] + [ort_session(ort_mnb_model(rng, m, k, n, bits, acc)[0], th)
                                             for _ in range(-(-COLD_BYTES // nbytes) - 1)]
                        t = timeit_interleaved({
                            "hot": [lambda: sess.run(None, {"A": x})],
                            "cold": [lambda s=s: s.run(None, {"A": x}) for s in sessions]})
                        hot, cold = t["hot"] * 1e6, t["cold"] * 1e6
                        del sessions
                    records.append(dict(head, method=f"ort MatMulNBits w{bits} acc{acc}",
                                        bits=f"w{bits}", hot_us=hot,
                                        cold_us=cold if cold is not None else hot,
                                        cold_is_hot=cold is None, weight_bytes=nbytes))
                    del sess
                    settle()
                print_block(records, head, bw)
        del weights, w32, w32_kn
        gc.collect()
    return info, {str(t): bw[t] for t in threads_list} | {"numpy_sum_1t": bw["numpy_sum_1t"]}, records


def print_block(records, head, bw):
    rows = [r for r in records if all(r[key] == head[key] for key in head)]
    k, n, m, th = head["K"], head["N"], head["M"], head["threads"]
    lut = {r["bits"]: r for r in rows if r["method"] == f"lutc {r['bits']}"}
    print(f"\nK={k} N={n} M={m} threads={th}" +
          (f"   read BW {bw[th] / 1e9:.1f} GB/s" if m == 1 else ""))
    print(f"  {'method':<28}{'hot us':>10}{'cold us':>10}{'vs lutc (cold)':>16}   notes")
    for r in rows:
        ref = lut.get(r["bits"]) or lut.get("w2")
        ratio = r["cold_us"] / ref["cold_us"] if ref else float("nan")
        notes = ""
        if r["method"].startswith("lutc"):
            share = r["precompute_us"] / r["hot_us"]
            notes = f"precompute {r['precompute_us']:.0f} us ({share:.1%} of hot)"
            if r.get("mem_bound_us"):
                notes += (f"; bound {r['mem_bound_us']:.0f} us = {r['weight_bytes'] / 2**20:.1f} MiB"
                          f"/BW -> {r['mem_bound_us'] / r['cold_us']:.0%} of bound")
            if r.get("nmse_vs_f32") is not None:
                notes += f"; NMSE {r['nmse_vs_f32']:.1e}"
        elif r.get("cold_is_hot"):
            notes = "cold not rotated (compute-bound)"
        elif r["bits"] == "f32":
            notes = "f32 weights exceed L3: cold"
        print(f"  {r['method']:<28}{r['hot_us']:>10.0f}{r['cold_us']:>10.0f}{ratio:>15.2f}x   {notes}",
              flush=True)


def plot(records, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    sel = [r for r in records if r["M"] == 1 and r["K"] == 4096 and r["N"] == 4096]
    fig, ax = plt.subplots(figsize=(10, 5))
    methods = sorted({r["method"] for r in sel}, key=lambda s: (not s.startswith("lutc"), s))
    for i, th in enumerate((1, 2)):
        vals = [next((r["cold_us"] for r in sel if r["method"] == mth and r["threads"] == th), 0)
                for mth in methods]
        ax.bar(np.arange(len(methods)) + 0.4 * i, vals, 0.4, label=f"{th} thread(s)")
    ax.set_xticks(np.arange(len(methods)) + 0.2, methods, rotation=60, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("GEMV 4096x4096 cold, us (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot: {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one shape, M = 1 and 32 (< 60 s)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "kernels.json"))
    ap.add_argument("--vec-lut", action="store_true",
                    help="only per-token vs Vec-LUT (A/B interleaved medians)")
    ap.add_argument("--repeats", type=int, default=9, help="rounds for --vec-lut")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.vec_lut:
        records = run_vec_lut(args.repeats)
        out = Path(args.out).with_name("vec_lut.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"cpu_kernel": kernels.kernel_name(), "results": records},
                                  indent=1))
        print(f"results: {out} ({time.time() - t0:.0f} s)")
        return
    info, bw, records = run(args.quick)
    info["seconds"] = time.time() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"info": info, "bandwidth_Bps": bw, "results": records}, indent=1))
    print(f"\nresults: {out} ({info['seconds']:.0f} s)")
    plot(records, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
