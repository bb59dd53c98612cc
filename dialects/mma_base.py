"""What `lut.mma` and `lut.packed_mma` share: operands, weight format, the optional tile that
`lut-tile` chooses, and every check that does not depend on how the weights are laid out.

Both ops compute the bit-serial LUT mpGEMM of docs/design.md §2-3 (formula in `lut.mma`'s
docstring, dialects/lut_ops.py); they differ only in the layout of the codes, scales and zero
points (plain [B, N, K/4] bit planes and [N, NG] groups, or the runtime's packed blocks), which
each op checks in `verify_weights`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import Float32Type, TensorType
from xdsl.ir import SSAValue
from xdsl.irdl import (
    IRDLOperation,
    operand_def,
    opt_attr_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import TileAttr
from lutc.dialects.weight_format import WeightFormatAttr


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType)
    return tuple(typ.get_shape())


class LutMmaBase(IRDLOperation):
    """Operands `table, sums, codes, scales[, zeros]`, property `format`, optional attribute
    `tile` (#lut.tile, checked by the verifier), one f32 result [M, N]."""

    table = operand_def(TableType)
    sums = operand_def(TensorType)
    codes = operand_def(TensorType)  # the weight codes, in the subclass's layout
    scales = operand_def(TensorType)
    zeros = opt_operand_def(TensorType)
    format = prop_def(WeightFormatAttr)
    tile = opt_attr_def(TileAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def verify_weights(self, m: int, t: int, ng: int) -> int:
        """Checks codes, scales and (present) zeros in this op's layout; returns N."""
        raise NotImplementedError

    def _expect_shape(self, what: str, value: SSAValue, expected: Sequence[int]) -> None:
        actual = _shape(value)
        if actual != tuple(expected):
            raise VerifyException(
                f"'{self.name}' op expects {what} of shape {list(expected)} but got {list(actual)}")

    def verify_(self) -> None:
        fmt = self.format
        table = self.table.type
        assert isinstance(table, TableType)
        m, t, entries = table.shape
        k = 4 * t
        if entries != fmt.table_entries:
            raise VerifyException(
                f"'{self.name}' op format {'is' if fmt.is_mirrored else 'is not'} mirrored and "
                f"needs {fmt.table_entries}-entry tables but got {entries}-entry tables")
        if fmt.has_zero_point != (self.zeros is not None):
            raise VerifyException(
                f"'{self.name}' op format {'has' if fmt.has_zero_point else 'has no'} zero points "
                f"but {'none were' if self.zeros is None else 'a zeros operand was'} given")
        ng = fmt.num_groups(k)
        n = self.verify_weights(m, t, ng)
        self._expect_shape("sums", self.sums, [m, ng])
        if not isinstance(self.sums.type.get_element_type(), Float32Type):  # type: ignore
            raise VerifyException(f"'{self.name}' op expects sums of element type f32")
        if table.is_quantized and fmt.group_size % table.scale_group.data and fmt.group_size < k:
            raise VerifyException(
                f"'{self.name}' op expects the table scale group ({table.scale_group.data}) to "
                f"divide the weight group ({fmt.group_size})")
        self._expect_shape("result", self.result, [m, n])
