"""Table modes side by side (issue 10): accuracy and speed of each way lut.mma can hold tables.

    .venv/bin/python bench/bench_accuracy.py [--repeats 9] [--threads 1 2] [--ppl-tokens 8200]
                                             [--no-ppl]

Modes: int8 tables with one scale per table (the default, `lut-quantize-table`), int8 tables
with one scale per 32 activations (`lut-quantize-table{scale-group=32}`), f32 tables (the
lossless mode, `--lossless`; at one token with 4-bit codes on AVX-512 VBMI CPUs lutrt_mma runs
the digit GEMV, from 8 tokens on AVX-512 CPUs it multiplies dequantized weights instead, so its
GEMM column is that path; a GEMV-only row times the vpermps kernel the digit GEMV replaced),
and, where the CPU has AVX512-VNNI, the
large-M int8-activation path of lutrt_mma (lutrt.h) on per-table tables. The dPPL of the
per-table row runs every GEMM on tables (LUTRT_I8ACT_MIN_M=0); the default pipeline is the
int8-activation row's. A last, perplexity-only row runs the default pipeline with the
f16 KV cache (`kv_cache="f16"`).

Columns, each measured in this run:
- NMSE: GEMV (M=1) and GEMM (M=128) output (N=K=4096, 4-bit mirrored codes, group 32) vs
  float64 dequantize-then-matmul, on Student-t(3) activations (heavy tails, like LLM
  activations);
- dPPL: SmolLM2-135M-Instruct from its Q4_1 GGUF, perplexity over `--ppl-tokens` tokens of
  English (test/llm/data, 512-token windows) relative to transformers on the same file;
- GEMV / GEMM: lut.mma time (precompute excluded) at M=1 and M=128, medians of `repeats`
  round-robin rounds at M=128 and 10x as many at M=1 (a GEMV call is ~0.5 ms: 9 samples of it
  swung the ratios between modes by 10% from run to run on the 2-core VM), one call of each
  mode in turn, so machine load hits all alike.
Results: bench/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kernels import kernels, packing  # noqa: E402  (the runtime, installed or in-tree)

ROOT = Path(__file__).resolve().parent.parent
K = N = 4096
GROUP = 32
BITS = 4
MODES = {  # name -> (int8 tables, scale group, int8-activation path allowed)
    "int8 tables, per-table scales (default below M = 3)": (True, 4, False),
    "int8 tables, scale group 32": (True, 32, False),
    "f32 tables (lossless; digit GEMV, dequantize-FMA from M = 8)": (False, 4, False),
    "int8 activations (VNNI, default from M = 3)": (True, 4, True),
}
# GEMV-only rows: the lossless mode's previous one-token kernel (vpermps on the f32 tables),
# timed beside the digit GEMV that replaced it (lmma_f32_gemv_avx512vbmi.c).
GEMV_ONLY = {"f32 tables, vpermps GEMV (the lossless GEMV before)": (False, 4, False)}
PPL_OPTIONS = {
    "int8 tables, per-table scales (default below M = 3)": dict(env={"LUTRT_I8ACT_MIN_M": "0"}),
    "int8 tables, scale group 32": dict(env={"LUTRT_I8ACT_MIN_M": "0"},
                                        pass_options={"lut-quantize-table": "{scale-group=32}"}),
    "f32 tables (lossless; digit GEMV, dequantize-FMA from M = 8)": dict(lossless=True),
    "int8 activations (VNNI, default from M = 3)": dict(env={}),
}
# Perplexity-only rows: pipeline options that change no lut.mma kernel.
PPL_ONLY = {
    "default pipeline, f16 KV cache": dict(env={}, kv_cache="f16"),
}


def weights(rng):
    q = rng.integers(0, 1 << BITS, (N, K)).astype(np.uint8)
    s = (rng.random((N, K // GROUP)) * 0.01 + 0.005).astype(np.float32)
    z = np.full((N, K // GROUP), 1 << (BITS - 1), np.float32)
    w = (s[:, np.arange(K) // GROUP] * (q.astype(np.float64) - z[:, np.arange(K) // GROUP]))
    codes = packing.mirror_codes(packing.codes_from_q(q, BITS))
    s_sym, zimp = packing.mirror_scales(s, float(1 << (BITS - 1)), BITS)
    return w, packing.pack_weights(codes), packing.pack_scales(s_sym), zimp


def has_vnni() -> bool:
    lib = kernels.library()
    return hasattr(lib, "lutrt_i8act_min_m") and lib.lutrt_i8act_min_m(4) > 0


def set_i8act(allowed: bool) -> None:
    lib = kernels.library()
    if hasattr(lib, "lutrt_set_i8act_min_m"):
        lib.lutrt_set_i8act_min_m(-1 if allowed else 0)


def set_f32_gemv(mode: str) -> None:
    if hasattr(kernels, "set_f32_gemv"):
        kernels.set_f32_gemv(False if mode in GEMV_ONLY else None)


def kernel_rows(repeats: int, threads: list[int], modes: list[str]) -> dict:
    rng = np.random.default_rng(0)
    w, packed, scales, zimp = weights(rng)
    out = {mode: {} for mode in modes + list(GEMV_ONLY)}
    x_t = rng.standard_t(3, (128, K)).astype(np.float32)
    exact = x_t.astype(np.float64) @ w.T
    for m in (1, 128):
        x = x_t[:m]
        for th in threads:
            calls = {}
            for mode in modes + (list(GEMV_ONLY) if m == 1 else []):
                i8, sg, _ = {**MODES, **GEMV_ONLY}[mode]
                t = kernels.precompute(x, group=GROUP, entries=8, table_i8=i8, scale_group=sg)
                calls[mode] = kernels.MmaCall(t, packed, scales, None, n=N, bits=BITS, zimp=zimp,
                                              threads=th)
            times = {mode: [] for mode in calls}
            for _ in range(repeats * (10 if m == 1 else 1)):
                for mode, call in calls.items():
                    set_i8act({**MODES, **GEMV_ONLY}[mode][2])
                    set_f32_gemv(mode)
                    t0 = time.perf_counter()
                    y = call()
                    times[mode].append(time.perf_counter() - t0)
                    key = "nmse" if m == 128 else "nmse_gemv"
                    if th == threads[0] and key not in out[mode]:
                        err = np.asarray(y, np.float64) - exact[:m]
                        out[mode][key] = float((err ** 2).mean() / (exact[:m] ** 2).mean())
            for mode in calls:
                out[mode][f"{'gemv' if m == 1 else 'gemm'}_us_t{th}"] = \
                    float(np.median(times[mode]) * 1e6)
    set_i8act(True)
    set_f32_gemv("")
    return out


def ppl_rows(tokens: int, modes: list[str]) -> dict:
    """Each mode in its own process (environment variables reach the runtime at load)."""
    import subprocess

    script = ROOT / "bench" / "_ppl_mode.py"
    out = {}
    for mode in modes:
        opt = {**PPL_OPTIONS, **PPL_ONLY}[mode]
        env = dict(os.environ, **opt.get("env", {}))
        args = [sys.executable, str(script), str(tokens), json.dumps(
            {k: v for k, v in opt.items() if k != "env"})]
        proc = subprocess.run(args, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{mode}: perplexity run failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ppl-tokens", type=int, default=8200)
    ap.add_argument("--no-ppl", action="store_true")
    args = ap.parse_args(argv)
    modes = [m for m in MODES if not MODES[m][2] or has_vnni()]
    rows = kernel_rows(args.repeats, args.threads, modes)
    ppl = {} if args.no_ppl else ppl_rows(args.ppl_tokens, modes + list(PPL_ONLY))
    ref = next((v["reference"] for v in ppl.values() if "reference" in v), None)
    cols = [f"gemv_us_t{t}" for t in args.threads] + [f"gemm_us_t{t}" for t in args.threads]
    print(f"\nlut.mma modes: {BITS}-bit mirrored codes, group {GROUP}, N=K={K}; GEMM M=128; "
          f"perplexity of SmolLM2 (transformers {ref if ref else '-'})")
    def nmse(r, gemv=True):  # GEMV / GEMM (the int8-activation path never runs at one token)
        return " / ".join(f"{r[k]:.1e}" if k in r and (gemv or k == "nmse") else "-"
                          for k in ("nmse_gemv", "nmse"))

    print("| mode | NMSE 1 / 128 tokens | dPPL | " + " | ".join(c.replace("_us_t", " µs, t") for c in cols) + " |")
    print("|---" * (3 + len(cols)) + "|")
    for mode in modes:
        r = rows[mode]
        p = ppl.get(mode)
        dppl = f"{100 * (p['ppl'] / p['reference'] - 1):+.3f}%" if p else "-"
        cells = " | ".join(f"{r[c]:.0f}" if c in r else "-" for c in cols)
        if MODES[mode][2]:  # the int8-activation path only runs from M = 3 on
            cells = " | ".join("-" if c.startswith("gemv") else f"{r[c]:.0f}" for c in cols)
        print(f"| {mode} | {nmse(r, not MODES[mode][2])} | {dppl} | {cells} |")
    for mode in GEMV_ONLY:
        r = rows[mode]
        cells = " | ".join(f"{r[c]:.0f}" if c in r else "-" for c in cols)
        print(f"| {mode} | {nmse(r)} | - | {cells} |")
    for mode in PPL_ONLY:
        p = ppl.get(mode)
        dppl = f"{100 * (p['ppl'] / p['reference'] - 1):+.3f}%" if p else "-"
        print(f"| {mode} | - | {dppl} | " + " | ".join("-" for _ in cols) + " |")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "accuracy.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d"), "kernels": rows, "perplexity": ppl}, indent=1))


if __name__ == "__main__":
    main()
