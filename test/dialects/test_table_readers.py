"""table_readers: what a precompute is told about its readers (lutrt.h consumer_bits and the
precompute's layout), from the lut.packed_mma ops that read a table."""

from __future__ import annotations

import pytest
from xdsl.dialects.func import FuncOp
from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.dialects.table_readers import consumer_bits, consumer_code_bytes

T = "!lut.table<1x16x8xi8, sg4>, tensor<1x2xf32>"
PLANES = {4: "tensor<2x16x64xi8>", 8: "tensor<2x16x128xi8>"}  # [NB, K/4, 16 B] bit planes
CODES = "tensor<2x16x128xi8>"  # [NB, K/4, 128] code bytes


def reader(name: str, bits: int, code_bytes: bool, table: str = "%t") -> str:
    attrs = " {code_bytes}" if code_bytes else ""
    w = CODES if code_bytes else PLANES[bits]
    return (f"  %{name} = lut.packed_mma {table}, %sums, %w{bits}{'c' if code_bytes else ''}, %s "
            f"as <w{bits}, g32, mirrored>{attrs} : {T}, {w}, tensor<2x2x32xf32> -> tensor<1x40xf32>")


def table_of(*readers: tuple[int, bool], f32: bool = False) -> object:
    """The table argument of a function whose body is `readers` ((bits, code_bytes) each)."""
    typ = "!lut.table<1x16x8xf32>" if f32 else "!lut.table<1x16x8xi8, sg4>"
    body = "\n".join(reader(f"y{i}", b, c) for i, (b, c) in enumerate(readers))
    if f32:
        body = body.replace("!lut.table<1x16x8xi8, sg4>", typ)
    text = (f"func.func @f(%t: {typ}, %sums: tensor<1x2xf32>, %w4: {PLANES[4]}, %w8: {PLANES[8]}, "
            f"%w4c: {CODES}, %w8c: {CODES}, %s: tensor<2x2x32xf32>) {{\n{body}\n  func.return\n}}")
    module = Parser(make_context(), text).parse_module()
    func = next(op for op in module.walk() if isinstance(op, FuncOp))
    return func.body.block.args[0]


@pytest.mark.parametrize("readers, bits, code_bytes", [
    ([(4, False)], 4, False),                 # bit planes: LUT kernel below the threshold
    ([(4, False), (4, False)], 4, False),
    ([(8, True)], 8, True),                   # the code-byte head: int8 activations at every M
    ([(8, True), (8, True)], 8, True),
    ([(4, False), (8, False)], 0, False),     # mixed widths: unknown
    ([(8, False), (8, True)], 0, False),      # mixed layouts: unknown (each reads a different section)
    ([], 0, False),                           # no readers
])
def test_readers(readers, bits, code_bytes):
    t = table_of(*readers)
    assert consumer_bits(t) == bits
    assert consumer_code_bytes(t) is code_bytes


def test_f32_tables_have_no_consumer_bits():
    t = table_of((4, False), f32=True)
    assert consumer_bits(t) == 0 and consumer_code_bytes(t) is False
