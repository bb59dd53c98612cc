"""From C-ready IR to a model directory: model.c, weights.bin, model.json and model.so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lutc.compiler.emit_c import CEmitter
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
    return outdir / "model.c"


def build_library(c_file: Path, sanitize: bool = False) -> Path:
    from lutc.runtime import build

    out = c_file.parent / "model.so"
    try:
        build.compile_shared([c_file, *build.runtime_sources()], out, sanitize=sanitize)
    except build.RuntimeBuildError as err:
        raise LutcError(f"C compilation failed: {str(err).strip().splitlines()[0]}") from None
    return out
