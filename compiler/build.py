"""From C-ready IR to a model directory: model.c, weights.bin, model.json and model.so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lutc.compiler.emit_c import CEmitter
from lutc.compiler.emit_main import emit_main
from lutc.compiler.errors import LutcError
from lutc.compiler.fold_weights import fold_weights
from lutc.compiler.imported_model import ImportedModel
from lutc.runtime.model_loader import MANIFEST

ENTRY = "lutc_main"


def _spec(t) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": np.dtype(t.dtype).name}


def emit_model(model: ImportedModel, outdir: Path, title: str) -> Path:
    """Fold weights, write model.c, weights.bin and model.json; return model.c's path."""
    outdir.mkdir(parents=True, exist_ok=True)
    fold_weights(model.module, model.weights)
    emitter = CEmitter(model.module, model.weights, title=title)
    source = emitter.emit("main")
    (outdir / "model.c").write_text(source)
    emitter.blob.write(outdir / "weights.bin")
    manifest = {
        "library": "model.so",
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


RUNTIME_COPY = "liblutrt.so"


def build_library(c_file: Path, sanitize: bool = False) -> Path:
    """Compile model.c against the runtime. The (cached) runtime library is copied next to
    the model, which finds it through its rpath, so the directory is self-contained."""
    import shutil
    import subprocess

    from lutc.runtime import build

    outdir = c_file.parent
    out = outdir / "model.so"
    try:
        shutil.copyfile(build.runtime_library(sanitize=sanitize), outdir / RUNTIME_COPY)
        flags = [*build.BASE_CFLAGS, *(build.SANITIZE_FLAGS if sanitize else ())]
        cmd = [build.compiler(), *flags, "-shared", f"-I{build.RUNTIME_DIR}", str(c_file),
               "-o", str(out), f"-L{outdir}", "-llutrt", "-Wl,-rpath,$ORIGIN", "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except build.RuntimeBuildError as err:
        raise LutcError(f"building the runtime failed: {str(err).strip().splitlines()[0]}") from None
    if proc.returncode == 0:  # the standalone driver: run_model weights.bin in.bin... out.bin...
        main_cmd = [build.compiler(), *flags, str(outdir / "main.c"), "-o", str(outdir / "run_model"),
                    f"-L{outdir}", "-l:model.so", "-llutrt", "-Wl,-rpath,$ORIGIN", "-lm"]
        proc = subprocess.run(main_cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
        raise LutcError(f"C compilation of {c_file.name} failed: {first}")
    return out
