"""Large constants whose elements are all equal (GraphBuilder.constant): a computed one becomes
a `linalg.fill` (no weight bytes, and passes see its value: torch's decomposed SDPA guard
compares against such zeros); a named model tensor stays a `lut.weight` whatever its values,
so that a zero weight matrix still reaches the LUT kernels (issue 10's W = 0 checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xdsl.dialects.linalg import FillOp

from lutc.compiler.frontends.graph_builder import GraphBuilder
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from lutc.dialects.lut_ops import WeightOp


def _ops(module, kind) -> list:
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("value,dtype", [(0.0, np.float32), (-np.inf, np.float32),
                                         (3, np.int64), (True, np.bool_)])
def test_computed_uniform_constant_is_a_fill(value, dtype):
    gb = GraphBuilder()
    x = gb.add_input((4, 8), dtype)
    const = np.full((4, 8), value, dtype)
    y = gb.where(gb.constant(np.ones((4, 8), bool)), const, x)  # y = const
    module = gb.finish([y])
    assert not _ops(module, WeightOp) and len(_ops(module, FillOp)) >= 1
    feed = np.zeros((4, 8), dtype)
    np.testing.assert_array_equal(run_module(module, gb.weights, [feed])[0], const)


def test_named_and_varying_constants_stay_weights():
    gb = GraphBuilder()
    x = gb.add_input((4, 8), np.float32)
    zeros = np.zeros((4, 8), np.float32)
    gb.name_constant(zeros, "layer.weight")  # a model tensor, e.g. a zero weight matrix
    ramp = np.arange(32, dtype=np.float32).reshape(4, 8)
    module = gb.finish([gb.binary("add", gb.binary("mul", x, zeros), ramp)])
    assert len(_ops(module, WeightOp)) == 2
    feed = np.ones((4, 8), np.float32)
    np.testing.assert_array_equal(run_module(module, gb.weights, [feed])[0], ramp)


def test_torch_zero_linear_weight_stays_a_weight():
    linear = torch.nn.Linear(64, 32, bias=False)
    torch.nn.init.zeros_(linear.weight)
    ep = torch.export.export(linear.eval(), (torch.randn(2, 64),))
    im = import_exported_program(ep)
    (weight,) = _ops(im.module, WeightOp)  # (the matmul's accumulator is a fill, as always)
    assert weight.result.type.get_shape() == (32, 64)
