"""`!lut.table`: the precomputed lookup tables of an activation matrix.

`!lut.table<MxTxExf32>` holds, for each of M activation rows and each of T = K/4 groups of
g = 4 activations, E = 16 entries (all 0/1 weight patterns) or E = 8 entries (mirrored:
±1 patterns, the other half is the negation, docs/design.md §3.3).
`!lut.table<MxTxExi8, sg32>` holds int8 entries with one f32 scale per `sg` activations
(table quantization, §3.4); the scales travel inside the table value.
"""

from __future__ import annotations

from xdsl.dialects.builtin import Float32Type, IntAttr, IntegerType, f32, i8
from xdsl.ir import Attribute, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import irdl_attr_definition, param_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from lutc.runtime import abi


@irdl_attr_definition
class TableType(ParametrizedAttribute, TypeAttribute):
    name = "lut.table"

    rows: IntAttr = param_def()
    tables: IntAttr = param_def()
    entries: IntAttr = param_def()
    element_type: Attribute = param_def()
    scale_group: IntAttr = param_def()  # 0 for f32 tables

    @staticmethod
    def get(rows: int, tables: int, entries: int, quantized: bool = False, scale_group: int = 0):
        return TableType(
            IntAttr(rows),
            IntAttr(tables),
            IntAttr(entries),
            i8 if quantized else f32,
            IntAttr(scale_group if quantized else 0),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.rows.data, self.tables.data, self.entries.data)

    @property
    def is_quantized(self) -> bool:
        return isinstance(self.element_type, IntegerType)

    @property
    def mirrored(self) -> bool:
        return self.entries.data == abi.ENTRIES_MIRRORED

    # sizes as the runtime lays a table value out (runtime/abi.py, lutrt.h)
    @property
    def entry_bytes(self) -> int:
        return abi.table_entry_bytes(self.is_quantized)

    @property
    def row_entries_bytes(self) -> int:
        """One activation row of tables as the runtime stores it (lutrt_table_row_bytes): the
        entries, and for int8 tables the row's two-pass int8 activations with their scales and
        sums."""
        _, t, e = self.shape
        return abi.table_row_bytes(abi.ACTS_PER_TABLE * t, e, self.is_quantized)

    @property
    def row_scale_count(self) -> int:
        """One row's int8 table scales (NS; 0 for f32 tables)."""
        _, t, _ = self.shape
        return abi.num_scale_groups(abi.ACTS_PER_TABLE * t, self.scale_group.data,
                                    self.is_quantized)

    @classmethod
    def parse_parameters(cls, parser: AttrParser):
        with parser.in_angle_brackets():
            dims, elem = parser.parse_ranked_shape()
            scale_group = 0
            if parser.parse_optional_punctuation(","):
                word = parser.parse_identifier()
                if not (word.startswith("sg") and word[2:].isdigit()):
                    parser.raise_error(f"expected a table scale group 'sgN', got '{word}'")
                scale_group = int(word[2:])
        if len(dims) != 3:
            parser.raise_error(f"a table type has shape MxTxE, got {len(dims)} dimensions")
        return [IntAttr(dims[0]), IntAttr(dims[1]), IntAttr(dims[2]), elem, IntAttr(scale_group)]

    def print_parameters(self, printer: Printer) -> None:
        m, t, e = self.shape
        printer.print_string(f"<{m}x{t}x{e}x")
        printer.print_attribute(self.element_type)
        if self.is_quantized:
            printer.print_string(f", sg{self.scale_group.data}")
        printer.print_string(">")

    def verify(self) -> None:
        if self.entries.data not in (abi.ENTRIES_MIRRORED, abi.ENTRIES_PLAIN):
            raise VerifyException(f"a table has 8 or 16 entries, got {self.entries.data}")
        if not isinstance(self.element_type, Float32Type) and self.element_type != i8:
            raise VerifyException(f"table entries are f32 or i8, got {self.element_type}")
        sg = self.scale_group.data
        if self.is_quantized and (sg < 4 or sg % 4 or sg > 64):
            raise VerifyException(
                f"int8 tables need a scale group that is a multiple of 4 and at most 64 "
                f"activations (int16 accumulation bound), got {sg}"
            )
        if not self.is_quantized and sg:
            raise VerifyException("f32 tables carry no scale group")
