"""The `lut` ops for xDSL's interpreter, on numpy values (semantics in lut_semantics.py)."""

from __future__ import annotations

import numpy as np
from xdsl.interpreter import Interpreter, InterpreterFunctions, PythonValues, impl, register_impls

from lutc.dialects import lut_semantics as sem
from lutc.dialects.lut_ops import BitPlanesOp, DequantizeOp, MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.table_type import TableType


@register_impls
class LutFunctions(InterpreterFunctions):
    """`weights` maps `lut.weight` names to arrays (a WeightStore or a dict)."""

    def __init__(self, weights) -> None:
        self.weights = weights

    @impl(WeightOp)
    def run_weight(self, interpreter: Interpreter, op: WeightOp, args: PythonValues):
        from lutc.compiler.tensor_interpreter import numpy_dtype

        array = np.asarray(self.weights[op.weight_name.data])
        return (array.astype(numpy_dtype(op.result.type), copy=False),)

    @impl(DequantizeOp)
    def run_dequantize(self, interpreter: Interpreter, op: DequantizeOp, args: PythonValues):
        fmt = op.format
        codes, scales, zeros = args[0], args[1], (args[2] if len(args) > 2 else None)
        return (sem.dequantize(codes.astype(np.uint8), scales, zeros, fmt.group_size,
                               fmt.implicit_zero()),)

    @impl(PrecomputeOp)
    def run_precompute(self, interpreter: Interpreter, op: PrecomputeOp, args: PythonValues):
        table = op.table.type
        assert isinstance(table, TableType)
        return sem.precompute(np.asarray(args[0], np.float32), table.entries.data,
                              op.sum_group.value.data, table.is_quantized,
                              table.scale_group.data)

    @impl(MmaOp)
    def run_mma(self, interpreter: Interpreter, op: MmaOp, args: PythonValues):
        fmt = op.format
        tables, sums, codes, scales = args[:4]
        zeros = args[4] if len(args) > 4 else None
        return (sem.mma(tables, sums, codes.astype(np.uint8), scales, zeros, fmt.group_size,
                        fmt.implicit_zero(), fmt.is_mirrored),)

    @impl(BitPlanesOp)
    def run_bitplanes(self, interpreter: Interpreter, op: BitPlanesOp, args: PythonValues):
        planes = sem.plane_codes(np.asarray(args[0]).astype(np.uint8), op.format.nbits)
        if op.format.is_mirrored:
            planes = sem.mirror_codes(planes)
        return (planes.astype(np.int8),)
