"""Compile a tensor-level module to C and run it: the C path's counterpart of run_module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from lutc.compiler.codegen.build import build_library, emit_model
from lutc.compiler.imported_model import ImportedModel, TensorSpec
from lutc.dialects.dtypes import numpy_dtype
from lutc.compiler.weight_store import WeightStore
from lutc.runtime.model_loader import CompiledModel


def compile_and_load(module: ModuleOp, weights: dict, outdir: Path,
                     sanitize: bool = False) -> CompiledModel | None:
    """Build the model; load it unless it is sanitized (ASan must be the first library in a
    process, so sanitized models run in a subprocess with LD_PRELOAD)."""
    module = module.clone()
    store = WeightStore()
    for name, array in weights.items():
        store[name] = np.asarray(array)
    fn = next(op for op in module.walk() if isinstance(op, func.FuncOp))
    ins = [TensorSpec(f"in{i}", tuple(t.get_shape()), numpy_dtype(t))
           for i, t in enumerate(fn.function_type.inputs.data)]
    outs = [TensorSpec(f"out{i}", tuple(t.get_shape()), numpy_dtype(t))
            for i, t in enumerate(fn.function_type.outputs.data)]
    model = ImportedModel(module, store, ins, outs)
    build_library(emit_model(model, outdir, title="a test module"), sanitize=sanitize)
    return None if sanitize else CompiledModel(outdir)
