"""Build a model directory aside, then publish it over the old one.

`lutc compile -o D` writes into a hidden staging directory inside D (same file system) and,
only when everything succeeded, moves each file into D with a rename, model.json last, then
removes the old model's files the new one does not have (an old hash-named library, or the
library and run_model when the new output is `--emit c`). A failed compile therefore leaves D
exactly as it was: a model compiled there before stays usable. Files in D that lutc does not
write are never touched. (A loader running during the few renames may see the new weights
with the old manifest; the loader's size checks turn that into an error, not a crash.)
Staging directories carry the compiling process's id: one left by a compile that was killed
(its process gone) is removed by the next compile into D.
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
_STAGE_PREFIX = ".lutc-build-"


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
        _remove_orphaned_stages(outdir)
        stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=outdir))
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


def _remove_orphaned_stages(outdir: Path) -> None:
    """Staging directories in `outdir` whose compiling process no longer runs (killed)."""
    for path in outdir.glob(f"{_STAGE_PREFIX}*-*"):
        pid = path.name[len(_STAGE_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or not path.is_dir() or path.is_symlink():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # gone: its stage is an orphan
            shutil.rmtree(path, ignore_errors=True)
        except (PermissionError, OverflowError, ValueError):  # alive (another user's) or bogus
            continue


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
