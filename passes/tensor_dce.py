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
    changed = True
    while changed:
        changed = False
        for op in reversed(list(module.walk())):
            if op.parent is not None and _removable(op):
                op.detach()
                op.erase()
                changed = True
