"""Who reads a `!lut.table`: the B-bit weights of its readers, which the runtime's precompute
is told as `consumer_bits` (lutrt.h) and the interpreter follows."""

from __future__ import annotations

from xdsl.ir import SSAValue

from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr


def _code_bytes(op) -> bool:
    return isinstance(op, PackedMmaOp) and op.code_bytes is not None


def consumer_bits(table: SSAValue) -> int:
    """B when every reader of the int8 table `table` is a lut.mma / lut.packed_mma with B-bit
    weights, the per-token or automatic strategy and one weight layout (consumer_code_bytes):
    they take the int8-activation kernel at prefill sizes (code bytes: at every size) and read
    no entry, and a LUT kernel below it, which reads no int8 activation; activation groups may
    round to one int8 pass when B <= 4. Else 0 (f32 tables, no readers, other readers, mixed
    widths or layouts, vec_lut)."""
    typ = table.type
    assert isinstance(typ, TableType)
    if not typ.is_quantized or not table.uses:
        return 0
    bits, layouts = set(), set()
    for use in table.uses:
        op = use.operation
        if not isinstance(op, (MmaOp, PackedMmaOp)) or op.table is not table:
            return 0
        tile = op.attributes.get("tile")
        if isinstance(tile, TileAttr) and tile.strategy_name == "vec_lut":
            return 0
        bits.add(op.format.nbits)
        layouts.add(_code_bytes(op))
    return bits.pop() if len(bits) == 1 and len(layouts) == 1 else 0


def consumer_code_bytes(table: SSAValue) -> bool:
    """Whether the readers consumer_bits(table) vouches for hold code-byte weights
    (lut.packed_mma with `code_bytes`: the precompute descriptor's layout, lutrt.h)."""
    return consumer_bits(table) > 0 and all(_code_bytes(use.operation) for use in table.uses)
