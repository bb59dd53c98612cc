"""Loop nests as pool tasks (compiler/codegen/emit_tasks.py): which nests are split, and that
splitting changes no result (bitwise for elementwise nests) at 1 and 2 threads."""

from __future__ import annotations

import re

import numpy as np
import pytest
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, i64

from lutc.compiler.codegen.emit_c import ROW_ARGS_ATTR, ROWS_ARG_ATTR, CEmitter, tag_layer
from lutc.compiler.frontends.graph_builder import GraphBuilder
from test.compiler.c_harness import compile_and_load

RNG = np.random.default_rng(0)


def _c_text(module, weights=None) -> str:
    return CEmitter(module.clone(), weights or {}).emit("main")


def _main(text: str) -> str:
    return text[text.index("void lutc_main("):]


def _run_both(model, *inputs):
    model.set_num_threads(1)
    one = model(*inputs)
    model.set_num_threads(2)
    two = model(*inputs)
    model.set_num_threads(0)
    return one, two


def _elementwise_and_tiny():
    gb = GraphBuilder()
    x = gb.add_input((64, 2048), np.float32)
    y = gb.add_input((64, 2048), np.float32)
    silu = gb.map(lambda s, a, b: s.mul(s.mul(a, s.sigmoid(a)), b), [x, y])
    tiny = gb.binary("add", gb.slice(x, [0, 0], [2, 4]), 1.0)
    return gb.finish([silu, tiny])


def test_large_generic_is_a_task_and_a_tiny_one_stays_inline():
    text = _c_text(_elementwise_and_tiny())
    main = _main(text)
    assert main.count("lutc_parallel(") == 1
    assert "lutc_parallel(64, 64 * " in main
    task = re.search(r"static void lutc_task1\(void \*arg, int begin, int end\)\n\{.*?\n\}",
                     text, re.S).group(0)
    assert "for (int64_t i0 = begin; i0 < end; ++i0)" in task
    assert "const float *restrict in0 = c->in0;" in task  # restrict: the loop vectorizes
    # the [2, 4] add stays a loop nest in lutc_main
    assert re.search(r"for \(int64_t i0 = 0; i0 < 2; \+\+i0\)", main)


