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
    # Programs with state (a torch.export static KV cache: mutated buffers) take it
    # functionally: inputs = user inputs, then the state buffers in signature order; outputs =
    # user outputs, then the same buffers' new values, so outputs[n_out + i] feeds the next
    # call's inputs[n_in + i] (names like `cache.k.0`; see frontends/torch_importer.py).
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    # per quantized layer: (weight name, relative quantization error) when lutc quantized it
    quantization_report: list[tuple[str, float]] = field(default_factory=list)
    # constant weights that stayed float although a weight format was asked for (products
    # that are not linear layers, K not a multiple of 4): one message each
    # (linear_policy.kept_float)
    float_notes: list[str] = field(default_factory=list)
