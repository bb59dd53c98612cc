"""lut-lower-mpgemm: x @ transpose(dequantize(q))  ->  lut.bitplanes + lut.precompute + lut.mma
(docs/design.md §3.1), checked by executing the IR before and after the pass."""

import numpy as np
import pytest
from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.compiler.interp.interpret import run_module
from lutc.dialects.lut_ops import BitPlanesOp, DequantizeOp, MmaOp, PrecomputeOp
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from test.ir_builders import quantized_linear, rel_max_err

SPECS = ["w1g64", "w2g64", "w3g32", "w4g32sym", "ternary", "w4g128"]


def ops_of(module, kind):
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("m", [1, 3, 16])
def test_lowered_equals_dequantized_matmul(spec, m):
    module, weights, x, reference, _ = quantized_linear(m, 256, 48, spec, seed=m)
    (before,) = run_module(module, weights, [x])
    LowerMpGemmPass().apply(None, module)
    module.verify()
    assert not ops_of(module, DequantizeOp)
    assert [len(ops_of(module, k)) for k in (BitPlanesOp, PrecomputeOp, MmaOp)] == [1, 1, 1]
    (after,) = run_module(module, weights, [x])
    assert rel_max_err(after, before) <= 1e-4  # f32 tables: lossless up to summation order
    assert rel_max_err(after, reference) <= 1e-4


def test_partial_last_group():
    """K = 688 with group 32: the last scale group holds 16 weights (MatMulNBits' padded block)."""
    module, weights, x, reference, _ = quantized_linear(2, 688, 40, "w4g32", seed=7)
    (before,) = run_module(module, weights, [x])
    LowerMpGemmPass().apply(None, module)
    (after,) = run_module(module, weights, [x])
    assert rel_max_err(after, before) <= 1e-4
    assert rel_max_err(after, reference) <= 1e-4


FLOAT_LINEAR = """
func.func @main(%x: tensor<2x64xf32>) -> tensor<2x16xf32> {
  %w = lut.weight "w" : tensor<16x64xf32>
  %e = tensor.empty() : tensor<64x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x64xf32>) outs(%e : tensor<64x16xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<2x16xf32>) -> tensor<2x16xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<2x64xf32>, tensor<64x16xf32>) outs(%f : tensor<2x16xf32>) -> tensor<2x16xf32>
  func.return %y : tensor<2x16xf32>
}"""


def test_float_gemm_stays():
    """A matmul with a float weight (attention, an unquantized layer) is not a LUT GEMM."""
    module = Parser(make_context(), FLOAT_LINEAR).parse_module()
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((16, 64)).astype(np.float32)}
    x = rng.standard_normal((2, 64)).astype(np.float32)
    text = str(module)
    (before,) = run_module(module, weights, [x])
    LowerMpGemmPass().apply(None, module)
    assert str(module) == text and not ops_of(module, MmaOp)
    (after,) = run_module(module, weights, [x])
    np.testing.assert_array_equal(after, before)
