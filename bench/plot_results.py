"""Tokens/s against threads for each engine, from the JSON the benchmarks wrote (same runs):

    .venv/bin/python bench/plot_results.py [--results bench/results] [--scaling FILE]

Panels: SmolLM2-135M (bench_generate.py: lutc and torch eager, 128-token prefill and decode at
context 128), the 492M Llama-shaped model (bench_models.py: 16-token prefill, lutc ternary /
w2g64, onnxruntime f32 / MatMulNBits 2- and 4-bit, torch f32) and, when a bench_scaling.py
result from a many-core machine is given, LUT GEMV / GEMM M = 128 speedup over 1 thread.
Writes tokens_per_s.png next to the JSON (needs matplotlib)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--scaling", default=None, help="a bench_scaling.py result (default: "
                    "RESULTS/scaling.json, else RESULTS/scaling_xeon16.json, the lent Xeon's)")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = Path(args.results)
    generate = results / "generate.json"
    models = results / "models.json"
    scaling = Path(args.scaling) if args.scaling else next(
        (p for p in (results / "scaling.json", results / "scaling_xeon16.json") if p.is_file()),
        results / "scaling.json")
    panels = [p for p in (generate, models, scaling) if p.is_file()]
    if not panels:
        raise SystemExit(f"no benchmark results in {results}: run `make bench` first")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, path in zip(axes[0], panels):
        data = json.loads(path.read_text())
        if path == generate:
            for workload, style in (("prefill 128", "-"), ("decode @128", "--")):
                rows = [r for r in data["rows"] if r["workload"] == workload]
                for engine, key in (("lutc", "lutc_tok_s"), ("torch eager", "torch_tok_s")):
                    ax.plot([r["threads"] for r in rows], [r[key] for r in rows], style,
                            marker="o", label=f"{engine}, {workload}")
            ax.set_title(f"SmolLM2-135M Q4_1 ({data['date']})")
        elif path == models:
            rows = [r for r in data["results"] if r["seq"] == 16]
            engines = [k for k in rows[0] if k not in ("seq", "threads")]
            for engine in engines:
                ax.plot([r["threads"] for r in rows], [16e3 / r[engine] for r in rows],
                        marker="o", label=engine)
            ax.set_title("492M Llama-shaped, 16-token prefill")
        else:
            for (kernel, sg, m) in sorted({(r["kernel"], r["scale_group"], r["M"])
                                           for r in data["rows"] if r["kernel"] == "avx512"}):
                rows = [r for r in data["rows"]
                        if (r["kernel"], r["scale_group"], r["M"]) == (kernel, sg, m)]
                ax.plot([r["threads"] for r in rows], [r["speedup"] for r in rows], marker="o",
                        label=f"{'GEMV' if m == 1 else f'GEMM M={m}'}, scale group {sg}")
            top = max(r["threads"] for r in data["rows"])
            ax.plot([1, top], [1, top], ":", color="grey", label="linear")
            ax.set_title(f"LUT kernels, 4096², 2-bit ({data['date']})")
            ax.set_ylabel("speedup over 1 thread")
        if path != scaling:
            ax.set_ylabel("tokens/s")
        ax.set_xlabel("threads")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = results / "tokens_per_s.png"
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
