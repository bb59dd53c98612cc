"""Slices that only loops read are strided windows, not copies (compiler/codegen/buffer_plan.py
strided_slices, emit_c.py): which slices take that form, that the compiled C equals the
tensor interpreter bit for bit on 1 and 2 threads, and that the window's source stays live
(its arena slot is not reused) while a window of it is read."""

from __future__ import annotations

import re

import numpy as np

from lutc.compiler.codegen.buffer_plan import plan_buffers
from lutc.compiler.codegen.emit_c import CEmitter
from lutc.compiler.frontends.graph_builder import GraphBuilder
from lutc.compiler.interp.interpret import run_module
from test.compiler.c_harness import compile_and_load

RNG = np.random.default_rng(11)
ROWS, WIDTH = 40, 96


def _graph():
    """A fused-GEMM-like output split in three, as the decoder does: Q's halves through an
    expand_shape (RoPE), a slice read by a loop (SwiGLU), a slice that a concat reads (must
    stay a copy), and a fresh buffer allocated after the windows' last reader."""
    gb = GraphBuilder()
    x = gb.add_input((ROWS, WIDTH), np.float32)
    y = gb.map(lambda s, v: s.mul(v, s.const(1.5, v.type)), [x])        # the "GEMM output"
    q = gb.slice(y, [0, 0], [ROWS, 64])                                   # window of y
    heads = gb.reshape(q, (ROWS, 2, 32))                                  # window (expand)
    lo = gb.slice(heads, [0, 0, 0], [ROWS, 2, 16])                        # window of a window
    hi = gb.slice(heads, [0, 0, 16], [ROWS, 2, 16])
    rot = gb.map(lambda s, a, b: s.sub(s.mul(a, a), b), [lo, hi])       # RoPE-like
    gate = gb.slice(y, [0, 64], [ROWS, 16])                               # window
    up = gb.slice(y, [0, 80], [ROWS, 16])                                 # read by a concat: copy
    act = gb.map(lambda s, g, u: s.mul(g, u), [gate, up])
    cat = gb.concat([up, act], 1)
    later = gb.map(lambda s, v: s.add(v, v), [cat])                       # allocated after
    return gb.finish([rot, later, gb.reduce(gate, [1], "sum")])


def test_only_slices_read_by_loops_are_windows():
    module = _graph()
    text = CEmitter(module, {}).emit("main")
    views = re.findall(r"/\* strided view: offset (\d+), strides \(([\d, ]+)\) \*/", text)
    # q (offset 0), its expand (0), lo (0) and hi (16) of the expand, gate (64)
    assert sorted((int(o), s) for o, s in views) == sorted([
        (0, "96, 1"), (0, "96, 32, 1"), (0, "96, 32, 1"), (16, "96, 32, 1"), (64, "96, 1")])
    assert text.count("strided view") == 5
    fn = next(op for op in module.walk() if op.name == "func.func")
    plan = plan_buffers(fn)
    assert len(plan.strided) == 4  # the four slices; `up` feeds the concat: a buffer
    y = next(iter(plan.strided)).owner.source
    while y in plan.root:
        y = plan.root[y]
    # y stays live while its windows are read (up to the sum over `gate`, the last op): none
    # of the loop results computed meanwhile takes y's slot
    assert all(plan.offsets[v] != plan.offsets[y] for v in plan.offsets
               if v is not y and v.owner.name == "linalg.generic")


def test_windows_compute_what_the_interpreter_does(tmp_path):
    model = compile_and_load(_graph(), {}, tmp_path)
    x = RNG.standard_normal((ROWS, WIDTH)).astype(np.float32)
    want = run_module(_graph(), {}, [x])
    for threads in (1, 2):
        model.set_num_threads(threads)
        got = model(x)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    model.set_num_threads(0)
    y = x * np.float32(1.5)
    lo = y[:, :64].reshape(ROWS, 2, 32)[..., :16]
    hi = y[:, :64].reshape(ROWS, 2, 32)[..., 16:]
    np.testing.assert_array_equal(got[0], lo * lo - hi)
    up, gate = y[:, 80:], y[:, 64:80]
    np.testing.assert_array_equal(got[1], 2 * np.concatenate([up, gate * up], 1))
