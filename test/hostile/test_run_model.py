"""The standalone `run_model` driver frees what it allocates: a `--sanitize` build exits 0 under
LeakSanitizer (it exited 23) and computes what the Python loader computes."""

from __future__ import annotations

import subprocess

import numpy as np

from lutc.runtime.model_loader import CompiledModel
from test.hostile.conftest import run_lutc


def test_sanitized_run_model_is_leak_free(compiled_mlp, mlp_path, x_npy, tmp_path):
    out = tmp_path / "asan"
    proc = run_lutc("compile", mlp_path, "-o", out, "--weights", "w2g16", "--sanitize")
    assert proc.returncode == 0, proc.stderr
    x = np.load(x_npy)
    x.tofile(tmp_path / "x.bin")
    run = subprocess.run([out / "run_model", out / "weights.bin", tmp_path / "x.bin",
                          tmp_path / "y.bin"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Sanitizer" not in run.stderr and "runtime error" not in run.stderr
    (expected,) = CompiledModel(compiled_mlp)(x)
    y = np.fromfile(tmp_path / "y.bin", dtype=np.float32).reshape(expected.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_run_model_refuses_wrong_weights_file(compiled_mlp, x_npy, tmp_path):
    short = tmp_path / "short.bin"
    short.write_bytes((compiled_mlp / "weights.bin").read_bytes()[:4096])
    np.load(x_npy).tofile(tmp_path / "x.bin")
    run = subprocess.run([compiled_mlp / "run_model", short, tmp_path / "x.bin",
                          tmp_path / "y.bin"], capture_output=True, text=True)
    assert run.returncode == 1 and "not this model's weights file" in run.stderr


def test_npy_header_claiming_more_than_the_file(compiled_mlp, tmp_path):
    """A .npy header may claim any shape: checked against the bytes that follow it before any
    memory is taken (it was an out-of-memory error naming options `run` does not have)."""
    from test.hostile.conftest import assert_one_line_error

    path = tmp_path / "huge.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (99999999999, 99999)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    assert_one_line_error(run_lutc("run", compiled_mlp, "--input", path), "huge.npy",
                          "header claims shape [99999999999, 99999]", "64 bytes follow")


def test_input_and_output_paths(compiled_mlp, x_npy, tmp_path):
    from test.hostile.conftest import assert_one_line_error

    assert_one_line_error(run_lutc("run", compiled_mlp, "--input", tmp_path), "is not a file")
    assert_one_line_error(run_lutc("run", compiled_mlp, "--input", x_npy, "--output", tmp_path),
                          "is a folder", "give a file name")
    proc = run_lutc("run", compiled_mlp, "--input", x_npy, "--output", tmp_path / "y")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"-> {tmp_path / 'y.npy'}")  # the file np.save wrote
    assert np.load(tmp_path / "y.npy").shape == CompiledModel(compiled_mlp)(np.load(x_npy))[0].shape
