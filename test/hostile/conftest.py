"""Hostile inputs: a tiny ONNX MLP compiled once per session, copied per case so each test can
damage its own model directory; helpers to run the CLIs and to check that a failure is one
`lutc: error:` line with exit 1 and no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

LUTC = [sys.executable, "-m", "lutc.compiler.driver"]
LUTC_OPT = [sys.executable, "-m", "lutc.compiler.opt"]
X_SHAPE = (2, 64)


def run_lutc(*args, cmd=LUTC, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, **kwargs)


def assert_one_line_error(proc, *fragments, prefix="lutc: error: "):
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(prefix) or prefix in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def mlp_onnx(path: Path, hidden: int = 256, out: int = 32, rows: int = X_SHAPE[0]) -> Path:
    """x[rows, 64] @ w1 -> relu -> @ w2: two low-bit linears and an elementwise op."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((X_SHAPE[1], hidden)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, out)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="act"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, X_SHAPE[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, out])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def compile_mlp(directory: Path, hidden: int, rows: int, weights: str) -> Path:
    """`lutc compile` of mlp_onnx(hidden, rows) with `--weights weights` into directory/model
    (asserted to succeed); returns that model folder."""
    proc = run_lutc("compile", mlp_onnx(directory / "mlp.onnx", hidden=hidden, rows=rows),
                    "-o", directory / "model", "--weights", weights)
    assert proc.returncode == 0, proc.stderr
    return directory / "model"


@pytest.fixture(scope="session")
def mlp_path(tmp_path_factory) -> Path:
    return mlp_onnx(tmp_path_factory.mktemp("onnx") / "mlp.onnx")


@pytest.fixture(scope="session")
def compiled_mlp(tmp_path_factory, mlp_path) -> Path:
    out = tmp_path_factory.mktemp("compiled") / "mlp"
    proc = run_lutc("compile", mlp_path, "-o", out, "--weights", "w2g16")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def model_dir(compiled_mlp, tmp_path) -> Path:
    """A private copy of the compiled MLP, free to be damaged."""
    return Path(shutil.copytree(compiled_mlp, tmp_path / "model", symlinks=True))


@pytest.fixture
def x_npy(tmp_path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(1).standard_normal(X_SHAPE).astype(np.float32))
    return path
