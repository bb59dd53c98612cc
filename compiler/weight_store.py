"""Weights live next to the IR, not in it: a name -> numpy array store saved as safetensors.

Names are sanitized when added, so nothing from a model file reaches the IR or the C code
verbatim; the original name is kept only in the store's metadata for error messages.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lutc.runtime.errors import LutcError

WEIGHTS_FILE = "weights.safetensors"


def sanitize(name: str) -> str:
    """A C/MLIR-safe identifier derived from `name` (letters, digits, '_', '.')."""
    clean = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip("._") or "w"
    if clean[0].isdigit():
        clean = "w" + clean
    return clean[:80]


class WeightStore:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, hint: str, array: np.ndarray) -> str:
        """Store `array` under a fresh sanitized name derived from `hint`; return the name."""
        base = sanitize(hint)
        name, i = base, 1
        while name in self.arrays:
            name, i = f"{base}_{i}", i + 1
        self.arrays[name] = np.ascontiguousarray(array)
        return name

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise LutcError(f"weight '{name}' is not in the weight store") from None

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def __setitem__(self, name: str, array: np.ndarray) -> None:
        self.arrays[name] = np.ascontiguousarray(array)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        save_file(self.arrays, str(path))

    @staticmethod
    def load(path: Path) -> WeightStore:
        from safetensors.numpy import load_file

        if not Path(path).is_file():
            raise LutcError(f"weight file '{path}' does not exist")
        store = WeightStore()
        store.arrays = load_file(str(path))
        return store
