"""Erase unused ops on value-semantic tensors.

xDSL's dead-code elimination keeps linalg ops on tensors (it cannot prove them free of side
effects); on lutc's tensor levels every op without memref operands is pure.
"""

from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.ir import Operation


def _removable(op: Operation) -> bool:
    if op.regions and not op.results:
        return False
    if any(isinstance(v.type, MemRefType) for v in (*op.operands, *op.results)):
        return False
    return bool(op.results) and all(not r.uses for r in op.results)


def erase_dead_tensor_ops(module: ModuleOp) -> None:
    """One walk from the bottom up (users before producers, so chains go in one pass), then
    a worklist of the producers an erasure left unused (those in an enclosing region)."""
    worklist = list(module.walk())  # popped from the end: bottom up
    while worklist:
        op = worklist.pop()
        if op.parent is None or not _removable(op):
            continue
        producers = [v.owner for v in op.operands if isinstance(v.owner, Operation)]
        op.detach()
        op.erase()
        worklist.extend(producers)
