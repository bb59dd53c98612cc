"""lut-fuse-elementwise: elementwise chains become one loop nest with bitwise the same results
in the interpreter, and in compiled C up to libm's vectorized expf (<= 1 ulp), on hand-built
chains (permutations, broadcasts, reductions, linalg.index) and on a torch.export Llama (float
and ternary)."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.linalg import ops as linalg

from lutc.compiler.context import make_context
from lutc.compiler.interp.interpret import run_module
from lutc.compiler.weight_store import WeightStore
from lutc.passes.fuse_elementwise import FuseElementwisePass
from test.ir_builders import rel_max_err
from test.passes.compiled import compile_module, pipeline


def generics(module) -> int:
    return sum(isinstance(op, linalg.GenericOp) for op in module.walk())


def parse(text: str):
    from xdsl.parser import Parser

    return Parser(make_context(), text).parse_module()


# One function exercising every rule: a sigmoid chain (fused), a transposing producer with
# linalg.index (fused, composed maps), x*x into a row sum (fused into a reduction), a per-row
# rsqrt read as a broadcast (kept), a producer with two uses (kept).
CHAINS = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
#row = affine_map<(d0, d1) -> (d0)>
#id1 = affine_map<(d0) -> (d0)>
func.func @main(%x: tensor<6x40xf32>, %u: tensor<6x40xf32>, %w: tensor<40x6xf32>) -> (tensor<6x40xf32>, tensor<6x40xf32>, tensor<6x40xf32>) {
  %e = tensor.empty() : tensor<6x40xf32>
  %s = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %o: f32):
    %n = arith.negf %a : f32
    %ex = math.exp %n : f32
    %one = arith.constant 1.0 : f32
    %d = arith.addf %one, %ex : f32
    %sig = arith.divf %one, %d : f32
    linalg.yield %sig : f32
  } -> tensor<6x40xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%x, %s : tensor<6x40xf32>, tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<6x40xf32>
  %wt = linalg.generic {indexing_maps = [#id, #tr], iterator_types = ["parallel", "parallel"]} ins(%w : tensor<40x6xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %o: f32):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    %f = arith.sitofp %ii : i64 to f32
    %t = arith.constant 0.125 : f32
    %ft = arith.mulf %f, %t : f32
    %r = arith.addf %a, %ft : f32
    linalg.yield %r : f32
  } -> tensor<6x40xf32>
  %y1 = linalg.generic {indexing_maps = [#id, #id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%h, %u, %wt : tensor<6x40xf32>, tensor<6x40xf32>, tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  } -> tensor<6x40xf32>
  %sq = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%y1 : tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %a : f32
    linalg.yield %m : f32
  } -> tensor<6x40xf32>
  %zero = arith.constant 0.0 : f32
  %e6 = tensor.empty() : tensor<6xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e6 : tensor<6xf32>) -> tensor<6xf32>
  %sum = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%sq : tensor<6x40xf32>) outs(%z : tensor<6xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %t = arith.addf %acc, %a : f32
    linalg.yield %t : f32
  } -> tensor<6xf32>
  %rs = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]} ins(%sum : tensor<6xf32>) outs(%e6 : tensor<6xf32>) {
  ^bb0(%a: f32, %o: f32):
    %eps = arith.constant 1.0e-5 : f32
    %k = arith.constant 0.025 : f32
    %mean = arith.mulf %a, %k : f32
    %v = arith.addf %mean, %eps : f32
    %q = math.rsqrt %v : f32
    linalg.yield %q : f32
  } -> tensor<6xf32>
  %y2 = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%y1, %rs : tensor<6x40xf32>, tensor<6xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<6x40xf32>
  %twice = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%u : tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = math.tanh %a : f32
    linalg.yield %m : f32
  } -> tensor<6x40xf32>
  %y3 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%twice, %y2 : tensor<6x40xf32>, tensor<6x40xf32>) outs(%e : tensor<6x40xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.subf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<6x40xf32>
  func.return %y2, %y3, %twice : tensor<6x40xf32>, tensor<6x40xf32>, tensor<6x40xf32>
}
"""


