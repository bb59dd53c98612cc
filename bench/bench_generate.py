"""Generation speed on the real model: SmolLM2-135M-Instruct (Q4_1 GGUF, exact codes) in lutc
against torch eager (transformers on the same GGUF, float weights), same run, interleaved.

Prefill: tokens/s of one forward pass over P prompt tokens (P = 16, 128, 512) as generation runs it,
logits of the last prompt row only (lutc: logit_rows = 1; torch: logits_to_keep=1), and lutc's
time with the logits of every row (`LLM.logits`, what perplexity needs). Decode: tokens/s of
single-token steps with a KV cache at context 128 and 1024 (`LLM._decode_step`, the call generation
makes each step: its logits stay in the output buffer), also as a share of the weight-streaming
floor (issue 9: bytes of the LUT GEMM weights read per token — the weights file less the float
embedding table, of which a step reads one row — divided by the streaming read bandwidth,
bench_kernels.read_bandwidth, sampled once per 4 decode steps between them: this VM's bandwidth
drifts by a third from minute to minute, so a floor measured at another time is no floor), and
lutc with an f16 KV cache (`kv_cache="f16"`, a second compiled model, interleaved). Threads 1 and 2. Medians of
interleaved repeats, each timed call followed by a 30 ms pause (`settle`); ratios lutc / eager.
Those decode steps are "cold": each follows the other engines' steps and a pause. Decode also
runs "back to back", as generation does: `B2B_STEPS` consecutive steps of each engine in turn
(the first of each run untimed), whose floor share is also given - with the caveat that on a
CPU whose L3 holds much of the 112 MB of weights, consecutive steps read part of them from L3,
so the share can pass what DRAM alone would allow.
Writes bench/results/generate.json.

    python bench/bench_generate.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


SETTLE_S = 0.03
B2B_STEPS = 12


def settle() -> None:
    """Let the last engine's idle threads stop spinning before the next one is timed: torch's
    OpenMP workers (and lutrt's pool) poll for a while after a call, which on a 2-core machine
    takes the second core from whichever engine runs next (measured: lutc decode on 2 threads
    85 tok/s right after a torch call, 126-143 tok/s otherwise)."""
    time.sleep(SETTLE_S)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch
    import transformers

    from lutc.compiler.llm.demo import smollm2_gguf
    from lutc.compiler.llm.llm import LLM

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_kernels import read_bandwidth

    gguf = smollm2_gguf()
    t = time.perf_counter()
    llm = LLM(gguf, max_context=1056)
    compile_s = time.perf_counter() - t
    llm16 = LLM(gguf, max_context=1056, kv_cache="f16")
    transformers.utils.logging.disable_progress_bar()
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    rng = np.random.default_rng(0)
    rows = []
    for threads in (1, 2):
        llm.model.set_num_threads(threads)  # process-wide: llm16 too
        torch.set_num_threads(threads)
        for p in (16, 128, 512):
            ids = rng.integers(0, 49152, size=p + 1)
            times = {"lutc": [], "torch": [], "lutc_all": []}
            for _ in range(args.repeats):
                t = time.perf_counter()
                llm._forward(ids[:p], 0, last_only=True)
                times["lutc"].append(time.perf_counter() - t)
                settle()
                with torch.no_grad():
                    t = time.perf_counter()
                    ref(torch.tensor(ids[:p])[None], logits_to_keep=1)
                    times["torch"].append(time.perf_counter() - t)
                    settle()
                t = time.perf_counter()
                llm._forward(ids[:p], 0)
                times["lutc_all"].append(time.perf_counter() - t)
                settle()
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"workload": f"prefill {p}", "threads": threads,
                         "lutc_tok_s": p / med["lutc"], "torch_tok_s": p / med["torch"],
                         "lutc_all_rows_tok_s": p / med["lutc_all"]})
        for ctx in (128, 1024):  # decode: one step after a ctx-token prefill
            ids = rng.integers(0, 49152, size=ctx + 2)
            llm._forward(ids[:ctx], 0)
            llm16._forward(ids[:ctx], 0)
            with torch.no_grad():
                out = ref(torch.tensor(ids[:ctx])[None], use_cache=True)
            cache = out.past_key_values
            times = {"lutc": [], "torch": [], "lutc_f16kv": []}
            bw_samples = []  # the floor's bandwidth, sampled between the steps it is compared to
            for i in range(args.repeats * 4):
                t = time.perf_counter()
                llm._decode_step(int(ids[ctx]), ctx)
                times["lutc"].append(time.perf_counter() - t)
                settle()
                t = time.perf_counter()
                llm16._decode_step(int(ids[ctx]), ctx)
                times["lutc_f16kv"].append(time.perf_counter() - t)
                settle()
                with torch.no_grad():
                    t = time.perf_counter()
                    ref(torch.tensor(ids[ctx:ctx + 1])[None], past_key_values=cache, use_cache=True)
                    times["torch"].append(time.perf_counter() - t)
                    settle()
                    cache.crop(-1)  # drop the step just added: every step runs at context ctx
                if i % 4 == 3:
                    bw_samples.append(read_bandwidth([threads])[threads])
                    settle()
            b2b = {"lutc": [], "torch": []}  # consecutive steps, as generation runs them
            for _ in range(args.repeats):
                for i in range(B2B_STEPS + 1):
                    t = time.perf_counter()
                    llm._decode_step(int(ids[ctx]), ctx)
                    if i:
                        b2b["lutc"].append(time.perf_counter() - t)
                settle()
                with torch.no_grad():
                    for i in range(B2B_STEPS + 1):
                        t = time.perf_counter()
                        ref(torch.tensor(ids[ctx:ctx + 1])[None], past_key_values=cache,
                            use_cache=True)
                        if i:
                            b2b["torch"].append(time.perf_counter() - t)
                        cache.crop(-1)
                settle()
                bw_samples.append(read_bandwidth([threads])[threads])
                settle()
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"workload": f"decode @{ctx}", "threads": threads,
                         "lutc_tok_s": 1 / med["lutc"], "torch_tok_s": 1 / med["torch"],
                         "lutc_f16kv_tok_s": 1 / med["lutc_f16kv"],
                         "lutc_b2b_tok_s": 1 / statistics.median(b2b["lutc"]),
                         "torch_b2b_tok_s": 1 / statistics.median(b2b["torch"]),
                         "read_bw_Bps": statistics.median(bw_samples)})
    manifest = json.loads((llm.directory / "model.json").read_text())
    cfg = llm.config
    step_bytes = manifest["weight_bytes"] - cfg.vocab_size * cfg.hidden_size * 4
    bw = {}
    for r in rows:
        if r["workload"].startswith("decode"):
            floor_s = step_bytes / r["read_bw_Bps"]
            r["floor_share"] = floor_s * r["lutc_tok_s"]  # floor time / measured step time
            r["b2b_floor_share"] = floor_s * r["lutc_b2b_tok_s"]
            bw.setdefault(r["threads"], []).append(r["read_bw_Bps"])
    bw = {t: statistics.median(v) for t, v in bw.items()}
    print(f"SmolLM2-135M-Instruct Q4_1 (compile {compile_s:.1f} s{' cached' if llm.cached else ''}); "
          f"decode reads {step_bytes / 1e6:.1f} MB of weights per token; read bandwidth "
          f"{bw[1] / 1e9:.1f} GB/s (1 thread), {bw[2] / 1e9:.1f} GB/s (2), sampled between the "
          f"decode steps (each decode row's floor uses its own samples)")
    print(f"{'workload':<14}{'threads':>8}{'lutc tok/s':>12}{'torch tok/s':>13}{'ratio':>8}"
          f"{'lutc, all-row logits / f16 KV':>31}")
    for r in rows:
        r["ratio"] = r["lutc_tok_s"] / r["torch_tok_s"]
        floor = f"  {100 * r['floor_share']:.0f}% of the weight-streaming floor" \
            if "floor_share" in r else ""
        every = f"{r['lutc_all_rows_tok_s']:>31.1f}" if "lutc_all_rows_tok_s" in r else \
            f"{r['lutc_f16kv_tok_s']:>31.1f}"""
        print(f"{r['workload']:<14}{r['threads']:>8}{r['lutc_tok_s']:>12.1f}"
              f"{r['torch_tok_s']:>13.1f}{r['ratio']:>8.2f}{every}{floor}")
        if "lutc_b2b_tok_s" in r:
            print(f"{'  back to back':<14}{r['threads']:>8}{r['lutc_b2b_tok_s']:>12.1f}"
                  f"{r['torch_b2b_tok_s']:>13.1f}"
                  f"{r['lutc_b2b_tok_s'] / r['torch_b2b_tok_s']:>8.2f}{'':>31}"
                  f"  {100 * r['b2b_floor_share']:.0f}% of the floor ({B2B_STEPS} consecutive steps)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "generate.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"),
                                                   "compile_s": compile_s, "bandwidth_Bps": bw,
                                                   "decode_weight_bytes": step_bytes, "rows": rows},
                                                  indent=1))


if __name__ == "__main__":
    main()
