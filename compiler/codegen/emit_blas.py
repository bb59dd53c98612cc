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

from xdsl.dialects import arith
from xdsl.dialects.builtin import Float32Type, FloatAttr
from xdsl.dialects.linalg import ops as linalg
from xdsl.ir import SSAValue

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
    print("lutc: note: scipy-openblas32 not available; float matmuls are emitted as loops",
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
    "/* c[m, n] = a[m, k] b[k, n] + beta c, row-major */",
    "static void lutc_sgemm(int64_t m, int n, int k, const float *a, const float *b, float beta,"
    " float *c)",
    "{",
    "    static int one_thread;",
    "    if (!__atomic_load_n(&one_thread, __ATOMIC_ACQUIRE)) {",
    "        scipy_openblas_set_num_threads(1);",
    "        __atomic_store_n(&one_thread, 1, __ATOMIC_RELEASE);",
    "    }",
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
        return (_zero_fill(result) and bool(result.uses)
                and all(isinstance(u.operation, linalg.MatmulOp) and u.index == 2
                        and self.handles(u.operation) for u in result.uses))

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


def link_flags(source: str) -> tuple[list[str], list[str]]:
    """(compile flags, link flags) for a model.c that calls the BLAS (none otherwise)."""
    found = openblas()
    if "scipy_cblas_sgemm" not in source or found is None:
        return [], []
    include, lib, name = found
    return [f"-I{include}"], [f"-L{lib}", f"-l:{name}", f"-Wl,-rpath,{lib}"]
