"""lutc installs and runs without torch on every Python it supports (3.11 is the dev venv).

For each of python3.12 and python3.13 this makes a fresh venv, `pip install`s lutc from a copy
of the repo (a regular install, base dependencies only: the wheel must carry every subpackage
and the runtime's C sources) and then, inside that venv: torch is absent, an ONNX MLP compiles
and runs (`lutc compile` + `lutc run`, checked against numpy), and a tiny random llama GGUF
generates (`lutc generate --json`) and scores (`lutc perplexity --json`).

The copy keeps a stale `build/` or `*.egg-info` of the working tree out of the wheel, so a
package missing from `[tool.setuptools] packages` fails here instead of being masked.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from test.frontends.test_gguf_reader import llama_tensors, write_gguf

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ("3.12", "3.13")
# the working tree's build outputs and caches: never part of what pip is given
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".lutc-cache", "build", "out", "__pycache__",
                                     "*.egg-info", "*.so", "Output", "results", ".whl")
# where each package of the wheel comes from ([tool.setuptools.package-dir])
PACKAGE_DIRS = {"lutc_init": "", "compiler": "compiler", "dialects": "dialects",
                "passes": "passes", "runtime": "runtime"}


def find_python(version: str) -> tuple[str | None, str]:
    """(an interpreter of `version`, "") or (None, why not). A pyenv shim with no version of
    that name selected is resolved through `pyenv whence`."""
    name = f"python{version}"
    shim = shutil.which(name)
    if shim is None:
        return None, f"{name} is not on PATH"
    candidates = [shim]
    if shutil.which("pyenv"):
        whence = subprocess.run(["pyenv", "whence", name], capture_output=True, text=True)
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += [str(Path(root) / "versions" / v / "bin" / name)
                       for v in whence.stdout.split()]
    for exe in candidates:
        probe = subprocess.run([exe, "-c", "import sys; print(sys.executable); "
                                "print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        lines = probe.stdout.split()
        if probe.returncode == 0 and len(lines) == 2 and lines[1] == version:
            return lines[0], ""
    return None, f"{name} is on PATH ({shim}) but does not run a Python {version}"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment minus what would point a venv's Python at the working tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "LUTC_CACHE")}
    return {**env, **extra}


@dataclass
class Venv:
    version: str
    root: Path
    cache: Path  # LUTC_CACHE of every command in this venv

    def run(self, *args, cwd: Path) -> subprocess.CompletedProcess:
        env = _clean_env(LUTC_CACHE=str(self.cache),
                         PATH=f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}")
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                              env=env)

    def lutc(self, *args, cwd: Path) -> subprocess.CompletedProcess:
        proc = self.run(self.root / "bin" / "lutc", *args, cwd=cwd)
        assert proc.returncode == 0, f"lutc {' '.join(map(str, args))} on Python {self.version}:\n" \
                                     f"{proc.stdout}\n{proc.stderr}"
        return proc


def _pip_errors(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "pypi-more" not in line)


def _install(version: str, python: str, where: Path) -> Venv | str:
    """A fresh venv holding lutc and its base dependencies, its C runtime built from the
    installed sources; or the error text of the step that failed."""
    src = where / "src"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE)
    root = where / "venv"
    proc = subprocess.run([python, "-m", "venv", str(root)], capture_output=True, text=True,
                          env=_clean_env())
    if proc.returncode != 0:
        return f"python{version} -m venv failed:\n{proc.stderr}"
    proc = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
                          capture_output=True, text=True, cwd=where, env=_clean_env())
    if proc.returncode != 0:
        return f"pip install lutc on Python {version} failed:\n{_pip_errors(proc.stderr)}"
    venv = Venv(version, root, where / "lutc-cache")
    # built here, while the other version's pip waits on the index, not in the first test
    proc = venv.run(root / "bin" / "python", "-c",
                    "from lutc.runtime.build import runtime_library; runtime_library()", cwd=where)
    if proc.returncode != 0:
        return f"building the C runtime from the installed lutc on Python {version} failed:\n" \
               f"{proc.stderr}"
    return venv


@pytest.fixture(scope="module")
def venvs(tmp_path_factory) -> dict[str, Venv | str]:
    """version -> Venv, or the reason it is missing ("skip: ...") or broken. The installs run
    side by side: much of their time is pip waiting on the package index."""
    base = tmp_path_factory.mktemp("pyversions")
    found = {v: find_python(v) for v in VERSIONS}
    result: dict[str, Venv | str] = {v: f"skip: {why}" for v, (exe, why) in found.items() if not exe}
    with ThreadPoolExecutor(max_workers=len(VERSIONS)) as pool:
        jobs = {v: pool.submit(_install, v, exe, base / f"py{v}")
                for v, (exe, _) in found.items() if exe}
        result.update({v: job.result() for v, job in jobs.items()})
    return result


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda v: f"py{v}")
def venv(request, venvs) -> Venv:
    got = venvs[request.param]
    if isinstance(got, str):
        if got.startswith("skip: "):
            pytest.skip(got.removeprefix("skip: "))
        pytest.fail(got, pytrace=False)
    return got


# ---------------------------------------------------------------------------------------------
# the installed package


def test_installed_package_is_complete_and_torch_free(venv, tmp_path):
    proc = venv.run(venv.root / "bin" / "python", "-c", "import torch", cwd=tmp_path)
    assert proc.returncode != 0 and "No module named 'torch'" in proc.stderr, \
        f"torch is importable in the base install on Python {venv.version}"

    listing = venv.run(venv.root / "bin" / "python", "-c",
                       "import pathlib, lutc; root = pathlib.Path(lutc.__file__).parent\n"
                       "print(root)\n"
                       "for f in root.rglob('*'): print(f.relative_to(root).as_posix())",
                       cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    installed_root, *installed = listing.stdout.splitlines()
    assert Path(installed_root).is_relative_to(venv.root), \
        f"lutc imported from {installed_root}, not from the venv"
    expected = {str(Path(dest) / f.relative_to(REPO / src)).lstrip("/")
                for src, dest in PACKAGE_DIRS.items()
                for f in (REPO / src).rglob("*")
                if f.suffix in (".py", ".c", ".h") and "__pycache__" not in f.parts}
    missing = sorted(expected - set(installed))
    assert not missing, f"the installed lutc lacks {len(missing)} file(s) (check " \
                        f"[tool.setuptools] packages / package-data): {missing[:20]}"

    imports = ("lutc.compiler.driver", "lutc.compiler.frontends.gguf", "lutc.compiler.llm.llm",
               "lutc.compiler.codegen.emit_c", "lutc.compiler.interp", "lutc.compiler.api")
    proc = venv.run(venv.root / "bin" / "python", "-c",
                    f"import importlib, sys\nfor m in {imports!r}: importlib.import_module(m)\n"
                    "assert 'torch' not in sys.modules, 'torch was imported'", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------
# ONNX: compile + run


def on_4bit_grid(n: int, k: int, group: int, rng) -> np.ndarray:
    """[N, K] weights that w4g{group} (asym) represents exactly: each group holds codes 0 and
    15, so its min/max give s and z, and w / s + z lands on integer codes."""
    codes = rng.integers(0, 16, (n, k)).astype(np.float32)
    codes[:, 0::group], codes[:, 1::group] = 0, 15
    scales = rng.uniform(0.01, 0.05, (n, k // group)).repeat(group, axis=1)
    return (scales * (codes - 7.5)).astype(np.float32)


def test_onnx_compile_and_run(venv, tmp_path):
    rng = np.random.default_rng(0)
    w1, w2 = on_4bit_grid(32, 64, 32, rng).T, on_4bit_grid(16, 32, 32, rng).T  # ONNX: x @ W[K, N]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])],
                              [numpy_helper.from_array(np.ascontiguousarray(w1), "w1"),
                               numpy_helper.from_array(np.ascontiguousarray(w2), "w2")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "mlp.onnx")
    x = rng.normal(size=(4, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    venv.lutc("compile", "mlp.onnx", "-o", "out", "--weights", "w4g32", cwd=tmp_path)
    assert "lutrt_" in (tmp_path / "out" / "model.c").read_text(), "no LUT kernel call emitted"
    venv.lutc("run", "out", "--input", "x.npy", "--output", "y.npy", cwd=tmp_path)
    y, ref = np.load(tmp_path / "y.npy"), np.maximum(x @ w1, 0) @ w2
    # weights are exact; the int8 lookup tables (lut-quantize-table) leave ~1e-3
    err = float(np.abs(y - ref).max() / np.abs(ref).max())
    assert y.shape == (4, 16) and err < 2e-2, err


# ---------------------------------------------------------------------------------------------
# GGUF: generate + perplexity


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    return write_gguf(path, "llama", llama_tensors("llama", np.random.default_rng(0)))


def test_gguf_generate(venv, tiny_gguf, tmp_path):
    proc = venv.lutc("generate", tiny_gguf, "-p", "hello", "-n", 4, "--json", "--max-context", 64,
                     cwd=tmp_path)
    result = json.loads(proc.stdout)
    for key in ("text", "token_ids", "ttft_ms", "prefill_tok_s", "decode_tok_s", "compile_s"):
        assert key in result, f"'{key}' missing from {result}"
    assert result["n_generated"] >= 1 and len(result["token_ids"]) >= 1, result


def test_gguf_perplexity(venv, tiny_gguf, tmp_path):
    (tmp_path / "f.txt").write_text("hello the hell of the world, then the hello again. " * 8)
    proc = venv.lutc("perplexity", tiny_gguf, "--text", "f.txt", "--context", 32, "--json",
                     cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert math.isfinite(result["ppl"]) and result["ppl"] > 0, result
