"""Times lutrt_attention_kv: decode (S = 1) and a prefill chunk (S = 64) at several contexts,
for SmolLM2's attention shape (H=9, KVH=3, D=64) and a larger one (H=16, KVH=4, D=128), per
kernel and thread count. The timing loop is C (bench_attention.c), so no ctypes overhead.

    .venv/bin/python bench/bench_attention.py [--kernels ref,avx2,avx512] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from lutc.runtime import build, kernels

SHAPES = [(9, 3, 64), (16, 4, 128)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=",".join(
        k for k in ("ref", "avx2", "avx512") if kernels.kernel_available(k)))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--contexts", default="128,1024")
    ap.add_argument("--S", default="1,64", help="query rows per call")
    args = ap.parse_args()
    exe = build.runtime_executable(Path(__file__).with_name("bench_attention.c"))
    print(f"{'H/KVH/D':>10} {'S':>3} {'context':>7} {'kernel':>7} {'threads':>7} {'median us':>10} {'min us':>8}")
    for H, KVH, D in SHAPES:
        for S in map(int, args.S.split(",")):
            for ctx in map(int, args.contexts.split(",")):
                for kern in args.kernels.split(","):
                    for t in map(int, args.threads.split(",")):
                        med, low = subprocess.run([str(exe), str(H), str(KVH), str(D), str(ctx), str(S),
                                             str(t), kern], capture_output=True, text=True,
                                            check=True).stdout.split()
                        print(f"{f'{H}/{KVH}/{D}':>10} {S:>3} {ctx:>7} {kern:>7} {t:>7} {med:>10} {low:>8}",
                              flush=True)


if __name__ == "__main__":
    main()