def test_elementwise_bitwise_at_1_and_2_threads(tmp_path):
    model = compile_and_load(_elementwise_and_tiny(), {}, tmp_path)
    x, y = (RNG.standard_normal((64, 2048)).astype(np.float32) for _ in range(2))
    one, two = _run_both(model, x, y)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)
    ref = (x.astype(np.float64) / (1 + np.exp(-x.astype(np.float64)))) * y
    np.testing.assert_allclose(one[0], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(one[1], x[:2, :4] + 1.0)


def test_loops_are_isa_versions_named_in_the_pool_profile(tmp_path):
    """emit_c.ISA_CLONES: with GCC >= 11 on x86-64 each loop function is an ifunc over its
    baseline, x86-64-v3 and x86-64-v4 builds; the pool profile names the loop after its
    function, not after the PLT stub its address is."""
    import shutil
    import subprocess

    from lutc.runtime import pool_profile

    model = compile_and_load(_elementwise_and_tiny(), {}, tmp_path)
    text = (tmp_path / "model.c").read_text()
    assert "LUTC_ISA_CLONES static void lutc_task1(" in text
    if not shutil.which("nm"):
        pytest.skip("no nm")
    (so,) = tmp_path.glob("model-*.so")
    symbols = subprocess.run(["nm", str(so)], capture_output=True, text=True).stdout
    if "lutc_task1.arch_x86_64_v4" not in symbols:
        pytest.skip("cc without target_clones (not GCC >= 11 on x86-64)")
    assert re.search(r" i lutc_task1$", symbols, re.M)  # the ifunc
    assert "lutc_task1.arch_x86_64_v3" in symbols and "lutc_task1.default" in symbols
    x, y = (RNG.standard_normal((64, 2048)).astype(np.float32) for _ in range(2))
    model.set_num_threads(2)
    with pool_profile.recording(model.lib) as prof:
        model(x, y)
    model.set_num_threads(0)
    assert [s.name for s in prof.loops] == ["lutc_task1"]


def _reductions():
    gb = GraphBuilder()
    x = gb.add_input((512, 256), np.float32)
    soft = gb.softmax(x, 1)  # reductions over the last dim: split over rows
    col = gb.reduce(x, [0], "sum")  # a reduction over rows: never split
    return gb.finish([soft, col])


def test_reduction_over_rows_is_not_split_and_row_reductions_are():
    text = _c_text(_reductions())
    main = _main(text)
    # softmax: max, exp, sum, div nests are tasks; each task's inner loop covers whole rows
    assert main.count("lutc_parallel(512, ") == 4
    for body in re.findall(r"static void lutc_task\d+\(.*?\n\}", text, re.S):
        # a whole-row loop, or (the sum) whole-row blocks of lanes (lane_reduction.py)
        assert re.search(r"for \(int64_t (i1|rb\d+) = 0; \1 < 256; ", body)
    # the column sum (d0 = rows is a reduction dim) is no task: a loop nest in lutc_main
    assert main.count("lutc_parallel(") == 4
    assert "for (int64_t i0 = 0; i0 < 512; ++i0) {" in main


def test_reductions_match_numpy_at_1_and_2_threads(tmp_path):
    model = compile_and_load(_reductions(), {}, tmp_path)
    x = RNG.standard_normal((512, 256)).astype(np.float32) * 4
    one, two = _run_both(model, x)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)  # each row's reduction runs in one thread
    e = np.exp(x.astype(np.float64) - x.max(1, keepdims=True))
    np.testing.assert_allclose(one[0], e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(one[1], x.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)


def _batch_of_one():
    """Exported programs' shapes: a batch dim of 1 before the rows (and heads)."""
    gb = GraphBuilder()
    x = gb.add_input((1, 64, 2048), np.float32)
    s = gb.add_input((1, 4, 64, 64), np.float32)
    silu = gb.map(lambda b, a: b.mul(a, b.sigmoid(a)), [x])
    soft = gb.softmax(s, 3)  # row reductions under two outer dims, the first of them 1
    xt = gb.transpose(x, [0, 2, 1])
    part = gb.slice(x, [0, 0, 0], [1, 64, 1024])
    return gb.finish([silu, soft, xt, part])


def test_a_leading_unit_dim_splits_the_next_dim():
    text = _c_text(_batch_of_one())
    main = _main(text)
    assert "lutc_parallel(64, 64 * " in main  # SiLU and the slice, over the 64 rows
    assert "lutc_parallel(4, 4 * " in main  # softmax: over the heads, whole rows per task
    assert "lutc_parallel(2048, 2048 * " in main  # the transpose, over its output rows
    tasks = re.findall(r"static void lutc_task\d+\(void \*arg, int begin, int end\)\n\{.*?\n\}",
                       text, re.S)
    assert tasks and all("i0 = begin" not in t and "i1 = begin; i1 < end" in t for t in tasks)
    assert all("for (int64_t i0 = 0; i0 < 1; ++i0)" in t for t in tasks)


def test_a_leading_unit_dim_bitwise_at_1_and_2_threads(tmp_path):
    model = compile_and_load(_batch_of_one(), {}, tmp_path)
    x = RNG.standard_normal((1, 64, 2048)).astype(np.float32)
    s = RNG.standard_normal((1, 4, 64, 64)).astype(np.float32) * 4
    one, two = _run_both(model, x, s)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(one[0], x64 / (1 + np.exp(-x64)), rtol=1e-5, atol=1e-6)
    e = np.exp(s.astype(np.float64) - s.max(3, keepdims=True))
    np.testing.assert_allclose(one[1], e / e.sum(3, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(one[2], x.transpose(0, 2, 1))
    np.testing.assert_array_equal(one[3], x[:, :, :1024])


def test_dynamic_rows_split_only_the_real_rows(tmp_path):
    c, k = 32, 4096
    gb = GraphBuilder()
    x = gb.add_input((c, k), np.float32)
    gb.add_input((1,), np.int64)
    y = gb.map(lambda s, v: s.mul(v, s.exp(v)), [x])
    module = gb.finish([y])
    fn = next(iter(module.ops))
    fn.attributes[ROWS_ARG_ATTR] = IntegerAttr(1, i64)
    fn.attributes[ROW_ARGS_ATTR] = ArrayAttr([IntegerAttr(0, i64)])
    assert "lutc_parallel(M, M * " in _main(_c_text(module))
    model = compile_and_load(module, {}, tmp_path)
    xs = RNG.standard_normal((c, k)).astype(np.float32)
    for rows in (1, 5, 32):
        one, two = _run_both(model, xs, np.array([rows], np.int64))
        np.testing.assert_array_equal(one[0][:rows], two[0][:rows])
        np.testing.assert_allclose(one[0][:rows], xs[:rows] * np.exp(xs[:rows].astype(np.float64)),
                                   rtol=1e-5, atol=1e-6)


def _rope_like_rows(c: int, heads: int, dim: int):
    """Row values through every copy op a decoder's RoPE and head split emit: reshape,
    slices of all rows, concat on an inner axis, transpose keeping rows first, insert_slice,
    fill (via full) and a broadcast."""
    gb = GraphBuilder()
    x = gb.add_input((c, heads * dim), np.float32)
    gb.add_input((1,), np.int64)
    h = gb.reshape(x, [c, heads, dim])
    lo = gb.slice(h, [0, 0, 0], [c, heads, dim // 2])
    hi = gb.slice(h, [0, 0, dim // 2], [c, heads, dim // 2])
    rot = gb.concat([gb.unary("neg", hi), lo], 2)
    t = gb.transpose(rot, [0, 2, 1])
    base = gb.full((c, dim, heads + 1), 0.5, t.type.get_element_type())
    ins = gb.insert_slice(t, base, [0, 0, 1])
    bias = gb.broadcast_to(gb.reshape(gb.slice(x, [0, 0], [c, 1]), [c, 1, 1]), [c, dim, heads + 1])
    module = gb.finish([gb.binary("add", ins, bias)])
    fn = next(iter(module.ops))
    fn.attributes[ROWS_ARG_ATTR] = IntegerAttr(1, i64)
    fn.attributes[ROW_ARGS_ATTR] = ArrayAttr([IntegerAttr(0, i64)])
    return module


def _rope_like_reference(x: np.ndarray, heads: int, dim: int) -> np.ndarray:
    h = x.reshape(len(x), heads, dim)
    rot = np.concatenate([-h[..., dim // 2:], h[..., :dim // 2]], 2).transpose(0, 2, 1)
    out = np.full((len(x), dim, heads + 1), 0.5, np.float32)
    out[..., 1:] = rot
    return out + x[:, :1, None]


def test_row_copies_loop_over_the_real_rows_only(tmp_path):
    """A decode step (M = 1) of a model compiled for chunks of 32 rows must not copy 32 rows
    in its slices, concats, transposes, fills and broadcasts: every copy is bounded by M, and
    the real rows equal numpy's at 1 and 2 threads."""
    c, heads, dim = 32, 3, 8
    module = _rope_like_rows(c, heads, dim)
    main = _main(_c_text(module))
    bounds = re.findall(r"for \(int64_t \w+ = 0; \w+ < (\w+);", main)
    assert bounds and str(c) not in bounds, bounds  # no loop over the static row capacity
    assert not re.search(rf"o < {c * heads}\b|o < {c * dim}\b", main)  # concat: M * ...
    model = compile_and_load(module, {}, tmp_path)
    xs = RNG.standard_normal((c, heads * dim)).astype(np.float32)
    for rows in (1, 5, 32):
        one, two = _run_both(model, xs, np.array([rows], np.int64))
        np.testing.assert_array_equal(one[0][:rows], two[0][:rows])
        np.testing.assert_array_equal(one[0][:rows], _rope_like_reference(xs[:rows], heads, dim))


def test_layer_bodies_share_their_tasks():
    gb = GraphBuilder()
    h = gb.binary("mul", gb.add_input((64, 1024), np.float32), 0.5)  # layers read the arena
    for layer in range(3):
        anchor = gb.block.last_op
        h = gb.map(lambda s, v: s.add(v, s.tanh(v)), [h])
        tag_layer(gb.block, anchor, layer)
    text = _c_text(gb.finish([h]))
    assert text.count("static void lutc_layer") == 1
    assert text.count("static void lutc_task") == 2  # the mul's, and one for all 3 layers
    assert "lutc_parallel(64, " in text[text.index("static void lutc_layer0("):]


def test_env_switch_keeps_loops_inline(monkeypatch):
    monkeypatch.setenv("LUTC_PARALLEL_LOOPS", "0")
    text = _c_text(_elementwise_and_tiny())
    assert "lutc_parallel" not in text and "lutrt_parallel_for" not in text


def test_decoder_with_every_nest_a_task_matches_inline_loops(tmp_path, monkeypatch):
    """A tiny llama (shared layer bodies, RMSNorm fused with lut.precompute, RoPE, SiLU*mul)
    with every loop nest a pool task: bitwise equal at 1 and 2 threads, and equal to the
    inline loops up to libmvec's expf (1 ulp)."""
    pytest.importorskip("transformers")
    from lutc.compiler.codegen import emit_tasks
    from test.llm.test_layer_bodies import compile_tiny, run

    monkeypatch.setattr(emit_tasks, "PARALLEL_WORK", 0)
    text, tasks = compile_tiny(tmp_path, "tasks", shared=True)
    layer = text[text.index("static void lutc_layer0("):]
    assert layer.count("lutc_parallel(M, ") >= 8
    assert "lutrt_precompute_row(" in text[:text.index("static void lutc_layer0(")]  # in a task
    monkeypatch.setenv("LUTC_PARALLEL_LOOPS", "0")
    _, inline = compile_tiny(tmp_path, "inline", shared=True)
    tasks.set_num_threads(1)
    one = run(tasks)
    tasks.set_num_threads(2)
    two = run(tasks)
    assert np.isfinite(one).all() and one.tobytes() == two.tobytes()
    np.testing.assert_allclose(one, run(inline), rtol=1e-4, atol=1e-4)
