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
