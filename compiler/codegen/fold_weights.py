"""Fold weight-only computations into the weight store.

Ops whose operands are all weights (bit-plane extraction, weight transposes, and the layout
ops the passes add) are evaluated once, with the interpreter's numpy implementations, and
replaced by a `lut.weight` naming the result. The IR keeps only names; bytes stay in the store.
"""

from __future__ import annotations

from xdsl.dialects import tensor
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from lutc.compiler.interp.interpret import make_interpreter
from lutc.compiler.weight_store import WeightStore
from lutc.dialects.lut_ops import BitPlanesOp, WeightOp
from lutc.dialects.mirror_ops import MirrorCodesOp, MirrorScalesOp, MirrorZerosOp
from lutc.dialects.packed_ops import PackCodeBytesOp, PackOp, PackScalesOp
from lutc.passes.tensor_dce import erase_dead_tensor_ops

# Weight-only ops: bit planes, the symmetrization re-encodings, the runtime's packed layout.
FOLDABLE: tuple[type[Operation], ...] = (
    BitPlanesOp, MirrorCodesOp, MirrorScalesOp, MirrorZerosOp, PackOp, PackCodeBytesOp, PackScalesOp,
    linalg.TransposeOp, tensor.EmptyOp, tensor.ConcatOp,  # concat: lut-fuse-siblings
)


def _is_weight(op: Operation | None) -> bool:
    return isinstance(op, (WeightOp, tensor.EmptyOp))


def fold_weights(module: ModuleOp, store: WeightStore) -> int:
    """Fold every foldable op on weights; return how many were folded."""
    interpreter = make_interpreter(module, store)
    folded = 0
    for op in list(module.walk()):
        if isinstance(op, (WeightOp, tensor.EmptyOp)) or not isinstance(op, FOLDABLE):
            continue
        if not op.operands or not all(_is_weight(v.owner) for v in op.operands):
            continue
        inputs = tuple(interpreter.run_op(v.owner, ())[0] for v in op.operands)
        (value,) = interpreter.run_op(op, inputs)
        source = next(v.owner for v in op.operands if isinstance(v.owner, WeightOp))
        name = store.add(f"{source.weight_name.data}.{op.name.split('.')[-1]}", value)
        new = WeightOp(name, op.results[0].type)
        new.result.name_hint = op.results[0].name_hint
        op.parent.insert_op_before(new, op)
        op.results[0].replace_all_uses_with(new.result)
        op.detach()
        op.erase()
        folded += 1
    erase_dead_tensor_ops(module)
    return folded
