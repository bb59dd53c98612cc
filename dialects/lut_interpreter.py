"""The `lut` ops for xDSL's interpreter, on numpy values (semantics in lut_semantics.py; weight
encodings in lutc.runtime.packing)."""

from __future__ import annotations

import numpy as np

from lutc.dialects.dtypes import numpy_dtype
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    impl,
    impl_terminator,
    register_impls,
)

from lutc.dialects import lut_semantics as sem
from lutc.dialects.table_readers import consumer_bits
from lutc.dialects.attention_ops import AttentionOp, attention_reference
from lutc.dialects.fused_precompute import FusedPrecomputeOp, YieldOp
from lutc.dialects.lut_ops import BitPlanesOp, DequantizeOp, MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.mirror_ops import MirrorCodesOp, MirrorScalesOp, MirrorZerosOp
from lutc.dialects.packed_ops import PackCodeBytesOp, PackedMmaOp, PackOp, PackScalesOp
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr
from lutc.runtime import packing


def _strategy(op) -> str | None:
    """The #lut.tile strategy of a lut.mma (vec_lut keeps the runtime on the tables)."""
    tile = op.attributes.get("tile")
    return tile.strategy_name if isinstance(tile, TileAttr) else None


@register_impls
class LutFunctions(InterpreterFunctions):
    """`weights` maps `lut.weight` names to arrays (a WeightStore or a dict)."""

    def __init__(self, weights) -> None:
        self.weights = weights

    @impl(WeightOp)
    def run_weight(self, interpreter: Interpreter, op: WeightOp, args: PythonValues):
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
                              table.scale_group.data, consumer_bits(op.table))

    @impl(MmaOp)
    def run_mma(self, interpreter: Interpreter, op: MmaOp, args: PythonValues):
        fmt = op.format
        tables, sums, codes, scales = args[:4]
        zeros = args[4] if len(args) > 4 else None
        return (sem.mma(tables, sums, codes.astype(np.uint8), scales, zeros, fmt.group_size,
                        fmt.implicit_zero(), fmt.is_mirrored, _strategy(op)),)

    @impl(BitPlanesOp)
    def run_bitplanes(self, interpreter: Interpreter, op: BitPlanesOp, args: PythonValues):
        planes = packing.bit_planes(np.asarray(args[0]).astype(np.uint8), op.format.nbits,
                                    op.format.is_mirrored)
        return (planes.view(np.int8),)

    # -- ops added by the optimization passes (mirror_ops.py, packed_ops.py,
    #    fused_precompute.py) --------------------------------------------------------

    @impl(MirrorScalesOp)
    def run_mirror_scales(self, interpreter: Interpreter, op: MirrorScalesOp, args: PythonValues):
        return (packing.mirror_scale(args[0]),)

    @impl(MirrorZerosOp)
    def run_mirror_zeros(self, interpreter: Interpreter, op: MirrorZerosOp, args: PythonValues):
        return (packing.mirror_zero(args[0], op.format.nbits),)

    @impl(MirrorCodesOp)
    def run_mirror_codes(self, interpreter: Interpreter, op: MirrorCodesOp, args: PythonValues):
        return (packing.mirror_codes(np.asarray(args[0]).astype(np.uint8)).astype(np.int8),)

    @impl(PackOp)
    def run_pack(self, interpreter: Interpreter, op: PackOp, args: PythonValues):
        return (sem.pack_planes(np.asarray(args[0]).astype(np.uint8)).view(np.int8),)

    @impl(PackCodeBytesOp)
    def run_pack_code_bytes(self, interpreter: Interpreter, op: PackCodeBytesOp, args: PythonValues):
        return (sem.pack_code_bytes(np.asarray(args[0]).astype(np.uint8),
                                    op.format.is_mirrored).view(np.int8),)

    @impl(PackScalesOp)
    def run_pack_scales(self, interpreter: Interpreter, op: PackScalesOp, args: PythonValues):
        return (sem.pack_group_values(args[0]),)

    @impl(PackedMmaOp)
    def run_packed_mma(self, interpreter: Interpreter, op: PackedMmaOp, args: PythonValues):
        fmt, n = op.format, op.n
        tables, sums, packed, scales = args[:4]
        zeros = sem.unpack_group_values(args[4], n) if len(args) > 4 else None
        if op.code_bytes is not None:
            codes = sem.unpack_code_bytes(np.asarray(packed), n, fmt.nbits, fmt.is_mirrored)
            return (sem.mma_int8_activations(tables, codes, sem.unpack_group_values(scales, n),
                                             zeros, fmt.group_size, fmt.implicit_zero(),
                                             fmt.is_mirrored),)
        codes = sem.unpack_planes(np.asarray(packed), n)
        return (sem.mma(tables, sums, codes, sem.unpack_group_values(scales, n), zeros,
                        fmt.group_size, fmt.implicit_zero(), fmt.is_mirrored, _strategy(op)),)

    @impl(FusedPrecomputeOp)
    def run_fused_precompute(self, interpreter: Interpreter, op: FusedPrecomputeOp,
                             args: PythonValues):
        (h,) = interpreter.run_ssacfg_region(op.body, (), "fused_precompute")
        h = np.asarray(h, np.float32)
        table = op.table.type
        assert isinstance(table, TableType)
        tables, sums = sem.precompute(h.reshape(-1, h.shape[-1]), table.entries.data,
                                      op.sum_group.value.data, table.is_quantized,
                                      table.scale_group.data, consumer_bits(op.table))
        return h, tables, sums

    @impl(AttentionOp)
    def run_attention(self, interpreter: Interpreter, op: AttentionOp, args: PythonValues):
        q, k, v = (np.asarray(a, np.float32) for a in args[:3])
        mask = np.asarray(args[3]) if len(args) > 3 else None
        return (attention_reference(q, k, v, mask, float(op.scale.value.data),
                                    op.causal.value.data, op.sliding_window.value.data,
                                    float(op.softcap.value.data)),)

    @impl_terminator(YieldOp)
    def run_yield(self, interpreter: Interpreter, op: YieldOp, args: PythonValues):
        return ReturnedValues(args), ()
