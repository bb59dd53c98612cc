"""C for the `lut` ops: calls into the lutrt runtime (runtime/lutrt.h).

Weight-side operands of `lut.mma` must be weights by now (the driver folds `lut.bitplanes`);
they are packed here into the runtime's block layout (lutc.runtime.packing) and stored in the
weights blob — packing is numpy at compile time, never IR text.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation, SSAValue

from lutc.compiler.errors import LutcError
from lutc.dialects.lut_ops import MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.table_type import TableType


def _align(n: int) -> int:
    return (n + 63) // 64 * 64


def table_entries_bytes(typ: TableType) -> int:
    m, t, e = typ.shape
    return m * t * e * (1 if typ.is_quantized else 4)


class LutEmitter:
    def __init__(self, emitter) -> None:
        self.e = emitter
        self.packed: dict[tuple[str, str], int] = {}

    def handles(self, op: Operation) -> bool:
        return isinstance(op, (PrecomputeOp, MmaOp))

    def emit(self, op: Operation) -> None:
        if isinstance(op, PrecomputeOp):
            self.emit_precompute(op)
        else:
            self.emit_mma(op)

    def _desc(self, **fields) -> str:
        name = self.e.fresh("d")
        body = ", ".join(f".{k} = {v}" for k, v in fields.items())
        self.e.line(f"const lutrt_mma_desc {name} = {{{body}}};")
        return name

    def _table_parts(self, table: SSAValue, name: str) -> tuple[str, str]:
        typ = table.type
        assert isinstance(typ, TableType)
        if not typ.is_quantized:
            return name, "NULL"
        return name, f"(float *)({name} + {_align(table_entries_bytes(typ))})"

    def emit_precompute(self, op: PrecomputeOp) -> None:
        typ = op.table.type
        assert isinstance(typ, TableType)
        m, t, e = typ.shape
        table = self.e.define(op.table)
        sums = self.e.define(op.sums)
        d = self._desc(M=m, N=1, K=4 * t, bits=1, group=op.sum_group.value.data,
                       mirrored=int(typ.mirrored), table_i8=int(typ.is_quantized),
                       scale_group=typ.scale_group.data or 4, zimp="0.0f", num_threads=0)
        entries, tscale = self._table_parts(op.table, table)
        self.e.line(f"lutrt_precompute(&{d}, {self.e.ptr(op.input)}, {entries}, {tscale}, {sums});")

    def _weight_name(self, value: SSAValue, what: str) -> str:
        owner = value.owner
        if not isinstance(owner, WeightOp):
            raise LutcError(f"'lut.mma' {what} must be a constant weight by code generation "
                            f"(got the result of '{getattr(owner, 'name', 'an argument')}')")
        return owner.weight_name.data

    def _packed_offset(self, name: str, kind: str, pack) -> int:
        key = (name, kind)
        if key not in self.packed:
            array = pack(np.asarray(self.e.weights[name]))
            self.packed[key] = self.e.blob.add(array)
        return self.packed[key]

    def emit_mma(self, op: MmaOp) -> None:
        from lutc.runtime import packing

        fmt = op.format
        typ = op.table.type
        assert isinstance(typ, TableType)
        m, t, _ = typ.shape
        n = op.result.type.get_shape()[1]
        planes = self._weight_name(op.codes, "codes")
        w_off = self._packed_offset(planes, "planes",
                                    lambda a: packing.pack_weights(a.astype(np.uint8)))
        s_off = self._packed_offset(self._weight_name(op.scales, "scales"), "scales",
                                    lambda a: packing.pack_scales(a.astype(np.float32)))
        zeros = "NULL"
        if op.zeros is not None:
            z_off = self._packed_offset(self._weight_name(op.zeros, "zeros"), "scales",
                                        lambda a: packing.pack_scales(a.astype(np.float32)))
            zeros = f"(const float *)(W + {z_off})"
        out = self.e.define(op.result)
        d = self._desc(M=m, N=n, K=4 * t, bits=fmt.nbits, group=fmt.group_size,
                       mirrored=int(fmt.is_mirrored), table_i8=int(typ.is_quantized),
                       scale_group=typ.scale_group.data or 4,
                       zimp=f"{fmt.implicit_zero()!r}f", num_threads=0)
        entries, tscale = self._table_parts(op.table, self.e.ptr(op.table))
        self.e.line(f"lutrt_mma(&{d}, {entries}, {tscale}, {self.e.ptr(op.sums)}, "
                    f"W + {w_off}, (const float *)(W + {s_off}), {zeros}, {out});")
