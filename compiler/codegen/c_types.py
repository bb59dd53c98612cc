"""C spellings of lutc's element types and scalar literals."""

from __future__ import annotations

import math

from xdsl.dialects.builtin import (
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    TensorType,
)
from xdsl.ir import Attribute

from lutc.runtime.errors import LutcError


def c_type(typ: Attribute) -> str:
    if isinstance(typ, TensorType):
        typ = typ.get_element_type()
    if isinstance(typ, Float32Type):
        return "float"
    if isinstance(typ, Float64Type):
        return "double"
    if isinstance(typ, Float16Type):  # storage only (the f16 KV cache): IEEE binary16 bits
        return "uint16_t"
    if isinstance(typ, IndexType):
        return "int64_t"
    if isinstance(typ, IntegerType):
        width = typ.width.data
        return {1: "uint8_t", 8: "int8_t", 16: "int16_t", 32: "int32_t", 64: "int64_t"}[width]
    raise LutcError(f"type {typ} has no C lowering")


def c_float_literal(value: float, typ: Attribute) -> str:
    suffix = "f" if isinstance(typ, Float32Type) else ""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return f"{value!r}{suffix}" if "e" in repr(value) or "." in repr(value) else f"{value!r}.0{suffix}"
