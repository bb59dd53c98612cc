"""What a frontend hands to the pipeline: IR on tensors, its weight store and its signature."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from lutc.compiler.weight_store import WeightStore


@dataclass(frozen=True)
class TensorSpec:
    name: str  # sanitized; the model's own name is kept in `original_name` for messages
    shape: tuple[int, ...]
    dtype: np.dtype
    original_name: str = ""


@dataclass
class ImportedModel:
    module: ModuleOp  # one func.func @main on static-shape tensors
    weights: WeightStore
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    # per quantized layer: (weight name, relative quantization error) when lutc quantized it
    quantization_report: list[tuple[str, float]] = field(default_factory=list)
