"""Run lutc IR on numpy inputs with xDSL's interpreter: the oracle every pass is checked with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter
from xdsl.interpreters.func import FuncFunctions

from lutc.runtime.errors import LutcError
from lutc.compiler.interp.tensor_interpreter import TensorFunctions
from lutc.dialects.dtypes import numpy_dtype
from lutc.dialects.lut_interpreter import LutFunctions


def make_interpreter(module: ModuleOp, weights: Mapping | object) -> Interpreter:
    interpreter = Interpreter(module)
    interpreter.register_implementations(FuncFunctions())
    interpreter.register_implementations(TensorFunctions(), override=True)
    interpreter.register_implementations(LutFunctions(weights))
    return interpreter


def run_module(module: ModuleOp, weights, inputs: Sequence[np.ndarray],
               function: str = "main") -> list[np.ndarray]:
    """Call `function` of `module` on `inputs`; `weights` resolves `lut.weight` names."""
    interpreter = make_interpreter(module, weights)
    func_op = interpreter.get_op_for_symbol(function)
    arg_types = func_op.function_type.inputs.data
    if len(arg_types) != len(inputs):
        raise LutcError(f"@{function} takes {len(arg_types)} inputs, got {len(inputs)}")
    args = []
    for i, (typ, value) in enumerate(zip(arg_types, inputs)):
        value = np.asarray(value)
        want = tuple(typ.get_shape())
        if value.shape != want:
            raise LutcError(f"input {i} of @{function} must have shape {list(want)}, "
                            f"got {list(value.shape)}")
        args.append(value.astype(numpy_dtype(typ), copy=False))
    return [np.asarray(r) for r in interpreter.call_op(function, tuple(args))]
