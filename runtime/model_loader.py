"""Load a compiled model directory (model.so + weights.bin + model.json) and run it on numpy.

Inputs are checked against the compiled signature before anything enters C.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np

from lutc.runtime.errors import LutcError

MANIFEST = "model.json"


class CompiledModel:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST
        if not manifest_path.is_file():
            raise LutcError(f"'{self.directory}' is not a compiled lutc model (no {MANIFEST})")
        self.manifest = json.loads(manifest_path.read_text())
        self.lib = ctypes.CDLL(str(self.directory / self.manifest["library"]))
        weights_path = self.directory / self.manifest["weights"]
        size = weights_path.stat().st_size
        self.weights = np.memmap(weights_path, dtype=np.uint8, mode="r", shape=(size,))
        self.arena = np.zeros(self.manifest["arena_bytes"] + 64, dtype=np.uint8)
        self.entry = getattr(self.lib, self.manifest["entry"])
        self.entry.restype = None

    @property
    def inputs(self) -> list[dict]:
        return self.manifest["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.manifest["outputs"]

    def set_num_threads(self, n: int) -> None:
        self.lib.lutrt_set_num_threads(ctypes.c_int(n))

    def _check(self, i: int, spec: dict, value) -> np.ndarray:
        array = np.asarray(value)
        want = tuple(spec["shape"])
        label = spec.get("original_name") or f"input {i}"
        if array.shape != want:
            raise LutcError(f"{label} must have shape {list(want)}, got {list(array.shape)}")
        if array.dtype != np.dtype(spec["dtype"]):
            if np.can_cast(array.dtype, spec["dtype"], casting="same_kind"):
                array = array.astype(spec["dtype"])
            else:
                raise LutcError(f"{label} must have dtype {spec['dtype']}, got {array.dtype}")
        return np.ascontiguousarray(array)

    def __call__(self, *inputs) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise LutcError(f"the model takes {len(self.inputs)} inputs, got {len(inputs)}")
        arrays = [self._check(i, spec, v) for i, (spec, v) in enumerate(zip(self.inputs, inputs))]
        outputs = [np.empty(spec["shape"], dtype=spec["dtype"]) for spec in self.outputs]
        base = self.arena.ctypes.data
        arena = base + (-base) % 64
        self.entry(ctypes.c_void_p(self.weights.ctypes.data), ctypes.c_void_p(arena),
                   *[ctypes.c_void_p(a.ctypes.data) for a in arrays],
                   *[ctypes.c_void_p(o.ctypes.data) for o in outputs])
        return outputs
