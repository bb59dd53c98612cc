"""From C-ready IR to a model directory: model.c, main.c, weights.bin, model.json, the
shared library and the runtime it links."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lutc.compiler.codegen.emit_blas import link_flags
from lutc.compiler.codegen.emit_c import CEmitter
from lutc.compiler.codegen.emit_main import emit_main
from lutc.runtime.errors import LutcError
from lutc.compiler.codegen.fold_weights import fold_weights
from lutc.compiler.imported_model import ImportedModel
from lutc.runtime.model_loader import ENTRY, MANIFEST

# model.c's flags after -O2. gcc 12's -O2 vectorizes only loops needing no epilogue, peeling
# or run-time check ("very cheap"): of SmolLM2's model.c loops it vectorized 1, with "cheap" 47
# (as many as -O3; cc 1.9 s against 2.2 s at -O3). -fno-math-errno lets sqrtf be one
# instruction and the libm calls emit_c.py declares `simd` (glibc's libmvec: expf, logf, sinf,
# cosf) vectorize; results, NaN and inf included, are unchanged, only errno is not set.
# -ffp-contract=off: no a * b + c fused into one rounding in the FMA versions of the loops
# (emit_c.ISA_CLONES), so every version computes what the interpreter computes.
MODEL_CFLAGS = ("-fno-math-errno", "-ffp-contract=off")
GCC_MODEL_CFLAGS = ("-fvect-cost-model=cheap",)


def _spec(t) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": np.dtype(t.dtype).name}


def emit_model(model: ImportedModel, outdir: Path, title: str) -> Path:
    """Fold weights, write model.c, weights.bin and model.json; return model.c's path."""
    outdir.mkdir(parents=True, exist_ok=True)
    fold_weights(model.module, model.weights)
    emitter = CEmitter(model.module, model.weights, title=title)
    source = emitter.emit("main")
    (outdir / "model.c").write_text(source)
    _replace_atomically(outdir / "weights.bin", emitter.blob.write)
    manifest = {
        "library": None,  # set by build_library
        "weights": "weights.bin",
        "entry": ENTRY,
        "arena_bytes": emitter.plan.peak_bytes,
        "weight_bytes": emitter.blob.size,
        "inputs": [_spec(t) for t in model.inputs],
        "outputs": [_spec(t) for t in model.outputs],
    }
    (outdir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    (outdir / "main.c").write_text(emit_main(model.inputs, model.outputs, ENTRY))
    return outdir / "model.c"


def _replace_atomically(path: Path, write) -> None:
    """Write through a temporary file and rename: a process that still maps the old file
    (a loaded model, a memmapped weights file) keeps its old inode intact."""
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def build_library(c_file: Path, sanitize: bool = False) -> Path:
    """Compile model.c against the runtime. The (cached) runtime library is copied next to
    the model, which finds it through its rpath, so the directory is self-contained.
    Library names carry a content hash: dlopen caches by path, so a rebuilt model must not
    reuse the name of one a process may already have loaded."""
    import hashlib
    import shutil
    import subprocess

    from lutc.runtime import build

    outdir = c_file.parent
    try:
        runtime = build.runtime_library(sanitize=sanitize)
    except build.RuntimeBuildError as err:
        raise LutcError(f"building the runtime failed: {str(err).strip().splitlines()[0]}") from None
    digest = hashlib.sha256(c_file.read_bytes() + runtime.name.encode() + bytes([sanitize]))
    out = outdir / f"model-{digest.hexdigest()[:12]}.so"
    for stale in [*outdir.glob("model-*.so"), *outdir.glob("liblutrt-*.so")]:
        if stale.name not in (out.name, runtime.name):
            stale.unlink()
    if not (outdir / runtime.name).exists():
        _replace_atomically(outdir / runtime.name, lambda tmp: shutil.copyfile(runtime, tmp))
    # model.c at -O2, not the runtime's -O3: its hot loops are in the runtime's kernels, and
    # on SmolLM2's 8,700-line model.c (30 inline layers) gcc 12 took 18 s at -O2 against
    # ~100 s at -O3 (measured 2026-12-01 on the 2-core EPYC; -O1: 8 s but no vectorized
    # loops). With one shared layer body (emit_c.py, "Repeated layers") it is 485 lines, ~2 s.
    blas_cflags, blas_link = link_flags(c_file.read_text())
    gcc_only = () if "clang" in build._compiler_id(build.compiler()) else GCC_MODEL_CFLAGS
    flags = [*build.BASE_CFLAGS, "-O2", *MODEL_CFLAGS, *gcc_only,
             *(build.SANITIZE_FLAGS if sanitize else ())]
    # the runtime is linked even when model.c calls none of it (gcc's default --as-needed
    # would drop it): the loader sets threads through the model's library
    link = [f"-L{outdir}", "-Wl,--no-as-needed", f"-l:{runtime.name}", "-Wl,--as-needed",
            "-Wl,-rpath,$ORIGIN", *blas_link, "-lm"]
    tmp_so = outdir / f".{out.name}.tmp"
    proc = subprocess.run([build.compiler(), *flags, *blas_cflags, "-shared",
                           f"-I{build.RUNTIME_DIR}", str(c_file), "-o", str(tmp_so), *link],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        tmp_so.replace(out)
        # the standalone driver: run_model weights.bin in.bin... out.bin...
        proc = subprocess.run([build.compiler(), *flags, str(outdir / "main.c"), "-o",
                               str(outdir / "run_model"), f"-l:{out.name}", *link],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
        raise LutcError(f"C compilation of {c_file.name} failed: {first}")
    manifest_path = outdir / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["library"] = out.name
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return out
