"""The `lut` dialect: low-bit weights, lookup tables and the LUT mpGEMM."""

from xdsl.ir import Dialect

from lutc.dialects.lut_ops import BitPlanesOp, DequantizeOp, MmaOp, PrecomputeOp, WeightOp
from lutc.dialects.table_type import TableType
from lutc.dialects.weight_format import WeightFormatAttr

LUT = Dialect(
    "lut",
    [WeightOp, DequantizeOp, BitPlanesOp, PrecomputeOp, MmaOp],
    [WeightFormatAttr, TableType],
)
