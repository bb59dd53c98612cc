"""`lutc demo`: compile a small built-in low-bit MLP through the whole stack and run it.

The model is an ONNX graph made here from a fixed seed (MatMul + Add + Relu + MatMul + Add,
512 -> 1024 -> 512, 16 tokens). Its float weights are quantized by lutc to 2-bit, group 64.
Accuracy is measured against a numpy forward pass over the *dequantized* weights (the lossless
reference: the only error left is the LUT path's own) and, for information, against the float
model; speed against that numpy forward on the same machine.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from lutc.compiler.frontends.quantize import WeightSpec, quantize

SPEC = "w2g64"
M, D, H = 16, 512, 1024


def demo_model(seed: int = 0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)  # ONNX MatMul: [K, N]
    b1 = (0.1 * rng.standard_normal(H)).astype(np.float32)
    w2 = (rng.standard_normal((H, D)) / np.sqrt(H)).astype(np.float32)
    b2 = (0.1 * rng.standard_normal(D)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(w1, "fc1.weight"), (b1, "fc1.bias"), (w2, "fc2.weight"), (b2, "fc2.bias")]]
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "fc1.bias"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], name="act"),
        helper.make_node("MatMul", ["h2", "fc2.weight"], ["y0"], name="fc2"),
        helper.make_node("Add", ["y0", "fc2.bias"], ["y"], name="fc2_bias"),
    ]
    graph = helper.make_graph(
        nodes, "lutc_demo_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, D])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model, (w1, b1, w2, b2)


def reference_forward(x, params, spec: WeightSpec | None):
    """numpy forward pass; with `spec`, over lutc's dequantized weights (float64)."""
    w1, b1, w2, b2 = params
    if spec is not None:
        w1 = quantize(w1.T, spec).dequantize().T
        w2 = quantize(w2.T, spec).dequantize().T
    h = np.maximum(x.astype(np.float64) @ w1.astype(np.float64) + b1, 0.0)
    return h @ w2.astype(np.float64) + b2


def nmse(actual, reference) -> float:
    return float(np.mean((actual - reference) ** 2) / np.mean(reference**2))


def median_time(fn, repeats: int = 30) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def run_demo(workdir: Path, threads: int = 0) -> None:
    import onnx

    from lutc.compiler.api import compile_model
    from lutc.runtime.model_loader import CompiledModel

    workdir.mkdir(parents=True, exist_ok=True)
    model, params = demo_model()
    onnx_path = workdir / "demo_mlp.onnx"
    onnx.save(model, onnx_path)
    spec = WeightSpec.parse(SPEC)
    x = np.random.default_rng(1).standard_normal((M, D)).astype(np.float32)
    dequant_ref = reference_forward(x, params, spec)
    float_ref = reference_forward(x, params, None)
    print(f"lutc demo: MLP {D}->{H}->{D}, {M} tokens, weights {SPEC} (quantized by lutc)")

    from lutc.compiler.pipeline import DEFAULT_PASSES
    from lutc.passes import PASSES

    configs = [("lossless (f32 tables)", ["lut-quantize-table"]), ("default pipeline", [])]
    rows = []
    for label, disabled in configs:
        disabled = [p for p in disabled if p in PASSES]
        outdir = workdir / label.split()[0]
        t0 = time.perf_counter()
        compile_model(onnx_path, outdir, weights=SPEC, disabled=disabled, out=lambda s: None)
        compile_s = time.perf_counter() - t0
        compiled = CompiledModel(outdir)
        if threads:
            compiled.set_num_threads(threads)
        (y,) = compiled(x)
        seconds = median_time(lambda: compiled(x))
        rows.append((label, nmse(y, dequant_ref), nmse(y, float_ref), seconds, compile_s))
    w1, b1, w2, b2 = params
    numpy_s = median_time(lambda: np.maximum(x @ w1 + b1, 0.0) @ w2 + b2)
    passes = [p for p in DEFAULT_PASSES if p in PASSES]
    print(f"passes: {', '.join(passes)}")
    print(f"{'pipeline':24} {'NMSE vs dequantized':>20} {'NMSE vs float':>14} "
          f"{'run (median)':>13} {'compile':>8}")
    for label, e_deq, e_float, seconds, compile_s in rows:
        print(f"{label:24} {e_deq:20.2e} {e_float:14.2e} {seconds * 1e6:10.0f} us "
              f"{compile_s:7.2f}s")
    print(f"{'numpy f32 forward':24} {'':20} {'':14} {numpy_s * 1e6:10.0f} us")
    lossless = rows[0][1]
    verdict = "PASS" if lossless <= 1e-6 else "FAIL"
    print(f"{verdict}: lossless NMSE vs the dequantized reference {lossless:.2e} (bound 1e-6)")
    if lossless > 1e-6:
        raise SystemExit(1)
