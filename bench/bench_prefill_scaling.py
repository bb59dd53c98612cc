"""Prefill thread scaling of a whole compiled model, for many-core machines that have no
compiler stack (the lent 16-core Xeon has python3, numpy and cc only): issue 9's
"prefill-128 16 threads >= 10x 1 thread".

    # here (torch, lutc): compile and pack for the trip (~53 MB: the device takes 64 MiB)
    .venv/bin/python bench/bench_prefill_scaling.py --prepare build/xeon
    # there (numpy + ctypes only): unpack, then time lutc_main at each thread count
    python3 bench/bench_prefill_scaling.py --unpack build/xeon /tmp/x
    LD_LIBRARY_PATH=/tmp/x python3 bench/bench_prefill_scaling.py --run /tmp/x/model \\
        --threads 1,2,4,8,16 [--json OUT.json]

The model: the 492M bench model's shapes (bench_models.py: hidden 2048, 16 heads over 4 kv
heads, FFN 5632, ternary weights, torch.export with run_decompositions) with 3 layers and a
2,000-token vocabulary, so that its weights fit the trip; a 128-token prefill. Prints the
median ms of interleaved rounds and the speedup over the first thread count, then, with
--profile, one more call per thread count under lutrt's parallel-loop profile
(runtime/pool_profile.py: serial code, and thread time lost per task function).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import lzma
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

SHAPE = dict(hidden_size=2048, num_hidden_layers=3, num_attention_heads=16,
             num_key_value_heads=4, intermediate_size=5632, vocab_size=2000)
SEQ = 128


def prepare(out: Path) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_models import llama

    from lutc.compiler.api import compile_model

    model = llama(SHAPE)
    ids = torch.randint(0, SHAPE["vocab_size"], (1, SEQ), generator=torch.Generator().manual_seed(1))
    ep = torch.export.export(model, (ids,)).run_decompositions()
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    compile_model(ep, out / "model", weights="ternary", out=lambda s: None)
    print(f"compiled in {time.perf_counter() - t0:.1f} s")
    weights = out / "model" / "weights.bin"
    with open(weights, "rb") as src, lzma.open(out / "weights.bin.xz", "wb", preset=1) as dst:
        shutil.copyfileobj(src, dst)
    weights.unlink()
    import scipy_openblas32  # the model's float GEMMs (compiler/codegen/emit_blas.py)

    blas = Path(scipy_openblas32.get_lib_dir()) / "libscipy_openblas.so"
    with open(blas, "rb") as src, lzma.open(out / "libscipy_openblas.so.xz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 1e6:.1f} MB")


def unpack(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "model", dst / "model", dirs_exist_ok=True)
    for packed, target in (("weights.bin.xz", dst / "model" / "weights.bin"),
                           ("libscipy_openblas.so.xz", dst / "libscipy_openblas.so")):
        with lzma.open(src / packed) as f, open(target, "wb") as g:
            shutil.copyfileobj(f, g)


def run(model_dir: Path, threads: list[int], rounds: int, profile: bool = False) -> list[dict]:
    import numpy as np

    from lutc.runtime import pool_profile
    from lutc.runtime.weight_memory import load_weights

    manifest = json.loads((model_dir / "model.json").read_text())
    lib = ctypes.CDLL(str(model_dir / manifest["library"]))
    runtime = ctypes.CDLL(str(next(model_dir.glob("liblutrt-*.so"))))
    runtime.lutrt_set_num_threads.argtypes = [ctypes.c_int]
    path = model_dir / manifest["weights"]
    if path.stat().st_size != manifest["weight_bytes"]:
        raise SystemExit(f"{model_dir}: weights.bin is not this model's")
    with open(path, "rb") as f:  # as CompiledModel loads them (huge pages where they fit)
        weights = load_weights(f, manifest["weight_bytes"])
    arena = np.zeros(manifest["arena_bytes"] + 64, np.uint8)
    (spec,), (out_spec,) = manifest["inputs"], manifest["outputs"]
    ids = np.random.default_rng(1).integers(0, SHAPE["vocab_size"], spec["shape"]).astype(np.int64)
    logits = np.empty(out_spec["shape"], np.float32)
    args = [ctypes.c_void_p(weights.ctypes.data), ctypes.c_void_p((arena.ctypes.data + 63) // 64 * 64),
            ctypes.c_void_p(ids.ctypes.data), ctypes.c_void_p(logits.ctypes.data)]
    times: dict[int, list[float]] = {t: [] for t in threads}
    for t in threads:  # warm-up: page in the weights, start the pool
        runtime.lutrt_set_num_threads(t)
        lib.lutc_main(*args)
    for _ in range(rounds):
        for t in threads:
            runtime.lutrt_set_num_threads(t)
            t0 = time.perf_counter()
            lib.lutc_main(*args)
            times[t].append(time.perf_counter() - t0)
    base = statistics.median(times[threads[0]])
    rows = []
    for t in threads:
        median = statistics.median(times[t])
        rows.append({"threads": t, "median_ms": median * 1e3, "tok_s": SEQ / median,
                     "speedup": base / median})
        print(f"threads {t:2d}: {median * 1e3:8.2f} ms {SEQ / median:8.1f} tok/s "
              f"{base / median:6.2f}x vs {threads[0]}", flush=True)
    for row in rows if profile else ():
        runtime.lutrt_set_num_threads(row["threads"])
        lib.lutc_main(*args)
        with pool_profile.recording(runtime) as prof:
            lib.lutc_main(*args)
        print(pool_profile.report(prof, row["threads"]), flush=True)
        row["profile"] = {"wall_s": prof.wall_s, "loops": [vars(s) for s in prof.loops]}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepare", type=Path, metavar="DIR")
    ap.add_argument("--unpack", nargs=2, type=Path, metavar=("DIR", "DEST"))
    ap.add_argument("--run", type=Path, metavar="MODEL_DIR")
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", action="store_true", help="a profiled call per thread count")
    args = ap.parse_args()
    if args.prepare:
        prepare(args.prepare)
    if args.unpack:
        unpack(*args.unpack)
    if args.run:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        rows = run(args.run, [int(t) for t in args.threads.split(",")], args.rounds, args.profile)
        if args.json:
            args.json.write_text(json.dumps({"workload": f"prefill {SEQ}", "shape": SHAPE,
                                             "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
