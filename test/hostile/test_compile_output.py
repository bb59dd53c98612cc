"""A compile that fails leaves the output directory as it was (compiler/codegen/staged_output.py):
a model compiled there before still loads and runs. A bad `-o` is one error line, up front."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lutc.runtime.errors import LutcError
from lutc.runtime.model_loader import CompiledModel
from test.hostile.conftest import assert_one_line_error, run_lutc


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_failed_c_build_keeps_old_model(model_dir, mlp_path, x_npy):
    before = snapshot(model_dir)
    (expected,) = CompiledModel(model_dir)(np.load(x_npy))
    env = {**os.environ, "CC": "/bin/false"}
    proc = run_lutc("compile", mlp_path, "-o", model_dir, "--weights", "w3g16", env=env)
    assert_one_line_error(proc, "failed")  # the runtime or model.c
    assert snapshot(model_dir) == before
    assert not [p for p in model_dir.iterdir() if p.name.startswith(".")]  # no staging left
    (y,) = CompiledModel(model_dir)(np.load(x_npy))
    np.testing.assert_array_equal(y, expected)


def test_failed_emit_keeps_old_model(model_dir, mlp_path, monkeypatch):
    from lutc.compiler.api import compile_model
    from lutc.compiler.codegen import emit_c

    before = snapshot(model_dir)

    def broken(self, function_name="main"):
        raise LutcError("no C lowering (simulated)")

    monkeypatch.setattr(emit_c.CEmitter, "emit", broken)
    with pytest.raises(LutcError, match="simulated"):
        compile_model(mlp_path, model_dir, weights="w2g16", emit="c", out=lambda s: None)
    assert snapshot(model_dir) == before


def test_failed_compile_into_new_directory_leaves_nothing(mlp_path, tmp_path):
    env = {**os.environ, "CC": "/bin/false"}
    proc = run_lutc("compile", mlp_path, "-o", tmp_path / "new" / "out", "--weights", "w3g16",
                    env=env)
    assert_one_line_error(proc, "failed")  # the runtime or model.c
    assert not (tmp_path / "new" / "out").exists()


def test_recompile_replaces_model_and_keeps_other_files(model_dir, mlp_path, x_npy):
    (model_dir / "notes.txt").write_text("mine")
    old_libs = set(model_dir.glob("model-*.so"))
    proc = run_lutc("compile", mlp_path, "-o", model_dir, "--weights", "w4g16")
    assert proc.returncode == 0, proc.stderr
    assert (model_dir / "notes.txt").read_text() == "mine"
    new_libs = set(model_dir.glob("model-*.so"))
    assert len(new_libs) == 1 and new_libs != old_libs  # the old library is gone
    assert run_lutc("run", model_dir, "--input", x_npy).returncode == 0


def test_killed_compile_leaves_no_orphan(model_dir, mlp_path):
    """A compile killed mid-way leaves its staging directory (named with its process id); the
    next compile into the directory removes it, and leaves a running compile's alone."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    orphan = model_dir / f".lutc-build-{dead}-abc123"
    (orphan / "sub").mkdir(parents=True)
    (orphan / "weights.bin").write_bytes(b"x" * 100)
    running = model_dir / f".lutc-build-{os.getpid()}-def456"  # this test's process: alive
    running.mkdir()
    proc = run_lutc("compile", mlp_path, "-o", model_dir, "--weights", "w2g16", "--emit", "c")
    assert proc.returncode == 0, proc.stderr
    assert not orphan.exists() and running.is_dir()


def test_emit_c_over_model_says_so(model_dir, mlp_path, x_npy):
    proc = run_lutc("compile", mlp_path, "-o", model_dir, "--weights", "w2g16", "--emit", "c")
    assert proc.returncode == 0, proc.stderr
    assert not list(model_dir.glob("*.so")) and not (model_dir / "run_model").exists()
    assert_one_line_error(run_lutc("run", model_dir, "--input", x_npy), "'library'", "--emit c")


def test_output_is_an_existing_file(mlp_path, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep")
    assert_one_line_error(run_lutc("compile", mlp_path, "-o", target), "not a directory")
    assert target.read_text() == "keep"


def test_output_under_a_file(mlp_path, tmp_path):
    (tmp_path / "file").write_text("keep")
    assert_one_line_error(run_lutc("compile", mlp_path, "-o", tmp_path / "file" / "sub"),
                          "cannot create output directory")


def test_output_uncreatable(mlp_path):
    assert_one_line_error(run_lutc("compile", mlp_path, "-o", "/proc/lutc-out", "--emit", "c"),
                          "output directory")
