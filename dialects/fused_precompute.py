"""`lut.fused_precompute`: a table precompute fused into the op that produces its activations
(docs/design.md §3.2), added by `lut-fuse-precompute`.

The region holds the producer, a row-wise `linalg.generic` (the outer loops run over the
activation rows, the last output dim is K), and yields its result. The op returns that result
unchanged plus the tables and sums of `lut.precompute` over its rows — rows are all dims but
the last, flattened: an activation [d0, ..., K] has M = d0 * ... tables rows. Generated code
builds each row's tables right after the producer's loops have written that row, while it is
still in L1, instead of re-reading the activation tensor in a separate pass.

  %h, %table, %sums = lut.fused_precompute sums 64 : tensor<3x256xf32>,
                      !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32> {
    %0 = linalg.generic {...} ins(%x, %r, %w : ...) outs(%e : tensor<3x256xf32>) {...}
    lut.yield %0 : tensor<3x256xf32>
  }
"""

from __future__ import annotations

import math

from xdsl.dialects.builtin import I64, Float32Type, IntegerAttr, TensorType
from xdsl.ir import Attribute, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.traits import HasParent, IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from lutc.dialects.table_type import TableType


@irdl_op_definition
class FusedPrecomputeOp(IRDLOperation):
    """Runs its region (the activations' producer), then `lut.precompute` of the yielded
    activations viewed as [M, K] rows; returns (activations, tables, sums)."""

    name = "lut.fused_precompute"
    sum_group = prop_def(IntegerAttr[I64])
    activations = result_def(TensorType)
    table = result_def(TableType)
    sums = result_def(TensorType)
    body = region_def("single_block")
    assembly_format = (
        "`sums` $sum_group attr-dict `:` type($activations) `,` type($table) `,` type($sums)"
        " $body"
    )
    irdl_options = (ParsePropInAttrDict(),)

    def __init__(self, activations_type: TensorType, sum_group: int, table_type: TableType,
                 body: Region):
        m = table_type.rows.data
        k = activations_type.get_shape()[-1]
        super().__init__(
            properties={"sum_group": IntegerAttr(sum_group, 64)},
            result_types=[activations_type, table_type,
                          TensorType(Float32Type(), [m, -(-k // sum_group)])],
            regions=[body],
        )

    @property
    def producer(self):
        """The op whose result the region yields."""
        term = self.body.block.last_op
        assert isinstance(term, YieldOp)
        return term.value.owner

    def verify_(self) -> None:
        shape = tuple(self.activations.type.get_shape())
        if len(shape) < 2:
            raise VerifyException(f"'{self.name}' op expects activations of rank >= 2 "
                                  f"[rows..., K], got {list(shape)}")
        if not isinstance(self.activations.type.get_element_type(), Float32Type):
            raise VerifyException(f"'{self.name}' op expects f32 activations")
        m, k = math.prod(shape[:-1]), shape[-1]
        if k % 4:
            raise VerifyException(f"'{self.name}' op expects K to be a multiple of 4, got {k}")
        table = self.table.type
        assert isinstance(table, TableType)
        if table.shape[:2] != (m, k // 4):
            raise VerifyException(f"'{self.name}' op expects a table of shape [{m}, {k // 4}, E] "
                                  f"but got {list(table.shape)}")
        sg = self.sum_group.value.data
        if sg <= 0 or sg % 4:
            raise VerifyException(f"'{self.name}' op expects sums over a multiple of 4, got {sg}")
        if table.is_quantized and sg % table.scale_group.data and sg != k:
            raise VerifyException(f"'{self.name}' op expects the table scale group "
                                  f"({table.scale_group.data}) to divide the sum group ({sg})")
        if tuple(self.sums.type.get_shape()) != (m, -(-k // sg)):
            raise VerifyException(f"'{self.name}' op expects sums of shape [{m}, {-(-k // sg)}]")
        term = self.body.block.last_op
        if not isinstance(term, YieldOp) or term.value.type != self.activations.type:
            raise VerifyException(f"'{self.name}' op expects its region to yield the "
                                  f"activations ({self.activations.type})")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminator of `lut.fused_precompute`: the activations its producer computed."""

    name = "lut.yield"
    value = operand_def(TensorType)
    assembly_format = "$value attr-dict `:` type($value)"
    traits = traits_def(IsTerminator(), HasParent(FusedPrecomputeOp), Pure())

    def __init__(self, value: SSAValue, attributes: dict[str, Attribute] | None = None):
        super().__init__(operands=[value], attributes=attributes or {})
