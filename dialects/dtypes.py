"""The numpy dtype that holds a value of an MLIR element (or tensor) type at run time.

Owned here, in the lowest layer that needs it (the `lut` interpreter), and used by the
interpreter, the buffer planner and the C emitter. Integers are signless in MLIR; at run time
iN is held as the signed numpy intN (i1 as bool). `lut` weight codes are unsigned values in
i8 — they are stored as bytes and the codes' meaning never depends on the sign.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    TensorType,
)
from xdsl.ir import Attribute


def numpy_dtype(typ: Attribute) -> np.dtype:
    """numpy dtype for an element type or a tensor type's element type.

    Raises NotImplementedError for element types lutc does not execute."""
    if isinstance(typ, TensorType):
        typ = typ.get_element_type()
    if isinstance(typ, Float32Type):
        return np.dtype(np.float32)
    if isinstance(typ, Float64Type):
        return np.dtype(np.float64)
    if isinstance(typ, Float16Type):
        return np.dtype(np.float16)
    if isinstance(typ, IndexType):
        return np.dtype(np.int64)
    if isinstance(typ, IntegerType):
        width = typ.width.data
        return np.dtype(np.bool_) if width == 1 else np.dtype(f"int{max(8, width)}")
    raise NotImplementedError(f"no numpy dtype for {typ}")
