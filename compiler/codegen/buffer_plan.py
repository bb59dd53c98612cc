"""Liveness-based memory planning for a static-shape function on tensors.

Every tensor value gets a buffer. Reshapes (collapse/expand/reshape/cast) are views of their
source; weights live in the weights blob; function arguments are the caller's arrays; every
other value gets a slot in one activation arena, reused once its last reader has run
(first-fit over 64-byte aligned offsets). `peak_bytes` is the arena size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects import func, tensor
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from lutc.dialects.lut_ops import WeightOp
from lutc.dialects.table_type import TableType

ALIGN = 64
VIEW_OPS = (tensor.CollapseShapeOp, tensor.ExpandShapeOp, tensor.ReshapeOp, tensor.CastOp)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def value_bytes(value: SSAValue) -> int:
    from lutc.dialects.dtypes import numpy_dtype

    typ = value.type
    if isinstance(typ, TableType):
        m = typ.shape[0]  # entries, then (int8 tables) the f32 scales at the next ALIGN
        return _align(m * typ.row_entries_bytes) + m * typ.row_scale_count * 4
    assert isinstance(typ, TensorType)
    count = 1
    for d in typ.get_shape():
        count *= d
    return count * numpy_dtype(typ).itemsize


@dataclass
class BufferPlan:
    offsets: dict[SSAValue, int] = field(default_factory=dict)  # arena slots
    root: dict[SSAValue, SSAValue] = field(default_factory=dict)  # view -> viewed value
    peak_bytes: int = 0

    def storage_of(self, value: SSAValue) -> SSAValue:
        while value in self.root:
            value = self.root[value]
        return value


def plan_buffers(function: func.FuncOp) -> BufferPlan:
    plan = BufferPlan()
    ops: list[Operation] = list(function.body.block.ops)
    position = {op: i for i, op in enumerate(ops)}

    def last_use(value: SSAValue) -> int:
        end = position.get(value.owner, -1) if isinstance(value.owner, Operation) else -1
        for use in value.uses:
            user = use.operation
            while user.parent_op() is not function and user.parent_op() is not None:
                user = user.parent_op()  # uses inside a linalg body count at the linalg op
            end = max(end, position.get(user, end))
        return end

    for op in ops:
        if isinstance(op, VIEW_OPS):
            plan.root[op.results[0]] = op.operands[0]

    # liveness of each storage root = max over all its views
    end_of: dict[SSAValue, int] = {}
    for op in ops:
        for result in op.results:
            root = plan.storage_of(result)
            end_of[root] = max(end_of.get(root, -1), last_use(result))

    live: list[tuple[int, int, SSAValue]] = []  # (offset, size, value)
    for i, op in enumerate(ops):
        live = [slot for slot in live if end_of[slot[2]] >= i]
        if isinstance(op, (WeightOp, tensor.EmptyOp, *VIEW_OPS)):
            continue
        for result in op.results:
            if not isinstance(result.type, (TensorType, TableType)):
                continue
            size = _align(value_bytes(result))
            offset = 0
            for slot_off, slot_size, _ in sorted(live, key=lambda s: s[0]):
                if offset + size <= slot_off:
                    break
                offset = max(offset, slot_off + slot_size)
            plan.offsets[result] = offset
            live.append((offset, size, result))
            plan.peak_bytes = max(plan.peak_bytes, offset + size)
    return plan
