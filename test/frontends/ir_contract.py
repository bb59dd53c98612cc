"""Checks that imported IR stays inside the frontend IR contract (the ops the pipeline expects)."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.linalg.ops import GenericOp, MatmulOp
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr

from lutc.dialects.lut_ops import DequantizeOp

TOP_LEVEL = {
    "builtin.module", "func.func", "func.return", "lut.weight", "lut.dequantize",
    "linalg.generic", "linalg.matmul", "linalg.fill", "linalg.transpose", "tensor.empty",
    "tensor.collapse_shape", "tensor.expand_shape", "tensor.extract_slice",
    "tensor.insert_slice", "tensor.concat", "arith.constant",
}
BODY_PREFIXES = ("arith.", "math.")
BODY_OPS = {"linalg.index", "linalg.yield", "tensor.extract"}


def check_contract(module: ModuleOp) -> None:
    funcs = [op for op in module.ops]
    assert len(funcs) == 1 and funcs[0].sym_name.data == "main"
    for op in module.walk():
        parent = op.parent_op()
        if isinstance(parent, GenericOp) or parent is not None and parent.name in (
                "linalg.fill", "linalg.matmul", "linalg.transpose"):
            assert op.name.startswith(BODY_PREFIXES) or op.name in BODY_OPS, op.name
            continue
        assert op.name in TOP_LEVEL, f"op {op.name} is outside the frontend IR contract"
        if op.name == "arith.constant":
            typ = op.results[0].type
            if hasattr(typ, "get_shape"):
                assert len(list(typ.get_shape())) == 0 or typ.element_count() <= 16
        if isinstance(op, GenericOp):
            for m in op.indexing_maps.data:
                for e in m.data.results:
                    assert isinstance(e, AffineDimExpr) or (
                        isinstance(e, AffineConstantExpr) and e.value == 0), str(m)
        if isinstance(op, MatmulOp):
            for v in op.operands:
                assert len(v.type.get_shape()) == 2
        if isinstance(op, DequantizeOp):
            # canonical form: dequantize -> transpose [1, 0] -> matmul rhs
            (use,) = list(op.result.uses)
            transpose = use.operation
            assert transpose.name == "linalg.transpose"
            (muse,) = list(transpose.results[0].uses)
            assert muse.operation.name == "linalg.matmul" and muse.index == 1
            assert op.codes.type.get_shape()[1] % 4 == 0