def test_chains_fuse_with_bitwise_equal_results(tmp_path):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) * 3 for s in ((6, 40), (6, 40), (40, 6))]
    module = parse(CHAINS)
    before = run_module(module, WeightStore(), xs)
    model, source = compile_module(module, WeightStore(), tmp_path / "unfused")
    c_before = model(*xs)
    n_before = source.count("for (int64_t")
    module = parse(CHAINS)
    FuseElementwisePass().apply(make_context(), module)
    module.verify()
    # sigmoid, x * sigmoid and the transpose fold into y1; x * x into the sum; rsqrt (read as
    # a broadcast), y1 and y2 and tanh (two uses each) stay: 10 generics -> 6
    assert generics(module) == 6
    after = run_module(module, WeightStore(), xs)
    model, source = compile_module(module, WeightStore(), tmp_path / "fused")
    c_after = model(*xs)
    assert source.count("for (int64_t") < n_before
    for b, a, cb, ca in zip(before, after, c_before, c_after):
        np.testing.assert_array_equal(a, b)
        # in C, cc vectorizes the unfused sigmoid loop (glibc's libmvec expf) but not the
        # fused one with its transposed read (scalar expf): the two expf differ by <= 1 ulp
        np.testing.assert_allclose(ca, cb, rtol=2e-6, atol=1e-7)
        np.testing.assert_allclose(ca, b, rtol=2e-6, atol=1e-6)  # C against the interpreter
    # the numpy formula, to be sure the chains compute what they say
    x, u, w = (a.astype(np.float64) for a in xs)
    y1 = x / (1 + np.exp(-x)) * u + (w.T + 0.125 * np.arange(40)[None, :])
    y2 = y1 / np.sqrt((y1 * y1).sum(1, keepdims=True) * 0.025 + 1e-5)
    np.testing.assert_allclose(after[0], y2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(after[1], np.tanh(u) - y2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("weights", [None, "ternary"])
def test_torch_llama_fuses_with_bitwise_equal_outputs(weights, tmp_path):
    """A torch.export Llama layer (RMSNorm, RoPE, SwiGLU as the exporter writes them): fewer
    loop nests, the same logits bit for bit in the interpreter after the whole pipeline, in C
    within expf's vectorized-or-not ulp, on 1 and 2 threads; the float model also against
    transformers."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from lutc.compiler.frontends.quantize import WeightSpec
    from lutc.compiler.frontends.torch_importer import import_exported_program
    from test.frontends.torch_models import LogitsOnly, tiny_llama

    model = LogitsOnly(tiny_llama())
    ids = torch.randint(0, 1000, (1, 7), generator=torch.Generator().manual_seed(1))
    ep = torch.export.export(model, (ids,)).run_decompositions()
    spec = WeightSpec.parse(weights) if weights else None
    outs, loops, counts = [], [], []
    for disabled in (("lut-fuse-elementwise",), ()):
        im = import_exported_program(ep, weights=spec)
        pipeline(im.module, disabled=disabled)
        counts.append(generics(im.module))
        expected = run_module(im.module, im.weights, [ids.numpy()])[0]
        compiled_model, source = compile_module(im.module, im.weights,
                                                tmp_path / str(len(disabled)))
        loops.append(source.count("for (int64_t"))
        for threads in (1, 2):
            compiled_model.set_num_threads(threads)
            got = compiled_model(ids.numpy())[0]
            if weights is None:
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
            else:  # an ulp of difference in an activation can flip an int8 table entry
                assert rel_max_err(got, expected) <= 5e-4  # measured 7.7e-5, fused or not
            outs.append(got)
        outs.append(expected)
    assert counts[1] < counts[0] - 16, counts  # per layer: RMSNorm x2, RoPE, SwiGLU chains
    assert loops[1] < loops[0], loops
    n = len(outs) // 2
    for unfused, fused in zip(outs[:n], outs[n:]):  # C: libmvec vs scalar expf, <= 1 ulp each
        if weights is None:
            np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-6)
        else:
            assert rel_max_err(fused, unfused) <= 5e-4
    np.testing.assert_array_equal(outs[-1], outs[n - 1])  # the interpreter: bit for bit
    if weights is None:
        with torch.no_grad():
            ref = model(ids).numpy()
        np.testing.assert_allclose(outs[-1], ref, rtol=1e-4, atol=1e-4)


def _perm_map(perm) -> str:
    return "affine_map<(d0, d1, d2) -> (" + ", ".join(f"d{p}" for p in perm) + ")>"


@pytest.mark.parametrize("out_perm", list(__import__("itertools").permutations(range(3))))
@pytest.mark.parametrize("read_perm", [(0, 1, 2), (2, 0, 1), (1, 0, 2)])
def test_permuted_write_and_read_compose(out_perm, read_perm):
    """A producer writing through one permutation, read through another: the fused op reads the
    producer's input and numbers its linalg.index by the composition (interpreter, bitwise)."""
    sizes = (2, 3, 5)  # the producer's loops
    p_shape = [sizes[p] for p in out_perm]  # its result
    c_sizes = [0, 0, 0]
    for r, c in enumerate(read_perm):
        c_sizes[c] = p_shape[r]
    ty = lambda shape: "tensor<" + "x".join(map(str, shape)) + "xf32>"  # noqa: E731
    text = f"""
func.func @main(%x: {ty(sizes)}) -> {ty(c_sizes)} {{
  %e = tensor.empty() : {ty(p_shape)}
  %p = linalg.generic {{indexing_maps = [{_perm_map((0, 1, 2))}, {_perm_map(out_perm)}], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%x : {ty(sizes)}) outs(%e : {ty(p_shape)}) {{
  ^bb0(%a: f32, %o: f32):
    %i0 = linalg.index 0 : index
    %i1 = linalg.index 1 : index
    %i2 = linalg.index 2 : index
    %c100 = arith.constant 100 : index
    %c10 = arith.constant 10 : index
    %j0 = arith.muli %i0, %c100 : index
    %j1 = arith.muli %i1, %c10 : index
    %j = arith.addi %j0, %j1 : index
    %k = arith.addi %j, %i2 : index
    %ki = arith.index_cast %k : index to i64
    %kf = arith.sitofp %ki : i64 to f32
    %r = arith.addf %a, %kf : f32
    linalg.yield %r : f32
  }} -> {ty(p_shape)}
  %e2 = tensor.empty() : {ty(c_sizes)}
  %y = linalg.generic {{indexing_maps = [{_perm_map(read_perm)}, {_perm_map((0, 1, 2))}], iterator_types = ["parallel", "parallel", "parallel"]}} ins(%p : {ty(p_shape)}) outs(%e2 : {ty(c_sizes)}) {{
  ^bb0(%a: f32, %o: f32):
    %n = arith.negf %a : f32
    linalg.yield %n : f32
  }} -> {ty(c_sizes)}
  func.return %y : {ty(c_sizes)}
}}"""
    x = np.random.default_rng(1).standard_normal(sizes).astype(np.float32)
    module = parse(text)
    (before,) = run_module(module, WeightStore(), [x])
    FuseElementwisePass().apply(make_context(), module)
    module.verify()
    assert generics(module) == 1
    (after,) = run_module(module, WeightStore(), [x])
    np.testing.assert_array_equal(after, before)
    # numpy: p[perm of (i0, i1, i2)] = x + 100 i0 + 10 i1 + i2, y = -p read through read_perm
    i0, i1, i2 = np.meshgrid(*map(np.arange, sizes), indexing="ij")
    p = np.transpose(x + (100 * i0 + 10 * i1 + i2).astype(np.float32), out_perm)
    inv = np.argsort(read_perm)  # y[c] = -p[c_{read_perm[0]}, ...]
    np.testing.assert_array_equal(after, -np.transpose(p, inv))
