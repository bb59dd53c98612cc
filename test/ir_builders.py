"""Small IR snippets the tests build as text: a quantized linear layer in the frontends'
canonical form, with the weights for it."""

from __future__ import annotations

import numpy as np
from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.compiler.frontends.quantize import QuantizedWeight, WeightSpec, quantize


def fmt_text(qw: QuantizedWeight) -> str:
    words = ["ternary" if qw.ternary else f"w{qw.bits}", f"g{qw.group}"]
    if qw.zeros is not None:
        words.append("zp")
    return "<" + ", ".join(words) + ">"


def quantized_linear(m: int, k: int, n: int, spec: str, seed: int = 0):
    """(module, weights, x, reference float64 output, QuantizedWeight) for y = x @ W^T."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k))
    qw = quantize(w, WeightSpec.parse(spec))
    ng = qw.scales.shape[1]
    weights = {"q": qw.codes.astype(np.int8), "s": qw.scales}
    zero_decl = zero_use = zero_type = ""
    if qw.zeros is not None:
        weights["z"] = qw.zeros
        zero_decl = f'%z = lut.weight "z" : tensor<{n}x{ng}xf32>'
        zero_use, zero_type = ", %z", f", tensor<{n}x{ng}xf32>"
    src = f"""
func.func @main(%x: tensor<{m}x{k}xf32>) -> tensor<{m}x{n}xf32> {{
  %q = lut.weight "q" : tensor<{n}x{k}xi8>
  %s = lut.weight "s" : tensor<{n}x{ng}xf32>
  {zero_decl}
  %w = lut.dequantize %q, %s{zero_use} as {fmt_text(qw)} : tensor<{n}x{k}xi8>, tensor<{n}x{ng}xf32>{zero_type} -> tensor<{n}x{k}xf32>
  %e = tensor.empty() : tensor<{k}x{n}xf32>
  %wt = linalg.transpose ins(%w : tensor<{n}x{k}xf32>) outs(%e : tensor<{k}x{n}xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<{m}x{n}xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e2 : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) outs(%f : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  func.return %y : tensor<{m}x{n}xf32>
}}"""
    module = Parser(make_context(), src).parse_module()
    x = rng.standard_normal((m, k)).astype(np.float32)
    reference = x.astype(np.float64) @ qw.dequantize().astype(np.float64).T
    return module, weights, x, reference, qw


def rel_max_err(actual: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(actual - reference).max() / np.abs(reference).max())
