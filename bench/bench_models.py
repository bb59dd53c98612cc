"""End-to-end benchmark: a Llama-shaped model with random weights, lutc vs the libraries a user
would otherwise run it with, all measured in this run on this machine.

    .venv/bin/python bench/bench_models.py [--quick] [--threads 1,2]

Rows: lutc (ternary, w2g64; default pipeline = int8 tables; and ternary with
--disable-pass lut-fuse-precompute for the single token; on CPUs with AMX-INT8, ternary again
with the prefill GEMMs on the AVX512-VNNI kernel instead), torch f32 eager, onnxruntime f32,
onnxruntime MatMulNBits 4-bit and 2-bit (accuracy_level 4: int8 activations, its fastest CPU
path). Four workloads with static shapes: 16-, 128- and 512-token prefills (the longer ones
with fewer repeats: seconds per call for the float engines) and a single-token forward (the
GEMV-bound shape of a decode step; no KV cache, so attention is over one token).
Engines are timed in interleaved rounds (per round and engine: a 150 ms settle, an untimed
call, the timed call).
Prints medians (ms), tokens/s and ratios against lutc; saves bench/results/models.json.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bench_kernels import settle  # the bench folder is the script's (150 ms, gc first)

ROOT = Path(__file__).resolve().parent
AMX = False  # main(): the int8-activation kernel is AMX-INT8 here (then a VNNI row is added)
FULL = dict(hidden_size=2048, num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=4,
            intermediate_size=5632, vocab_size=32000)
SEQS = (16, 128, 512, 1)  # prompt tokens of each workload (1: the single-token forward)
MAX_SEQ = max(SEQS)
QUICK = dict(hidden_size=512, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
             intermediate_size=1376, vocab_size=4000)


class LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits


def llama(shape: dict) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape, max_position_embeddings=MAX_SEQ, use_cache=False,
                         tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    return LogitsOnly(LlamaForCausalLM(config).eval())


def on_kernel(name: str, compiled, ids):
    """compiled(ids) with the int8-activation kernel `name` (runtime/dispatch.c), then auto."""
    compiled.set_i8act_kernel(name)
    try:
        return compiled(ids)
    finally:
        compiled.set_i8act_kernel(None)


def interleaved_ms(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Median ms of each engine's call, measured in rounds: each engine in turn, after
    `settle` and one untimed call, so that drifting load on a shared VM hits every engine
    alike, no engine runs while another's threads still spin, and each timed call runs back
    to back with the engine's previous one (its weights as warm in the caches as repeated
    calls keep them, its threads awake), as a sequence of calls of one engine would."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            settle()
            fn()
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1e3 for name, t in samples.items()}


def export_onnx(model, ids, path: Path) -> Path:
    """One export with a symbolic sequence length serves every workload's onnxruntime rows."""
    dims = {"input_ids": {1: torch.export.Dim("seq", min=1, max=MAX_SEQ)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids,), str(path), dynamo=True, input_names=["input_ids"],
                          output_names=["logits"], verbose=False, external_data=True,
                          dynamic_shapes=dims)
    return path


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def nbits_model(path: Path, bits: int, out: Path) -> Path:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(path))
    config = DefaultWeightOnlyQuantConfig(block_size=64, is_symmetric=True, accuracy_level=4,
                                          bits=bits)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small model, a few repeats")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    shape = QUICK if args.quick else FULL
    threads = [int(t) for t in args.threads.split(",")]
    repeats = 5 if args.quick else 7
    from lutc.compiler.api import compile_model
    from lutc.runtime import kernels
    from lutc.runtime.model_loader import CompiledModel

    global AMX
    AMX = kernels.i8act_kernel_name() == "amx"

    model = llama(shape)
    params = sum(p.numel() for p in model.parameters())
    print(f"Llama-shaped model: {shape}, {params / 1e6:.0f}M parameters, random weights")
    # the ONNX exports and compiled models take ~5 GB: removed however the run ends
    work = Path(tempfile.mkdtemp(prefix="lutc-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    results = []
    t0 = time.perf_counter()
    onnx_path = export_onnx(model, torch.zeros((1, 16), dtype=torch.int64), work / "f32.onnx")
    nbits = {b: nbits_model(onnx_path, b, work / f"nbits{b}.onnx") for b in (4, 2)}
    print(f"  ONNX export and MatMulNBits quantization: {time.perf_counter() - t0:.1f} s")
    for seq in SEQS:
        # long prefills: seconds per call for the float engines
        reps = repeats if seq < 128 else 5 if seq == 128 else 3
        ids = torch.randint(0, shape["vocab_size"], (1, seq), generator=torch.Generator().manual_seed(1))
        ids_np = ids.numpy()
        candidates = {}
        ep = torch.export.export(model, (ids,)).run_decompositions()
        variants = [("ternary", ()), ("w2g64", ())]
        if seq == 1:  # the ablation of lut-fuse-precompute, where tables matter most (GEMV)
            variants.append(("ternary", ("lut-fuse-precompute",)))
        for spec, disabled in variants:
            t0 = time.perf_counter()
            label = f"lutc {spec}" + (" (no fusion)" if disabled else "")
            outdir = work / f"lutc_{spec}_{seq}_{len(disabled)}"
            compile_model(ep, outdir, weights=spec, disabled=disabled, out=lambda s: None)
            compiled = CompiledModel(outdir)
            print(f"  seq {seq}: {label} compiled in {time.perf_counter() - t0:.1f} s")
            candidates[label] = (compiled, lambda c=compiled: c(ids_np))
        if AMX and seq > 1:  # the same compiled model on AVX512-VNNI: what AMX adds
            compiled = candidates["lutc ternary"][0]
            candidates["lutc ternary, VNNI (no AMX)"] = (
                compiled, lambda c=compiled: on_kernel("avx512vnni", c, ids_np))
        for t in threads:
            torch.set_num_threads(t)
            fns = {}
            for name, (compiled, fn) in candidates.items():
                compiled.set_num_threads(t)
                fns[name] = fn

            def eager():
                with torch.inference_mode():
                    model(ids)

            fns["torch f32"] = eager
            sess = ort_session(onnx_path, t)
            fns["ort f32"] = lambda: sess.run(None, {"input_ids": ids_np})
            for b, path in nbits.items():
                fns[f"ort MatMulNBits {b}-bit"] = (
                    lambda s=ort_session(path, t): s.run(None, {"input_ids": ids_np}))
            results.append({"seq": seq, "threads": t, **interleaved_ms(fns, reps)})
            print(f"  seq {seq}, {t} thread(s): done")
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "models.json").write_text(json.dumps(
        {"shape": shape, "params": params, "results": results}, indent=1))
    print_table(results)


def print_table(results) -> None:
    print()
    print(f"{'workload':18} {'engine':28} {'median ms':>10} {'tokens/s':>9} {'vs lutc ternary':>16}")
    for row in results:
        label = f"seq {row['seq']}, {row['threads']} thr"
        base = row["lutc ternary"]
        for name in [k for k in row if k not in ("seq", "threads")]:
            ms = row[name]
            print(f"{label:18} {name:28} {ms:10.2f} {row['seq'] * 1e3 / ms:9.1f} "
                  f"{ms / base:15.2f}x")


if __name__ == "__main__":
    main()
