"""lutc's upstream-dialect IR parses in real MLIR, and MLIR's JIT agrees with lutc's
interpreter and C (the torch-mlir wheel's bindings are the independent judge)."""

import numpy as np
import pytest
from xdsl.parser import Parser

pytest.importorskip("torch_mlir")

from lutc.compiler.context import make_context  # noqa: E402
from lutc.compiler.interp.interpret import run_module  # noqa: E402
from lutc.compiler.interp.mlir_oracle import jit_run, parse_in_mlir, to_upstream_mlir  # noqa: E402
from test.compiler.c_harness import compile_and_load  # noqa: E402
from test.compiler.test_c_path import GRAPH  # noqa: E402

MLP = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>
#red = affine_map<(d0, d1) -> (d0)>
func.func @main(%x: tensor<4x16xf32>) -> tensor<4x8xf32> {
  %w1 = lut.weight "w1" : tensor<16x32xf32>
  %b1 = lut.weight "b1" : tensor<32xf32>
  %w2 = lut.weight "w2" : tensor<8x32xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x32xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<4x16xf32>, tensor<16x32xf32>) outs(%f : tensor<4x32xf32>) -> tensor<4x32xf32>
  %r = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]} ins(%h, %b1 : tensor<4x32xf32>, tensor<32xf32>) outs(%e : tensor<4x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    %t = math.tanh %s : f32
    %m = arith.maximumf %t, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x32xf32>
  %et = tensor.empty() : tensor<32x8xf32>
  %w2t = linalg.transpose ins(%w2 : tensor<8x32xf32>) outs(%et : tensor<32x8xf32>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<4x8xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = linalg.matmul ins(%r, %w2t : tensor<4x32xf32>, tensor<32x8xf32>) outs(%f2 : tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
"""


def _weights(rng):
    return {"w1": rng.standard_normal((16, 32)).astype(np.float32),
            "b1": rng.standard_normal(32).astype(np.float32),
            "w2": rng.standard_normal((8, 32)).astype(np.float32)}


def test_graph_level_ir_parses_in_mlir():
    module = Parser(make_context(), GRAPH).parse_module()
    rng = np.random.default_rng(0)
    weights = {"emb": rng.standard_normal((10, 8)).astype(np.float32),
               "bias": rng.standard_normal(8).astype(np.float32)}
    printed = parse_in_mlir(to_upstream_mlir(module, weights))
    assert "linalg.generic" in printed and "tensor.concat" in printed


def test_mlir_jit_agrees_with_interpreter_and_c(tmp_path):
    module = Parser(make_context(), MLP).parse_module()
    rng = np.random.default_rng(1)
    weights = _weights(rng)
    x = rng.standard_normal((4, 16)).astype(np.float32)
    oracle = jit_run(to_upstream_mlir(module, weights), [x], 2)
    (interpreted,) = run_module(module, weights, [x])
    (compiled,) = compile_and_load(module, weights, tmp_path)(x)
    h = np.maximum(np.tanh(x @ weights["w1"] + weights["b1"]), 0)
    np.testing.assert_allclose(oracle, h @ weights["w2"].T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(interpreted, oracle, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled, oracle, rtol=1e-4, atol=1e-5)
