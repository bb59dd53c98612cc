"""Float matmuls as OpenBLAS calls (compiler/codegen/emit_blas.py): the C text, and results
against numpy for non-square, single-row and dynamic-row GEMMs at 1 and 2 threads."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, i64
from xdsl.dialects.linalg import ops as linalg

from lutc.compiler.codegen import emit_blas
from lutc.compiler.codegen.emit_c import ROW_ARGS_ATTR, ROWS_ARG_ATTR, CEmitter
from lutc.compiler.frontends.graph_builder import GraphBuilder
from test.compiler.c_harness import compile_and_load

RNG = np.random.default_rng(1)
pytestmark = pytest.mark.skipif(emit_blas.openblas() is None, reason="no scipy-openblas32")


def _gemm(m: int, k: int, n: int, rows_arg: bool = False, init: bool = False):
    """x[m, k] @ W[k, n] (W a weight); `init`: accumulate into an input c[m, n]."""
    w = RNG.standard_normal((k, n)).astype(np.float32)
    gb = GraphBuilder()
    x = gb.add_input((m, k), np.float32)
    if rows_arg:
        gb.add_input((1,), np.int64)
    if init:
        c = gb.add_input((m, n), np.float32)
        y = gb._insert(linalg.MatmulOp([x, gb.weight(w, "w")], [c]))
    else:
        y = gb.matmul(x, gb.weight(w, "w"))
    module = gb.finish([y])
    if rows_arg:
        fn = next(iter(module.ops))
        fn.attributes[ROWS_ARG_ATTR] = IntegerAttr(1, i64)
        fn.attributes[ROW_ARGS_ATTR] = ArrayAttr([IntegerAttr(0, i64)])
    return module, gb.weights.arrays, w


def _c_text(module, weights) -> str:
    from lutc.compiler.codegen.fold_weights import fold_weights
    from lutc.compiler.weight_store import WeightStore

    module, store = module.clone(), WeightStore()
    for name, array in weights.items():
        store[name] = array
    fold_weights(module, store)
    return CEmitter(module, store).emit("main")


def _check(model, inputs, reference, rows=None):
    for threads in (1, 2):
        model.set_num_threads(threads)
        (out,) = model(*inputs)
        out = out if rows is None else out[:rows]
        err = np.abs(out - reference).max() / np.abs(reference).max()
        assert err < 1e-5, (threads, err)
    model.set_num_threads(0)


def test_float_matmul_is_an_sgemm_call():
    module, weights, _ = _gemm(64, 300, 70)
    text = _c_text(module, weights)
    main = text[text.index("void lutc_main("):]
    assert "lutc_sgemm(64, 70, 300, in0, ((const float *)(W + 0)), 0.0f, " in main
    assert '#include "cblas.h"' in text and "scipy_cblas_sgemm(" in text
    assert "scipy_openblas_set_num_threads(1)" in text  # one pool: lutrt's
    assert "+= s *" not in main  # no emitted GEMM loop, and the zero fill is not emitted
    assert "t1[i] = " not in main


@pytest.mark.parametrize("m, k, n", [(64, 300, 70), (1, 512, 1000), (96, 1024, 2048)])
def test_sgemm_matches_numpy(tmp_path, m, k, n):
    module, weights, w = _gemm(m, k, n)
    model = compile_and_load(module, weights, tmp_path)
    x = RNG.standard_normal((m, k)).astype(np.float32)
    _check(model, [x], x.astype(np.float64) @ w)


def test_sgemm_accumulates_into_its_init(tmp_path):
    module, weights, w = _gemm(33, 200, 130, init=True)
    assert ", 1.0f, " in _c_text(module, weights)
    model = compile_and_load(module, weights, tmp_path)
    x = RNG.standard_normal((33, 200)).astype(np.float32)
    c = RNG.standard_normal((33, 130)).astype(np.float32)
    _check(model, [x, c], c + x.astype(np.float64) @ w)


def test_sgemm_covers_the_dynamic_rows(tmp_path):
    module, weights, w = _gemm(32, 576, 1536, rows_arg=True)
    assert "lutc_sgemm(M, 1536, 576, " in _c_text(module, weights)
    model = compile_and_load(module, weights, tmp_path)
    x = RNG.standard_normal((32, 576)).astype(np.float32)
    for rows in (1, 7, 32):
        _check(model, [x, np.array([rows], np.int64)], x[:rows].astype(np.float64) @ w, rows)


def test_without_the_wheel_matmuls_stay_loops(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUTC_BLAS", "0")
    emit_blas.openblas.cache_clear()
    emit_blas._note_missing.cache_clear()
    try:
        module, weights, w = _gemm(16, 64, 48)
        text = _c_text(module, weights)
        assert "sgemm" not in text and "+= s *" in text
        assert "float matmuls are emitted as loops" in capsys.readouterr().err
        model = compile_and_load(module, weights, tmp_path)
        x = RNG.standard_normal((16, 64)).astype(np.float32)
        _check(model, [x], x.astype(np.float64) @ w)
    finally:
        monkeypatch.delenv("LUTC_BLAS")
        emit_blas.openblas.cache_clear()


def test_batch_matmul_is_one_sgemm_per_batch(tmp_path):
    """gb.matmul on 4-D x 3-D (a broadcast batch dim): a generic contraction, emitted as
    OpenBLAS calls in a loop over the batch split over the pool."""
    gb = GraphBuilder()
    a = gb.add_input((2, 3, 64, 48), np.float32)
    b = gb.add_input((3, 48, 40), np.float32)
    module = gb.finish([gb.matmul(a, b)])
    text = _c_text(module, {})
    main = text[text.index("void lutc_main("):]
    assert ("CblasNoTrans, 64, 40, 48, 1.0f, in0 + (i0 * 9216 + i1 * 3072), 48, "
            "in1 + (i1 * 1920), 40, 0.0f, ") in text
    assert "lutc_parallel(2, " in main and "for (int64_t i3 = 0" not in text
    model = compile_and_load(module, {}, tmp_path)
    x = RNG.standard_normal((2, 3, 64, 48)).astype(np.float32)
    y = RNG.standard_normal((3, 48, 40)).astype(np.float32)
    _check(model, [x, y], np.matmul(x.astype(np.float64), y))
