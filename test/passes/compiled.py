"""Compile a module to C with the real build path and run it: emit_model + build_library +
CompiledModel, as `lutc compile` does after its passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from lutc.compiler.codegen.build import build_library, emit_model
from lutc.compiler.imported_model import ImportedModel, TensorSpec
from lutc.compiler.pipeline import PipelineOptions, run_pipeline
from lutc.compiler.weight_store import WeightStore
from lutc.dialects.dtypes import numpy_dtype
from lutc.runtime.model_loader import CompiledModel


def store_of(weights: dict[str, np.ndarray]) -> WeightStore:
    store = WeightStore()
    for name, array in weights.items():
        store[name] = array
    return store


def compile_module(module: ModuleOp, store: WeightStore, outdir: Path) -> tuple[CompiledModel, str]:
    """(loaded model, C source) of `module` (its weights are folded into `store`)."""
    fn = next(op for op in module.walk() if isinstance(op, func.FuncOp))
    ins = [TensorSpec(f"x{i}", tuple(a.type.get_shape()), np.dtype(numpy_dtype(a.type)))
           for i, a in enumerate(fn.body.block.args)]
    outs = [TensorSpec(f"y{i}", tuple(t.get_shape()), np.dtype(np.float32))
            for i, t in enumerate(fn.function_type.outputs.data)]
    c_file = emit_model(ImportedModel(module, store, ins, outs), outdir, "a pass test")
    build_library(c_file)
    return CompiledModel(outdir), c_file.read_text()


def pipeline(module: ModuleOp, disabled=(), pass_options=None) -> ModuleOp:
    return run_pipeline(module, PipelineOptions(disabled=tuple(disabled),
                                                pass_options=pass_options or {},
                                                out=lambda text: None))


def nmse(actual: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean((np.asarray(actual, np.float64) - reference) ** 2)
                 / np.mean(np.asarray(reference, np.float64) ** 2))
