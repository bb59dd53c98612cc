"""Float GEMMs (`linalg.matmul` on f32) as calls into OpenBLAS.

The BLAS is the one in the `scipy-openblas32` wheel (a base dependency): its C header
(`cblas.h`, every symbol prefixed `scipy_`: `scipy_cblas_sgemm`) and `libscipy_openblas.so`,
which compiler/codegen/build.py links with an rpath to the wheel's lib directory. Without the
wheel (or with LUTC_BLAS=0) float matmuls stay emitted loops (emit_c.py), with a one-line
note at build time.

    %c = linalg.matmul ins(%a, %b : tensor<?x1024xf32>, tensor<1024x4096xf32>)
                       outs(%zero : tensor<?x4096xf32>)
  becomes
    lutc_sgemm(M, 4096, 1024, a, b, 0.0f, t7);

`outs` from a `linalg.fill` of 0.0 is beta = 0 (the fill is not emitted when the GEMMs are
its only readers); any other init is copied into the result first and accumulated (beta = 1).

Threads: one pool, lutrt's. OpenBLAS is set to one thread (`scipy_openblas_set_num_threads(1)`
before the first GEMM) and `lutc_sgemm` splits the GEMM itself into column blocks of B and C
run through `lutrt_parallel_for`, each an OpenBLAS call in a pool thread. Letting OpenBLAS run
its own pool instead would leave two sets of workers on the same cores: OpenBLAS's spin after
each call while lutrt's poll for the next LUT GEMM, and with one thread per core each pool's
spinning steals the other's core (measured in bench/bench_codegen_ops.py). Column blocks keep
each call's packing to A (the activations, M x K), not B (the weights); a block is at least 64
columns, and GEMMs under LUTC_SGEMM_SPLIT_FLOPS run in the calling thread in one call.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type, FloatAttr
from xdsl.dialects.linalg import ops as linalg
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr

# below this a GEMM is not split (its pool hand-off would cost more than the second thread
# saves: measured in bench/bench_codegen_ops.py)
SPLIT_FLOPS = 4_000_000


@functools.cache
def openblas() -> tuple[Path, Path, str] | None:
    """(include dir, lib dir, library file name) of the scipy-openblas32 wheel, or None."""
    if os.environ.get("LUTC_BLAS", "1") == "0":
        return None
    try:
        import scipy_openblas32 as wheel
    except ImportError:
        return None
    include, lib = Path(wheel.get_include_dir()), Path(wheel.get_lib_dir())
    name = wheel.get_library(fullname=True)
    if not (include / "cblas.h").is_file() or not (lib / name).is_file():
        return None
    return include, lib, name


@functools.cache
def _note_missing() -> None:
    print("lutc: note: no BLAS (scipy-openblas32 missing or LUTC_BLAS=0); float matmuls are emitted as loops",
          file=sys.stderr)


_HEADER = [
    "/* float GEMMs: OpenBLAS (scipy-openblas32) in one thread per call; lutc_sgemm splits",
    " * a large GEMM into column blocks over lutrt's pool (one pool: compiler/codegen/emit_blas.py) */",
    '#include "cblas.h"',
    f"#define LUTC_SGEMM_SPLIT_FLOPS {SPLIT_FLOPS}.0",
    "struct lutc_sgemm_ctx { const float *a, *b; float *c; int m, n, k, nb; float beta; };",
    "static void lutc_sgemm_task(void *arg, int begin, int end)",
    "{",
    "    const struct lutc_sgemm_ctx *g = arg;",
    "    const int j0 = begin * g->nb, j1 = end * g->nb < g->n ? end * g->nb : g->n;",
    "    scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, j1 - j0, g->k, 1.0f,",
    "                      g->a, g->k, g->b + j0, g->n, g->beta, g->c + j0, g->n);",
    "}",
    "static void lutc_blas_one_thread(void)",
    "{",
    "    static int done;",
    "    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {",
    "        scipy_openblas_set_num_threads(1);",
    "        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);",
    "    }",
    "}",
    "/* c[m, n] = a[m, k] b[k, n] + beta c, row-major (not from inside a pool task: it asks",
    " * the pool for its thread count) */",
    "static void lutc_sgemm(int64_t m, int n, int k, const float *a, const float *b, float beta,"
    " float *c)",
    "{",
    "    lutc_blas_one_thread();",
    "    const int threads = lutrt_get_num_threads();",
    "    struct lutc_sgemm_ctx g = {a, b, c, (int)m, n, k, n, beta};",
    "    if (threads < 2 || n < 128 || 2.0 * m * n * k < LUTC_SGEMM_SPLIT_FLOPS) {",
    "        lutc_sgemm_task(&g, 0, 1);",
    "        return;",
    "    }",
    "    g.nb = (n + 2 * threads - 1) / (2 * threads);  /* two blocks per thread, */",
    "    g.nb = g.nb < 64 ? 64 : (g.nb + 15) / 16 * 16;  /* whole vectors of 16 floats */",
    "    lutrt_parallel_for(0, (n + g.nb - 1) / g.nb, 1, lutc_sgemm_task, &g);",
    "}",
    "",
]


def _is_f32(value: SSAValue) -> bool:
    return isinstance(value.type.get_element_type(), Float32Type)  # type: ignore[attr-defined]


def _zero_fill(value: SSAValue) -> bool:
    owner = value.owner
    if not isinstance(owner, linalg.FillOp):
        return False
    scalar = owner.inputs[0].owner
    return (isinstance(scalar, arith.ConstantOp) and isinstance(scalar.value, FloatAttr)
            and scalar.value.value.data == 0.0)


class BlasEmitter:
    def __init__(self, emitter) -> None:
        self.e = emitter
        self.used = False

    def header(self) -> list[str]:
        return list(_HEADER) if self.used else []

    def handles(self, op: linalg.MatmulOp) -> bool:
        if not all(_is_f32(v) for v in (*op.inputs, *op.results)):
            return False
        if openblas() is None:
            _note_missing()
            return False
        return True

    def skips_fill(self, op: linalg.FillOp) -> bool:
        """A zero fill read only by BLAS GEMMs (as beta = 0) is not emitted."""
        result = op.results[0]
        def blas_init(use) -> bool:
            user = use.operation
            if isinstance(user, linalg.MatmulOp):
                return use.index == 2 and self.handles(user)
            return (isinstance(user, linalg.GenericOp) and use.index == 2
                    and _batch_matmul_dims(user) is not None and openblas() is not None)

        return _zero_fill(result) and bool(result.uses) and all(map(blas_init, result.uses))

    def emit_batch_matmul(self, op: linalg.GenericOp) -> bool:
        """gb.batch_matmul's contraction as one OpenBLAS call per batch index, the batch loop
        split over the pool; False (nothing emitted) for any other generic."""
        nb = _batch_matmul_dims(op)
        if nb is None or openblas() is None:
            return False
        e = self.e
        a, b = op.inputs
        init, result = op.outputs[0], op.results[0]
        out_shape = result.type.get_shape()
        m, n = out_shape[-2:]
        k = a.type.get_shape()[-1]
        if _zero_fill(init):
            c, beta = e.define(result), "0.0f"
        else:
            c, beta = e._init_from(result, init), "1.0f"
        self.used = True
        idx = [f"i{d}" for d in range(nb)]
        maps = [mp.data for mp in op.indexing_maps.data]

        def offset(value: SSAValue, amap) -> str:
            shape = value.type.get_shape()
            strides = [int(np.prod(shape[j + 1:])) for j in range(len(shape))]
            terms = [f"{idx[expr.position]} * {strides[j]}"
                     for j, expr in enumerate(amap.results[:-2]) if isinstance(expr, AffineDimExpr)]
            return " + ".join(terms) or "0"

        pa, pb = e.ptr(a), e.ptr(b)
        extent = e.rows(result, out_shape[0])
        batch = [extent, *out_shape[1:nb]]

        def nest(begin: str, end: str) -> None:
            # one OpenBLAS call per batch index in this task's thread (lutc_sgemm would ask
            # the pool, which a task must not)
            e._loops(batch, idx, (begin, end))
            e.line(f"scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, {m}, {n}, "
                   f"{k}, 1.0f, {pa} + ({offset(a, maps[0])}), {k}, {pb} + "
                   f"({offset(b, maps[1])}), {n}, {beta}, {c} + ({offset(result, maps[2])}), "
                   f"{n});")
            e._close(nb)

        e.line("lutc_blas_one_thread();")

        e.tasks.emit(extent, 2 * m * n * k * int(np.prod(out_shape[1:nb])), nest)
        return True

    def emit_matmul(self, op: linalg.MatmulOp) -> bool:
        """Emit `op` as lutc_sgemm; False (nothing emitted) when it is not for the BLAS."""
        if not self.handles(op):
            return False
        e = self.e
        a, b = op.inputs
        m, k = a.type.get_shape()
        n = b.type.get_shape()[1]
        init, result = op.outputs[0], op.results[0]
        if _zero_fill(init):
            c, beta = e.define(result), "0.0f"
        else:
            c, beta = e._init_from(result, init), "1.0f"
        self.used = True
        rows = e.rows(result, m)
        e.line(f"lutc_sgemm({rows}, {n}, {k}, {e.ptr(a)}, {e.ptr(b)}, {beta}, {c});")
        return True


def _batch_matmul_dims(op: linalg.GenericOp) -> int | None:
    """The number of batch dims if `op` is gb.batch_matmul's contraction
    out[b..., m, n] += a[b..., m, k] * b[b..., k, n] (batch dims of a or b may be broadcast:
    the constant 0), else None."""
    if len(op.inputs) != 2 or len(op.outputs) != 1 or not all(
            _is_f32(v) for v in (*op.inputs, *op.outputs)):
        return None
    maps = [m.data for m in op.indexing_maps.data]
    rank = maps[0].num_dims
    nb = rank - 3
    kinds = [it.data.value for it in op.iterator_types.data]
    if nb < 1 or kinds != ["parallel"] * (nb + 2) + ["reduction"]:
        return None
    dm, dn, dk = (AffineDimExpr(nb), AffineDimExpr(nb + 1), AffineDimExpr(nb + 2))
    out = maps[2].results
    if list(out) != [AffineDimExpr(d) for d in range(nb)] + [dm, dn]:
        return None
    for amap, last in ((maps[0], [dm, dk]), (maps[1], [dk, dn])):
        res = list(amap.results)
        if res[-2:] != last or len(res) - 2 > nb:
            return None
        lead = nb - (len(res) - 2)
        for j, expr in enumerate(res[:-2]):
            if not (expr == AffineDimExpr(lead + j) or (isinstance(expr, AffineConstantExpr)
                                                        and expr.value == 0)):
                return None
    a, b, acc = op.body.block.args
    body = list(op.body.block.ops)
    if len(body) != 3 or not isinstance(body[0], arith.MulfOp) or not isinstance(
            body[1], arith.AddfOp) or not isinstance(body[2], linalg.YieldOp):
        return None
    mul, add, yield_ = body
    if {mul.lhs, mul.rhs} != {a, b} or {add.lhs, add.rhs} != {acc, mul.result} or list(
            yield_.operands) != [add.result]:
        return None
    return nb


def link_flags(source: str) -> tuple[list[str], list[str]]:
    """(compile flags, link flags) for a model.c that calls the BLAS (none otherwise)."""
    found = openblas()
    if "scipy_cblas_sgemm" not in source or found is None:
        return [], []
    include, lib, name = found
    return [f"-I{include}"], [f"-L{lib}", f"-l:{name}", f"-Wl,-rpath,{lib}"]
