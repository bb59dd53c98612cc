"""Who reads a `!lut.table`: the B-bit weights of its readers, which the runtime's precompute
is told as `consumer_bits` (lutrt.h) and the interpreter follows."""

from __future__ import annotations

from xdsl.ir import SSAValue

from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr


def consumer_bits(table: SSAValue) -> int:
    """B when every reader of the int8 table `table` is a lut.mma / lut.packed_mma with B-bit
    weights and the per-token or automatic strategy (they take the int8-activation kernel at
    prefill sizes and read no entry; activation groups may round to one int8 pass when
    B <= 4), else 0 (f32 tables, no readers, other readers, mixed widths, vec_lut)."""
    typ = table.type
    assert isinstance(typ, TableType)
    if not typ.is_quantized or not table.uses:
        return 0
    bits = set()
    for use in table.uses:
        op = use.operation
        if not isinstance(op, (MmaOp, PackedMmaOp)) or op.table is not table:
            return 0
        tile = op.attributes.get("tile")
        if isinstance(tile, TileAttr) and tile.strategy_name == "vec_lut":
            return 0
        bits.add(op.format.nbits)
    return bits.pop() if len(bits) == 1 else 0
