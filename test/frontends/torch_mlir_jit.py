"""An independent oracle: torch-mlir's own importer to linalg-on-tensors, lowered by upstream
MLIR passes to LLVM and run with its JIT execution engine."""

from __future__ import annotations

import ctypes

import numpy as np

PIPELINE = (
    "builtin.module(func.func(linalg-generalize-named-ops),"
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "func.func(convert-linalg-to-loops),func.func(lower-affine),convert-scf-to-cf,"
    "func.func(expand-strided-metadata),finalize-memref-to-llvm,convert-math-to-llvm,"
    "convert-math-to-libm,convert-arith-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"
    "reconcile-unrealized-casts)"
)


class _Unranked(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int64), ("descriptor", ctypes.c_void_p)]


def _strided_view(u: _Unranked, elem_size: int) -> np.ndarray:
    rank = u.rank
    words = (ctypes.c_int64 * (3 + 2 * rank)).from_address(u.descriptor)
    aligned, offset = words[1], words[2]
    sizes, strides = list(words[3:3 + rank]), list(words[3 + rank:3 + 2 * rank])
    span = 1 + sum((n - 1) * st for n, st in zip(sizes, strides)) if all(sizes) else 0
    raw = (ctypes.c_byte * ((offset + span) * elem_size)).from_address(aligned)
    dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[elem_size]
    flat = np.ctypeslib.as_array(raw).view(dtype)[offset:]
    return np.lib.stride_tricks.as_strided(flat, sizes, [st * elem_size for st in strides])


# the wheel ships no libmlir_c_runner_utils: provide the one runtime function the code calls
@ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.POINTER(_Unranked), ctypes.POINTER(_Unranked))
def _memref_copy(elem_size, src, dst):
    _strided_view(dst.contents, elem_size)[...] = _strided_view(src.contents, elem_size)


def jit_torch_mlir(model, args):
    """Compile `model(*args)` through torch-mlir; returns run(list of arrays, out_rank)."""
    from torch_mlir import execution_engine, fx, ir, passmanager
    from torch_mlir.runtime import np_to_memref as rt

    module = fx.export_and_import(model, *args, output_type="linalg-on-tensors",
                                  func_name="main")
    with module.context:
        for op in module.body.operations:
            if op.operation.name == "func.func":
                op.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
        passmanager.PassManager.parse(PIPELINE).run(module.operation)
    engine = execution_engine.ExecutionEngine(module, opt_level=2)
    engine.raw_register_runtime("memrefCopy", ctypes.cast(_memref_copy, ctypes.c_void_p))

    def run(inputs, out_rank: int) -> np.ndarray:
        res = ctypes.pointer(ctypes.pointer(rt.make_nd_memref_descriptor(out_rank,
                                                                         ctypes.c_float)()))
        keep = [np.ascontiguousarray(a) for a in inputs]
        ptrs = [ctypes.pointer(ctypes.pointer(rt.get_ranked_memref_descriptor(a))) for a in keep]
        engine.invoke("main", res, *ptrs)
        return rt.ranked_memref_to_numpy(res[0]).copy()

    return run
