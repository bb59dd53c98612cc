"""Sum reductions over the innermost dim in LANES partial sums (compiler/codegen/
lane_reduction.py): which nests take that form, and that the compiled C adds in exactly the
documented order (a float32 emulation and the tensor interpreter match bit for bit), within
the stated error bound of the exact sum, the same at 1 and 2 threads."""

from __future__ import annotations

import re

import numpy as np

from lutc.compiler.codegen.emit_c import CEmitter
from lutc.compiler.codegen.lane_reduction import LANES, MIN_SIZE
from lutc.compiler.frontends.graph_builder import GraphBuilder
from lutc.compiler.interp.interpret import run_module
from test.compiler.c_harness import compile_and_load

RNG = np.random.default_rng(7)
WIDTH = 1000  # 62 whole blocks of 16 and a tail of 8


def _graph():
    gb = GraphBuilder()
    x = gb.add_input((24, WIDTH), np.float32)
    short = gb.add_input((24, MIN_SIZE - 1), np.float32)
    return gb.finish([gb.reduce(x, [1], "sum"),       # lanes
                      gb.reduce(x, [1], "max"),       # not a sum: sequential
                      gb.reduce(short, [1], "sum"),   # too short: sequential
                      gb.reduce(x, [0], "sum")])      # reduction dim outermost: sequential


def _lane_order(x: np.ndarray) -> np.ndarray:
    """The documented order in float32: lanes, the tree, the tail in order, the init (0)."""
    x = x.astype(np.float32)
    whole = x.shape[1] // LANES * LANES
    acc = np.zeros((x.shape[0], LANES), np.float32)
    for b in range(0, whole, LANES):
        acc += x[:, b:b + LANES]
    w = LANES // 2
    while w:
        acc[:, :w] += acc[:, w:2 * w]
        w //= 2
    s = acc[:, 0].copy()
    for i in range(whole, x.shape[1]):
        s += x[:, i]
    return np.float32(0) + s


def test_only_innermost_float_sums_take_lanes():
    text = CEmitter(_graph(), {}).emit("main")
    assert text.count(f"[{LANES}] = {{0}};") == 1
    assert re.search(r"for \(int64_t (rb\d+) = 0; \1 < 992; \1 \+= 16\)", text)
    assert re.search(r"for \(int64_t i1 = 992; i1 < 1000; \+\+i1\)", text)  # the tail
    assert f"for (int64_t i1 = 0; i1 < {MIN_SIZE - 1}; ++i1)" in text


def test_sum_adds_in_the_documented_order_within_the_bound(tmp_path):
    model = compile_and_load(_graph(), {}, tmp_path)
    # magnitudes over 8 decades and both signs: a different order shows in the last bits
    x = (RNG.standard_normal((24, WIDTH)) * 10.0 ** RNG.uniform(-4, 4, (24, WIDTH)))
    x = x.astype(np.float32)
    short = RNG.standard_normal((24, MIN_SIZE - 1)).astype(np.float32)
    model.set_num_threads(1)
    one = model(x, short)
    model.set_num_threads(2)
    two = model(x, short)
    model.set_num_threads(0)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[0], _lane_order(x))
    interpreted = run_module(_graph(), {}, [x, short])
    for a, b in zip(one, interpreted):
        np.testing.assert_array_equal(a, b)
    exact = x.astype(np.float64).sum(1)
    u = 2.0 ** -24
    bound = (WIDTH / LANES + np.log2(LANES) + LANES) * u * np.abs(x.astype(np.float64)).sum(1)
    assert np.all(np.abs(one[0] - exact) <= bound)
    np.testing.assert_array_equal(one[1], x.max(1))
    np.testing.assert_allclose(one[2], short.astype(np.float64).sum(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one[3], x.astype(np.float64).sum(0), rtol=1e-4,
                               atol=1e-4 * np.abs(x).sum(0).max())
