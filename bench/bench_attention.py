"""Times lutrt_attention_kv: decode (S = 1) and a prefill chunk (S = 64) at several contexts,
for SmolLM2's attention shape (H=9, KVH=3, D=64) and a larger one (H=16, KVH=4, D=128), per
kernel and thread count. The timing loop is C (bench_attention.c), so no ctypes overhead.

    .venv/bin/python bench/bench_attention.py [--kernels ref,avx2,avx512] [--threads 1,2] [--layers 1]

--layers L: consecutive calls read the caches of L layers in turn (as a decode step's 30 layers
do), so that caches larger than the CPU's caches come from memory: SmolLM2's decode at context
1024 (1.5 MB of f32 K and V per layer) is then bound by the bytes read, not the arithmetic.

With --graph: a compiled float ONNX Attention block (opset 23, B=1, H=8, D=64, causal and
not, S = --graph-S) with the default pipeline (lut-fuse-attention: one lutrt_attention call)
and with --disable-pass lut-fuse-attention (the frontend's matmul / softmax / matmul loops),
medians of whole model calls, and onnxruntime's median on the same model for reference.

    .venv/bin/python bench/bench_attention.py --graph [--graph-S 128,512] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from lutc.runtime import build, kernels

SHAPES = [(9, 3, 64), (16, 4, 128)]


def attention_model(s: int, heads: int, d: int, causal: int):
    from onnx import TensorProto, helper

    shape = [1, heads, s, d]
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=causal)
    graph = helper.make_graph(
        [node], "attention_block",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def median_ms(fn, reps: int, budget_s: float = 20.0) -> float:
    fn()  # warm-up (pages, thread pool)
    times = []
    start = time.perf_counter()
    while len(times) < reps and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def graph_bench(sizes: list[int], threads: list[int], reps: int) -> None:
    import tempfile

    import numpy as np
    import onnx
    import onnxruntime as ort

    from lutc.compiler.api import compile_model
    from lutc.runtime.model_loader import CompiledModel

    heads, d = 8, 64
    print(f"{'S':>4} {'causal':>6} {'threads':>7} {'unfused ms':>10} {'fused ms':>9} "
          f"{'speedup':>7} {'ort ms':>7} {'max |diff|':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for s in sizes:
            for causal in (1, 0):
                model = attention_model(s, heads, d, causal)
                path = Path(tmp) / f"attn_{s}_{causal}.onnx"
                onnx.save(model, path)
                rng = np.random.default_rng(s)
                xs = [rng.standard_normal((1, heads, s, d)).astype(np.float32) for _ in range(3)]
                built = {}
                for name, disabled in (("fused", ()), ("unfused", ("lut-fuse-attention",))):
                    out = compile_model(str(path), Path(tmp) / f"{name}_{s}_{causal}",
                                        disabled=disabled, out=lambda *a: None)
                    built[name] = CompiledModel(out.parent if out.is_file() else out)
                options = ort.SessionOptions()
                for t in threads:
                    options.intra_op_num_threads = t
                    session = ort.InferenceSession(model.SerializeToString(), options,
                                                   providers=["CPUExecutionProvider"])
                    feed = dict(zip("qkv", xs))
                    ms = {}
                    for name, compiled in built.items():
                        try:
                            compiled.set_num_threads(t)
                        except AttributeError:  # no runtime call in it: the unfused loops
                            pass
                        ms[name] = median_ms(lambda: compiled(*xs), reps)
                    ms["ort"] = median_ms(lambda: session.run(None, feed), reps)
                    diff = float(np.abs(built["fused"](*xs)[0] - built["unfused"](*xs)[0]).max())
                    print(f"{s:>4} {causal:>6} {t:>7} {ms['unfused']:>10.2f} {ms['fused']:>9.3f} "
                          f"{ms['unfused'] / ms['fused']:>6.1f}x {ms['ort']:>7.3f} {diff:>10.2e}",
                          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=",".join(
        k for k in ("ref", "avx2", "avx512") if kernels.kernel_available(k)))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--contexts", default="128,1024")
    ap.add_argument("--S", default="1,64", help="query rows per call")
    ap.add_argument("--graph", action="store_true",
                    help="a compiled ONNX Attention block with and without lut-fuse-attention")
    ap.add_argument("--graph-S", default="128,512")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--layers", type=int, default=1, help="caches read in turn (1: one, hot)")
    args = ap.parse_args()
    if args.graph:
        graph_bench(list(map(int, args.graph_S.split(","))), list(map(int, args.threads.split(","))),
                    args.reps)
        return
    exe = build.runtime_executable(Path(__file__).with_name("bench_attention.c"))
    print(f"{'H/KVH/D':>10} {'S':>3} {'context':>7} {'kernel':>7} {'threads':>7} {'median us':>10} {'min us':>8}")
    for H, KVH, D in SHAPES:
        for S in map(int, args.S.split(",")):
            for ctx in map(int, args.contexts.split(",")):
                for kern in args.kernels.split(","):
                    for t in map(int, args.threads.split(",")):
                        med, low = subprocess.run([str(exe), str(H), str(KVH), str(D), str(ctx), str(S),
                                             str(t), kern, str(args.layers)], capture_output=True,
                                            text=True, check=True).stdout.split()
                        print(f"{f'{H}/{KVH}/{D}':>10} {S:>3} {ctx:>7} {kern:>7} {t:>7} {med:>10} {low:>8}",
                              flush=True)


if __name__ == "__main__":
    main()
