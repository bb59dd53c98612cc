""".pt2 files that torch cannot load are one `lutc: error:` line saying what torch said; torch's
logged traceback (12+ lines of `W... torch/export/__init__.py`) never reaches stderr."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zipfile

import pytest

from test.hostile.conftest import assert_one_line_error, run_lutc

pytest.importorskip("torch")

CUSTOM_OP_PROGRAM = """
import sys, torch
@torch.library.custom_op("lutc_hostile::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2
@twice.register_fake
def _(x):
    return torch.empty_like(x)
class M(torch.nn.Module):
    def forward(self, x):
        return torch.ops.lutc_hostile.twice(x) + 1
torch.export.save(torch.export.export(M(), (torch.ones(2, 4),)), sys.argv[1])
"""


def _compile(path, tmp_path):
    return run_lutc("compile", path, "-o", tmp_path / "out")


def test_garbage(tmp_path):
    path = tmp_path / "m.pt2"
    path.write_bytes(bytes(range(256)) * 3)
    assert_one_line_error(_compile(path, tmp_path), "m.pt2", "not a zip archive")


def test_damaged_zip64_record(tmp_path):
    """An end-of-archive record after a ZIP64 locator that claims several disks (a bit flip
    in a real archive): zipfile raises BadZipFile from its mere check, reported in one line."""
    path = tmp_path / "m.pt2"
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 1, 0, 2)
    path.write_bytes(b"\0" * 64 + locator + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0))
    assert_one_line_error(_compile(path, tmp_path), "m.pt2", "not a zip archive")


def test_onnx_named_pt2(tmp_path, mlp_path):
    path = tmp_path / "m.pt2"
    shutil.copy(mlp_path, path)
    assert_one_line_error(_compile(path, tmp_path), "m.pt2", "ONNX", ".onnx")


def test_zip_that_is_not_an_export(tmp_path):
    path = tmp_path / "m.pt2"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    line = assert_one_line_error(_compile(path, tmp_path), "m.pt2", "torch says")
    assert "hello.txt" in line


def test_custom_op_library_missing(tmp_path):
    path = tmp_path / "custom.pt2"
    made = subprocess.run([sys.executable, "-c", CUSTOM_OP_PROGRAM, str(path)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    line = assert_one_line_error(_compile(path, tmp_path), "custom.pt2",
                                 "lutc_hostile.twice", "custom op")
    assert "not a saved torch.export program" not in line
