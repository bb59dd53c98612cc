"""A damaged or edited model directory is one `lutc: error:` line naming the file and the
field, never a crash, a traceback or C reading/writing outside its buffers
(runtime/model_loader.py checks model.json against what the library exports)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lutc.runtime.errors import LutcError
from lutc.runtime.model_loader import CompiledModel
from test.hostile.conftest import X_SHAPE, assert_one_line_error, run_lutc


def edit_manifest(model_dir: Path, edit) -> None:
    path = model_dir / "model.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def run(model_dir: Path, x_npy: Path):
    return run_lutc("run", model_dir, "--input", x_npy)


def test_intact_model_runs(model_dir, x_npy):
    proc = run(model_dir, x_npy)
    assert proc.returncode == 0, proc.stderr
    (y,) = CompiledModel(model_dir)(np.load(x_npy))
    assert y.shape == (X_SHAPE[0], 32) and np.isfinite(y).all()


def test_truncated_weights(model_dir, x_npy):
    weights = model_dir / "weights.bin"
    assert weights.stat().st_size > 4096
    os.truncate(weights, 4096)  # mmapped, this was a SIGBUS
    assert_one_line_error(run(model_dir, x_npy), "weights.bin", "4096 bytes")


@pytest.mark.parametrize("damage", ["empty", "deleted", "directory", "fifo"])
def test_weights_not_a_weights_file(model_dir, x_npy, damage):
    weights = model_dir / "weights.bin"
    weights.unlink()
    if damage == "empty":
        weights.write_bytes(b"")
    elif damage == "directory":
        weights.mkdir()
    elif damage == "fifo":
        os.mkfifo(weights)
    expected = {"empty": "0 bytes", "deleted": "does not exist", "directory": "not a regular file",
                "fifo": "not a regular file"}[damage]
    assert_one_line_error(run(model_dir, x_npy), "weights.bin", expected)


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "/etc/hostname", "link"])
def test_weights_outside_directory(model_dir, x_npy, name):
    if name == "link":
        (model_dir / "link").symlink_to("/etc/hostname")
    edit_manifest(model_dir, lambda m: m.update(weights=name))
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'weights'", "outside")


@pytest.mark.parametrize("arena", [0, -1, 2**44, "big", None, True])
def test_arena_bytes_must_match_library(model_dir, x_npy, arena):
    edit_manifest(model_dir, lambda m: m.update(arena_bytes=arena))  # 0: C overran a 64-B arena
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'arena_bytes'")


def test_weight_bytes_must_match_library(model_dir, x_npy):
    edit_manifest(model_dir, lambda m: m.update(weight_bytes=m["weight_bytes"] // 2))
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'weight_bytes'")


def test_output_shape_edited(model_dir, x_npy):
    edit_manifest(model_dir, lambda m: m["outputs"][0].update(shape=[1]))  # C wrote 64 floats
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'outputs[0]'", "float32[1]",
                          "float32[2x32]")


def test_input_shape_edited(model_dir, tmp_path):
    edit_manifest(model_dir, lambda m: m["inputs"][0].update(shape=[1, X_SHAPE[1]]))
    np.save(tmp_path / "x1.npy", np.ones((1, X_SHAPE[1]), np.float32))  # C read 2 rows
    assert_one_line_error(run(model_dir, tmp_path / "x1.npy"), "model.json", "'inputs[0]'")


def test_input_dtype_edited(model_dir, tmp_path):
    edit_manifest(model_dir, lambda m: m["inputs"][0].update(dtype="int8"))
    np.save(tmp_path / "x8.npy", np.ones(X_SHAPE, np.int8))  # C read 4x the bytes
    assert_one_line_error(run(model_dir, tmp_path / "x8.npy"), "model.json", "'inputs[0]'",
                          "int8[2x64]")


@pytest.mark.parametrize("dtype", ["object", "O", "not-a-dtype", 7, "U8"])
def test_input_dtype_nonsense(model_dir, x_npy, dtype):
    edit_manifest(model_dir, lambda m: m["inputs"][0].update(dtype=dtype))
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'inputs[0].dtype'")


@pytest.mark.parametrize("shape", [[-8, 64], "2x64", [2.5, 64], None])
def test_input_shape_nonsense(model_dir, x_npy, shape):
    edit_manifest(model_dir, lambda m: m["inputs"][0].update(shape=shape))
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'inputs[0].shape'")


def test_extra_output_listed(model_dir, x_npy):
    edit_manifest(model_dir, lambda m: m["outputs"].append(m["outputs"][0]))
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'outputs'", "lists 2")


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "\xff\xfe"])
def test_manifest_not_json(model_dir, x_npy, text):
    (model_dir / "model.json").write_bytes(text.encode("latin-1"))
    assert_one_line_error(run(model_dir, x_npy), "model.json")


@pytest.mark.parametrize("library", [None, 3, "missing.so", "../x.so", "weights.bin"])
def test_library_field(model_dir, x_npy, library):
    edit_manifest(model_dir, lambda m: m.update(library=library))
    line = assert_one_line_error(run(model_dir, x_npy))
    assert "model.json" in line or "weights.bin" in line or "missing.so" in line, line


# "abort" / "system": symbols of the library's dependencies (libc), which a name lookup also
# finds: the loader accepts the one entry point compiled models export, nothing else
@pytest.mark.parametrize("entry", [None, "lutc_nope", "system(\"x\")", "abort", "system",
                                   "lutc_arena_bytes"])
def test_entry_field(model_dir, x_npy, entry):
    edit_manifest(model_dir, lambda m: m.update(entry=entry))
    assert_one_line_error(run(model_dir, x_npy), "model.json", "'entry'")


def test_weights_from_another_model(model_dir, x_npy, tmp_path, mlp_path):
    """A weights file of another size (another model's) is refused, not read past its end."""
    from test.hostile.conftest import mlp_onnx

    other = tmp_path / "other"
    proc = run_lutc("compile", mlp_onnx(tmp_path / "small.onnx", hidden=16), "-o", other,
                    "--weights", "w2g16", "--emit", "c")
    assert proc.returncode == 0, proc.stderr
    (model_dir / "weights.bin").write_bytes((other / "weights.bin").read_bytes())
    assert_one_line_error(run(model_dir, x_npy), "weights.bin")


def test_loader_raises_lutc_error_in_process(model_dir):
    edit_manifest(model_dir, lambda m: m.update(arena_bytes=0))
    with pytest.raises(LutcError, match="arena_bytes"):
        CompiledModel(model_dir)
