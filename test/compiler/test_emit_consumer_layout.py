"""The precompute descriptor names its readers (lutrt.h consumer_bits and layout): bit-plane
readers take a LUT kernel below lutrt_i8act_min_m(B) tokens and read no int8 activation there,
code-byte readers read the int8 activations alone at every M. The emitted C must say which, or
a code-byte head would read activations nobody wrote (2 tokens < the threshold of 3)."""

from __future__ import annotations

import numpy as np
from xdsl.parser import Parser

from lutc.compiler.codegen.emit_c import CEmitter
from lutc.compiler.context import make_context
from lutc.compiler.interp.interpret import run_module
from lutc.runtime import kernels, packing
from test.compiler.c_harness import compile_and_load

M, K, N = 2, 64, 40
TABLE = "!lut.table<2x16x8xi8, sg4>, tensor<2x2xf32>"
TEXT = f"""
func.func @main(%x: tensor<{M}x{K}xf32>) -> (tensor<{M}x{N}xf32>, tensor<{M}x{N}xf32>) {{
  %pb = lut.weight "pb" : tensor<2x16x128xi8>
  %pp = lut.weight "pp" : tensor<2x16x64xi8>
  %ps = lut.weight "ps" : tensor<2x2x32xf32>
  %t, %sums = lut.precompute %x sums 32 : tensor<{M}x{K}xf32> -> {TABLE}
  %y = lut.packed_mma %t, %sums, %pb, %ps as <w8, g32, mirrored> {{code_bytes}} : {TABLE}, tensor<2x16x128xi8>, tensor<2x2x32xf32> -> tensor<{M}x{N}xf32>
  %t2, %sums2 = lut.precompute %x sums 32 : tensor<{M}x{K}xf32> -> {TABLE}
  %y2 = lut.packed_mma %t2, %sums2, %pp, %ps as <w4, g32, mirrored> : {TABLE}, tensor<2x16x64xi8>, tensor<2x2x32xf32> -> tensor<{M}x{N}xf32>
  func.return %y, %y2 : tensor<{M}x{N}xf32>, tensor<{M}x{N}xf32>
}}
"""


def module_and_weights():
    rng = np.random.default_rng(3)
    q8 = rng.integers(0, 256, (N, K)).astype(np.uint8)
    q4 = rng.integers(0, 16, (N, K)).astype(np.uint8)
    s = (rng.random((N, K // 32)) * 0.02 + 0.01).astype(np.float32)
    weights = {"pb": packing.pack_code_bytes(q8).reshape(2, 16, 128).view(np.int8),
               "pp": packing.pack_weights(packing.mirror_codes(packing.codes_from_q(q4, 4)))
               .reshape(2, 16, 64).view(np.int8),
               "ps": packing.pack_scales(s)}
    return Parser(make_context(), TEXT).parse_module(), weights


def test_precompute_descriptors_name_their_readers():
    module, weights = module_and_weights()
    text = CEmitter(module.clone(), weights).emit("main")
    descs = [line.strip() for line in text.splitlines() if "lutrt_mma_desc d" in line]
    precomputes = [d for d in descs if ".bits = 1," in d]
    assert len(precomputes) == 2
    code_bytes, planes = precomputes
    assert ".consumer_bits = 8" in code_bytes and ".layout = LUTRT_LAYOUT_CODE_BYTES" in code_bytes
    assert ".consumer_bits = 4" in planes and ".layout" not in planes


def test_code_byte_head_below_the_threshold_matches_the_interpreter(tmp_path):
    # 2 tokens: below every default threshold (3 on AVX512-VNNI / AMX, 6-8 on AVX2), so the
    # bit-plane readers take the LUT kernel and their precompute skips the int8 activations
    assert 0 < M < min(kernels.i8act_min_m(b) for b in (4, 8)) or kernels.i8act_min_m(4) == 0
    module, weights = module_and_weights()
    x = np.random.default_rng(4).standard_normal((M, K)).astype(np.float32)
    want = run_module(module, weights, [x])
    got = compile_and_load(module, weights, tmp_path)(x)
    for w, g in zip(want, got):
        assert np.all(np.isfinite(g))
        assert np.allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max())
