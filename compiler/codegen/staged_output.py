"""Build a model directory aside, then publish it over the old one.

`lutc compile -o D` writes into a hidden staging directory inside D (same file system) and,
only when everything succeeded, moves each file into D with a rename, model.json last, then
removes the old model's files the new one does not have (an old hash-named library, or the
library and run_model when the new output is `--emit c`). A failed compile therefore leaves D
exactly as it was: a model compiled there before stays usable. Files in D that lutc does not
write are never touched. (A loader running during the few renames may see the new weights
with the old manifest; the loader's size checks turn that into an error, not a crash.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lutc.runtime.errors import LutcError
from lutc.runtime.model_loader import MANIFEST

# what an older compile into the same directory may have left that a new model replaces
_MODEL_FILES = ("model-*.so", "liblutrt-*.so", "run_model", "main.c", "model.c", "weights.bin")


def check_output_dir(outdir: Path) -> None:
    """Fails early, before any work, when `outdir` cannot be the output directory."""
    if outdir.exists() and not outdir.is_dir():
        raise LutcError(f"output '{outdir}' exists and is not a directory (-o wants a directory)")
    existing = outdir.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a directory" if not existing.is_dir() else "is not writable"
        raise LutcError(f"cannot create output directory '{outdir}': '{existing}' {what}")


@contextmanager
def staged_directory(outdir: Path) -> Iterator[Path]:
    """Yields an empty staging directory; publishes it into `outdir` if the block succeeds."""
    check_output_dir(outdir)
    created = not outdir.exists()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".lutc-build-", dir=outdir))
    except OSError as err:
        raise LutcError(f"cannot create output directory '{outdir}': "
                        f"{err.strerror or err}") from None
    try:
        yield stage
        _publish(stage, outdir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(outdir.iterdir()):
            outdir.rmdir()


def _publish(stage: Path, outdir: Path) -> None:
    new = {p.name for p in stage.iterdir()}
    stale = set()
    if MANIFEST in new:
        stale = {p for pattern in _MODEL_FILES for p in outdir.glob(pattern) if p.name not in new}
    try:
        for name in sorted(new - {MANIFEST}) + ([MANIFEST] if MANIFEST in new else []):
            os.replace(stage / name, outdir / name)
        for path in stale:
            path.unlink()
    except OSError as err:
        raise LutcError(f"cannot write into output directory '{outdir}': "
                        f"{err.strerror or err} ({err.filename})") from None
