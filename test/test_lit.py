"""Run each lit test file as one pytest test, so CI sees lit results in pytest's summary."""

import subprocess
import sys
from pathlib import Path

import pytest

LIT_DIR = Path(__file__).parent / "lit"
TESTS = sorted(p for p in LIT_DIR.rglob("*.mlir") if "Output" not in p.parts)


@pytest.mark.parametrize("path", TESTS, ids=[str(p.relative_to(LIT_DIR)) for p in TESTS])
def test_lit(path: Path) -> None:
    lit = Path(sys.executable).parent / "lit"
    proc = subprocess.run([str(lit), "-q", "-v", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
