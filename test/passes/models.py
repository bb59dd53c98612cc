"""Small transformer-shaped IR for the pass tests, as text in the frontends' canonical form:
an RMSNorm feeding Q/K/V projections (one activation, three GEMMs) and a two-layer MLP whose
hidden activation comes out of an element-wise op (bias + SiLU)."""

from __future__ import annotations

import numpy as np
from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.compiler.frontends.quantize import QuantizedWeight, WeightSpec, quantize
from test.ir_builders import fmt_text


class IRText:
    """Accumulates function body lines and the weights they name."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.lines: list[str] = []
        self.weights: dict[str, np.ndarray] = {}
        self.counter = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"%{hint}{self.counter}"

    def float_weight(self, name: str, array: np.ndarray) -> str:
        array = np.asarray(array, np.float32)
        self.weights[name] = array
        dims = "x".join(map(str, array.shape))
        var = self.fresh(name.replace(".", "_"))
        self.lines.append(f'{var} = lut.weight "{name}" : tensor<{dims}xf32>')
        return var

    def linear(self, x: str, m: int, k: int, n: int, spec: str,
               name: str) -> tuple[str, QuantizedWeight]:
        """y[m, n] = x[m, k] @ dequant(W[n, k])^T: dequantize, transpose, zero-fill, matmul."""
        qw = quantize(self.rng.standard_normal((n, k)) / np.sqrt(k), WeightSpec.parse(spec))
        ng = qw.scales.shape[1]
        self.weights[f"{name}.q"] = qw.codes.astype(np.int8)
        self.weights[f"{name}.s"] = qw.scales
        v = name.replace(".", "_")
        self.lines += [
            f'%{v}_q = lut.weight "{name}.q" : tensor<{n}x{k}xi8>',
            f'%{v}_s = lut.weight "{name}.s" : tensor<{n}x{ng}xf32>',
        ]
        zero_use = zero_type = ""
        if qw.zeros is not None:
            self.weights[f"{name}.z"] = qw.zeros
            self.lines.append(f'%{v}_z = lut.weight "{name}.z" : tensor<{n}x{ng}xf32>')
            zero_use, zero_type = f", %{v}_z", f", tensor<{n}x{ng}xf32>"
        self.lines += [
            f"%{v}_w = lut.dequantize %{v}_q, %{v}_s{zero_use} as {fmt_text(qw)} : "
            f"tensor<{n}x{k}xi8>, tensor<{n}x{ng}xf32>{zero_type} -> tensor<{n}x{k}xf32>",
            f"%{v}_e = tensor.empty() : tensor<{k}x{n}xf32>",
            f"%{v}_wt = linalg.transpose ins(%{v}_w : tensor<{n}x{k}xf32>) "
            f"outs(%{v}_e : tensor<{k}x{n}xf32>) permutation = [1, 0]",
            f"%{v}_zero = arith.constant 0.0 : f32",
            f"%{v}_e2 = tensor.empty() : tensor<{m}x{n}xf32>",
            f"%{v}_f = linalg.fill ins(%{v}_zero : f32) outs(%{v}_e2 : tensor<{m}x{n}xf32>) "
            f"-> tensor<{m}x{n}xf32>",
            f"%{v}_y = linalg.matmul ins({x}, %{v}_wt : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) "
            f"outs(%{v}_f : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>",
        ]
        return f"%{v}_y", qw

    def module(self, args: str, results: list[tuple[str, str]]):
        values = ", ".join(v for v, _ in results)
        types = ", ".join(t for _, t in results)
        body = "\n  ".join(self.lines)
        src = (f"func.func @main({args}) -> ({types}) {{\n  {body}\n"
               f"  func.return {values} : {types}\n}}")
        return Parser(make_context(), src).parse_module()


def _rows(m: int, rows3d: bool) -> tuple[str, str]:
    """(loop dims, shape of the row dims) of [m, K] or [1, m, K] activations."""
    return ("d0, d1, d2", f"1x{m}") if rows3d else ("d0, d1", f"{m}")


def rmsnorm_qkv(m: int, k: int, n: int, specs=("w2g64", "w2g64", "w2g64"), seed: int = 0,
                rows3d: bool = False):
    """x -> RMSNorm (a sum-of-squares reduction, then a row-wise multiply) -> Q, K, V
    projections. Returns (module, weights, [x], numpy reference outputs)."""
    ir = IRText(seed)
    g = ir.float_weight("norm.g", 1 + 0.1 * ir.rng.standard_normal(k))
    dims, rows = _rows(m, rows3d)
    act = f"{rows}x{k}"
    row_dims = dims.rsplit(",", 1)[0]
    last = dims.rsplit(", ", 1)[1]
    iters_red = ", ".join(['"parallel"'] * (dims.count(",")) + ['"reduction"'])
    iters_par = ", ".join(['"parallel"'] * (dims.count(",") + 1))
    ir.lines += [
        "%eps = arith.constant 1.0e-05 : f32",
        f"%kf = arith.constant {float(k)} : f32",
        "%zero = arith.constant 0.0 : f32",
        f"%ss_e = tensor.empty() : tensor<{rows}xf32>",
        f"%ss_f = linalg.fill ins(%zero : f32) outs(%ss_e : tensor<{rows}xf32>) "
        f"-> tensor<{rows}xf32>",
        f"%ss = linalg.generic {{indexing_maps = [affine_map<({dims}) -> ({dims})>, "
        f"affine_map<({dims}) -> ({row_dims})>], iterator_types = [{iters_red}]}} "
        f"ins(%x : tensor<{act}xf32>) outs(%ss_f : tensor<{rows}xf32>) {{",
        "^bb0(%a: f32, %acc: f32):",
        "  %sq = arith.mulf %a, %a : f32",
        "  %sum = arith.addf %acc, %sq : f32",
        "  linalg.yield %sum : f32",
        f"}} -> tensor<{rows}xf32>",
        f"%n_e = tensor.empty() : tensor<{act}xf32>",
        f"%normed = linalg.generic {{indexing_maps = [affine_map<({dims}) -> ({dims})>, "
        f"affine_map<({dims}) -> ({row_dims})>, affine_map<({dims}) -> ({last})>, "
        f"affine_map<({dims}) -> ({dims})>], iterator_types = [{iters_par}]}} "
        f"ins(%x, %ss, {g} : tensor<{act}xf32>, tensor<{rows}xf32>, tensor<{k}xf32>) "
        f"outs(%n_e : tensor<{act}xf32>) {{",
        "^bb0(%a: f32, %s: f32, %w: f32, %o: f32):",
        "  %mean = arith.divf %s, %kf : f32",
        "  %var = arith.addf %mean, %eps : f32",
        "  %r = math.rsqrt %var : f32",
        "  %an = arith.mulf %a, %r : f32",
        "  %y = arith.mulf %an, %w : f32",
        "  linalg.yield %y : f32",
        f"}} -> tensor<{act}xf32>",
    ]
    h = "%normed"
    if rows3d:
        ir.lines.append(f"%h2 = tensor.collapse_shape %normed [[0, 1], [2]] : "
                        f"tensor<{act}xf32> into tensor<{m}x{k}xf32>")
        h = "%h2"
    outs, qws = [], []
    for name, spec in zip(("q", "k", "v"), specs):
        y, qw = ir.linear(h, m, k, n, spec, name)
        outs.append((y, f"tensor<{m}x{n}xf32>"))
        qws.append(qw)
    module = ir.module(f"%x: tensor<{act}xf32>", outs)
    x = ir.rng.standard_normal((1, m, k) if rows3d else (m, k)).astype(np.float32)
    x2 = x.reshape(m, k).astype(np.float64)
    normed = x2 / np.sqrt((x2**2).mean(axis=1, keepdims=True) + 1e-5) * ir.weights["norm.g"]
    refs = [normed @ qw.dequantize().astype(np.float64).T for qw in qws]
    return module, ir.weights, [x], refs


def mlp2(m: int, d: int, hidden: int, spec: str = "w2g64", seed: int = 0):
    """y = W2 silu(W1 x + b1): two quantized GEMMs; the second reads the output of a row-wise
    bias + SiLU. Returns (module, weights, [x], [reference])."""
    ir = IRText(seed)
    u, qw1 = ir.linear("%x", m, d, hidden, spec, "fc1")
    b = ir.float_weight("fc1.b", 0.1 * ir.rng.standard_normal(hidden))
    ir.lines += [
        "%one = arith.constant 1.0 : f32",
        f"%a_e = tensor.empty() : tensor<{m}x{hidden}xf32>",
        f"%act = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, "
        f"affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], "
        f'iterator_types = ["parallel", "parallel"]}} '
        f"ins({u}, {b} : tensor<{m}x{hidden}xf32>, tensor<{hidden}xf32>) "
        f"outs(%a_e : tensor<{m}x{hidden}xf32>) {{",
        "^bb0(%v: f32, %bias: f32, %o: f32):",
        "  %t = arith.addf %v, %bias : f32",
        "  %nt = arith.negf %t : f32",
        "  %ex = math.exp %nt : f32",
        "  %den = arith.addf %one, %ex : f32",
        "  %s = arith.divf %t, %den : f32",
        "  linalg.yield %s : f32",
        f"}} -> tensor<{m}x{hidden}xf32>",
    ]
    y, qw2 = ir.linear("%act", m, hidden, d, spec, "fc2")
    module = ir.module(f"%x: tensor<{m}x{d}xf32>", [(y, f"tensor<{m}x{d}xf32>")])
    x = ir.rng.standard_normal((m, d)).astype(np.float32)
    t = x.astype(np.float64) @ qw1.dequantize().astype(np.float64).T + ir.weights["fc1.b"]
    ref = (t / (1 + np.exp(-t))) @ qw2.dequantize().astype(np.float64).T
    return module, ir.weights, [x], [ref]
