"""runtime/weight_memory.py: a model's weights copied to 2 MiB pages or mapped from the file."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from lutc.runtime import weight_memory
from lutc.runtime.weight_memory import HUGE_PAGE, load_weights

NBYTES = 8 * HUGE_PAGE + 12345  # not a whole number of huge pages


@pytest.fixture
def weights_file(tmp_path) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(0).integers(0, 256, NBYTES, dtype=np.uint8)
    path = tmp_path / "weights.bin"
    path.write_bytes(data.tobytes())
    return path, data


def thp_mode() -> str | None:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")]


def anon_huge_bytes(address: int) -> int:
    """AnonHugePages of the mapping holding `address`, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no mapping holds {address:#x}")


def test_copy_on_huge_pages(weights_file, monkeypatch):
    monkeypatch.delenv(weight_memory.ENV, raising=False)
    if thp_mode() not in ("always", "madvise") or not hasattr(mmap, "MADV_HUGEPAGE"):
        pytest.skip("no transparent huge pages on this machine")
    path, data = weights_file
    with open(path, "rb") as f:
        w = load_weights(f, NBYTES)
    assert not isinstance(w, np.memmap)
    assert w.ctypes.data % HUGE_PAGE == 0
    assert not w.flags.writeable
    np.testing.assert_array_equal(w, data)
    assert anon_huge_bytes(w.ctypes.data) >= HUGE_PAGE


def test_mapped_when_asked_or_too_large(weights_file, monkeypatch):
    path, data = weights_file
    monkeypatch.setenv(weight_memory.ENV, "mmap")
    with open(path, "rb") as f:
        w = load_weights(f, NBYTES)
    assert isinstance(w, np.memmap)
    np.testing.assert_array_equal(w, data)
    monkeypatch.delenv(weight_memory.ENV)
    monkeypatch.setattr(weight_memory, "available_memory", lambda: 2 * NBYTES - 2)
    with open(path, "rb") as f:
        assert isinstance(load_weights(f, NBYTES), np.memmap)
    monkeypatch.setattr(weight_memory, "available_memory", lambda: None)
    with open(path, "rb") as f:
        assert isinstance(load_weights(f, NBYTES), np.memmap)


def test_short_file_is_an_error(weights_file, monkeypatch):
    monkeypatch.delenv(weight_memory.ENV, raising=False)
    monkeypatch.setattr(weight_memory, "available_memory", lambda: 1 << 40)
    path, _ = weights_file
    with open(path, "rb") as f:
        with pytest.raises(EOFError, match=f"read {NBYTES} of {NBYTES + 1} bytes"):
            load_weights(f, NBYTES + 1)


def test_available_memory_is_plausible():
    avail = weight_memory.available_memory()
    if avail is None:
        pytest.skip("no /proc/meminfo")
    assert 1 << 20 < avail < 1 << 50
