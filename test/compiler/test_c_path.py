"""The compiled C library computes what the interpreter computes."""

import numpy as np
import pytest
from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.compiler.interp.interpret import run_module
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from test.compiler.c_harness import compile_and_load
from test.ir_builders import quantized_linear, rel_max_err


@pytest.mark.parametrize("spec,m", [("w1g64", 1), ("w2g64", 3), ("w3g32", 16), ("w4g32sym", 16),
                                    ("ternary", 5), ("w4g32", 2)])
def test_lut_linear_c_equals_interpreter(tmp_path, spec, m):
    module, weights, x, reference, _ = quantized_linear(m, 256, 96, spec, seed=m)
    LowerMpGemmPass().apply(None, module)
    (expected,) = run_module(module, weights, [x])
    (actual,) = compile_and_load(module, weights, tmp_path)(x)
    assert rel_max_err(actual, expected) <= 1e-5
    assert rel_max_err(actual, reference) <= 1e-4  # lossless vs the dequantized reference


GRAPH = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#red = affine_map<(d0, d1) -> (d0, 0)>
func.func @main(%x: tensor<4x8xf32>, %ids: tensor<3xi64>) -> (tensor<4x8xf32>, tensor<3x8xf32>, tensor<8x4xf32>, tensor<4x12xf32>) {
  %table = lut.weight "emb" : tensor<10x8xf32>
  %bias = lut.weight "bias" : tensor<8xf32>
  %e = tensor.empty() : tensor<4x8xf32>
  // x + bias, then exp, broadcast along rows
  %b = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]} ins(%x, %bias : tensor<4x8xf32>, tensor<8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    %t = math.exp %s : f32
    linalg.yield %t : f32
  } -> tensor<4x8xf32>
  // row sums (a reduction into a keep-dim [4, 1] result)
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<4x1xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<4x1xf32>) -> tensor<4x1xf32>
  %sum = linalg.generic {indexing_maps = [#id, #red], iterator_types = ["parallel", "reduction"]} ins(%b : tensor<4x8xf32>) outs(%f1 : tensor<4x1xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  } -> tensor<4x1xf32>
  // softmax = exp / rowsum; compare and select for a max(.., 0.05)
  %p = linalg.generic {indexing_maps = [#id, #red, #id], iterator_types = ["parallel", "parallel"]} ins(%b, %sum : tensor<4x8xf32>, tensor<4x1xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %d = arith.divf %a, %c : f32
    %lim = arith.constant 0.05 : f32
    %gt = arith.cmpf ogt, %d, %lim : f32
    %r = arith.select %gt, %d, %lim : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  // gather rows of an embedding table
  %e2 = tensor.empty() : tensor<3x8xf32>
  %g = linalg.generic {indexing_maps = [#row, #id], iterator_types = ["parallel", "parallel"]} ins(%ids : tensor<3xi64>) outs(%e2 : tensor<3x8xf32>) {
  ^bb0(%i: i64, %o: f32):
    %r = arith.index_cast %i : i64 to index
    %c = linalg.index 1 : index
    %v = tensor.extract %table[%r, %c] : tensor<10x8xf32>
    linalg.yield %v : f32
  } -> tensor<3x8xf32>
  %e3 = tensor.empty() : tensor<8x4xf32>
  %tr = linalg.transpose ins(%p : tensor<4x8xf32>) outs(%e3 : tensor<8x4xf32>) permutation = [1, 0]
  %s1 = tensor.extract_slice %x[0, 2] [4, 4] [1, 1] : tensor<4x8xf32> to tensor<4x4xf32>
  %cat = tensor.concat dim(1) %x, %s1 : (tensor<4x8xf32>, tensor<4x4xf32>) -> tensor<4x12xf32>
  func.return %p, %g, %tr, %cat : tensor<4x8xf32>, tensor<3x8xf32>, tensor<8x4xf32>, tensor<4x12xf32>
}
"""


def test_linalg_and_tensor_ops_c_equals_interpreter(tmp_path):
    module = Parser(make_context(), GRAPH).parse_module()
    rng = np.random.default_rng(0)
    weights = {"emb": rng.standard_normal((10, 8)).astype(np.float32),
               "bias": rng.standard_normal(8).astype(np.float32)}
    x = rng.standard_normal((4, 8)).astype(np.float32)
    ids = np.array([7, 0, 3], dtype=np.int64)
    expected = run_module(module, weights, [x, ids])
    # the interpreter itself against plain numpy
    e = np.exp(x + weights["bias"])
    soft = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(expected[0], np.where(soft > 0.05, soft, 0.05), rtol=1e-5)
    np.testing.assert_array_equal(expected[1], weights["emb"][ids])
    actual = compile_and_load(module, weights, tmp_path)(x, ids)
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(actual[3][:, 8:], x[:, 2:6])


def test_loader_checks_shapes_before_c(tmp_path):
    from lutc.runtime.errors import LutcError

    module, weights, x, _, _ = quantized_linear(2, 64, 8, "w2g64")
    LowerMpGemmPass().apply(None, module)
    model = compile_and_load(module, weights, tmp_path)
    with pytest.raises(LutcError, match=r"must have shape \[2, 64\], got \[3, 64\]"):
        model(np.zeros((3, 64), np.float32))
    with pytest.raises(LutcError, match="takes 1 inputs, got 2"):
        model(x, x)


def test_sanitized_build_runs_clean(tmp_path):
    """ASan + UBSan over the runtime and one compiled model, run in a fresh process."""
    import subprocess
    import sys

    module, weights, x, reference, _ = quantized_linear(3, 128, 40, "w3g32", seed=4)
    LowerMpGemmPass().apply(None, module)
    outdir = tmp_path / "asan"
    compile_and_load(module, weights, outdir, sanitize=True)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", reference)
    script = (
        "import numpy as np, sys; from lutc.runtime.model_loader import CompiledModel; "
        f"m = CompiledModel({str(outdir)!r}); y = m(np.load({str(tmp_path / 'x.npy')!r}))[0]; "
        f"r = np.load({str(tmp_path / 'ref.npy')!r}); "
        "sys.exit(0 if np.abs(y - r).max() <= 1e-4 * np.abs(r).max() else 3)")
    asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    env = {"LD_PRELOAD": asan.stdout.strip(), "ASAN_OPTIONS": "detect_leaks=0",
           "UBSAN_OPTIONS": "halt_on_error=1", "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr


@pytest.mark.parametrize("spec", ["w2g64", "w4g32"])
def test_int8_activation_path_c_equals_interpreter_with_one_pass_on_and_off(tmp_path, spec):
    """int8 tables at M = 16, on the int8-activation path (default thresholds): the
    interpreter follows the runtime's one-pass setting (lutrt_one_pass_max_bits: off by
    default, on for <= 4-bit readers when set), so compiled C and interpreted IR agree both
    ways, and the setting really changes the result (one pass rounds flat activation groups
    once: ~1e-3 relative). The compiled model carries its own copy of the runtime, which is
    set through its library like set_num_threads."""
    import ctypes

    from lutc.passes.quantize_table import QuantizeTablePass
    from lutc.runtime import kernels

    bits = int(spec[1])
    if not 0 < kernels.i8act_min_m(bits) <= 16:
        pytest.skip("no int8-activation kernel at 16 tokens on this CPU")
    module, weights, x, reference, _ = quantized_linear(16, 256, 96, spec, seed=4)
    LowerMpGemmPass().apply(None, module)
    QuantizeTablePass().apply(None, module)
    run = compile_and_load(module, weights, tmp_path)
    outs = {}
    try:
        for one_pass in (0, 4):
            kernels.set_one_pass_max_bits(one_pass)
            run.lib.lutrt_set_one_pass_max_bits(ctypes.c_int(one_pass))
            (expected,) = run_module(module, weights, [x])
            (actual,) = run(x)
            assert rel_max_err(actual, expected) <= 1e-5, one_pass
            assert rel_max_err(actual, reference) <= (1e-4 if one_pass == 0 else 2e-2), one_pass
            outs[one_pass] = actual
    finally:
        kernels.set_one_pass_max_bits(None)
        run.lib.lutrt_set_one_pass_max_bits(ctypes.c_int(-1))
    assert rel_max_err(outs[4], outs[0]) >= 1e-4
