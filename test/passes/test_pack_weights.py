"""lut-pack-weights: packing in the IR (folded) gives the bytes C emission used to produce,
and the same numbers."""

import numpy as np
import pytest

from lutc.compiler.codegen.fold_weights import fold_weights
from lutc.compiler.interp.interpret import run_module
from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackCodeBytesOp, PackedMmaOp, PackOp, PackScalesOp
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from lutc.passes.pack_weights import PackWeightsPass
from lutc.passes.symmetrize import SymmetrizePass
from lutc.runtime import packing
from test.ir_builders import quantized_linear, rel_max_err
from test.passes.compiled import compile_module, pipeline, store_of

SPECS = ["w1g64", "w2g64", "w3g32sym", "w4g32", "ternary"]


def ops_of(module, kind):
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("symmetrize", [False, True])
def test_packed_gemm_equals_unpacked(spec, symmetrize):
    module, weights, x, _, _ = quantized_linear(3, 128, 72, spec, seed=2)  # 72 rows: padding
    LowerMpGemmPass().apply(None, module)
    if symmetrize:
        SymmetrizePass().apply(None, module)
    (before,) = run_module(module, weights, [x])
    PackWeightsPass().apply(None, module)
    module.verify()
    assert not ops_of(module, MmaOp) and len(ops_of(module, PackedMmaOp)) == 1
    (after,) = run_module(module, weights, [x])
    np.testing.assert_array_equal(after, before)


def test_folded_bytes_are_the_runtime_layout():
    module, weights, x, _, qw = quantized_linear(2, 128, 40, "w3g32", seed=1)
    LowerMpGemmPass().apply(None, module)
    PackWeightsPass().apply(None, module)
    store = store_of(weights)
    fold_weights(module, store)
    assert not ops_of(module, PackOp) and not ops_of(module, PackScalesOp)
    (mma,) = ops_of(module, PackedMmaOp)
    packed = store[mma.packed.owner.weight_name.data]
    expected = packing.pack_weights(packing.codes_from_q(qw.codes, 3))
    np.testing.assert_array_equal(packed.view(np.uint8).reshape(-1), expected)
    np.testing.assert_array_equal(store[mma.scales.owner.weight_name.data],
                                  packing.pack_scales(qw.scales))
    np.testing.assert_array_equal(store[mma.zeros.owner.weight_name.data],
                                  packing.pack_scales(qw.zeros))


def test_c_with_and_without_the_pass(tmp_path):
    """Packed at fold time or at emission time: the same C numbers; with the pass, the
    weights blob holds only packed weights (no unpacked bit planes)."""
    outputs, sizes = [], []
    for disabled in ((), ("lut-pack-weights",)):
        module, weights, x, _, _ = quantized_linear(4, 256, 96, "w2g64", seed=6)
        pipeline(module, disabled=disabled)
        (expected,) = run_module(module, weights, [x])
        model, source = compile_module(module, store_of(weights), tmp_path / str(len(disabled)))
        (y,) = model(x)
        assert rel_max_err(y, expected) <= 1e-5
        outputs.append(y)
        sizes.append(model.manifest["weight_bytes"])
        assert ("lut.packed_mma" not in source) and "lutrt_mma(" in source
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert sizes[0] <= sizes[1]


@pytest.mark.parametrize("spec", ["w8g32", "w8g32sym", "w8g64"])
@pytest.mark.parametrize("m", [1, 2, 8])
def test_8bit_code_bytes_match_the_interpreter_and_compiled_c(spec, m, tmp_path):
    """8-bit codes on int8 tables take the code-byte layout: the folded bytes are
    packing.pack_code_bytes of the codes, the interpreter computes the int8-activation formula
    at every M, within the int8-table error of the bit-plane GEMM before packing and tighter to
    the float reference, and the compiled C (lutrt's int8-activation kernel) agrees with it."""
    module, weights, x, reference, qw = quantized_linear(m, 256, 72, spec, seed=m)  # 72: padding
    pipeline(module, disabled=("lut-pack-weights",))
    (before,) = run_module(module, weights, [x])
    PackWeightsPass().apply(None, module)
    module.verify()
    (mma,) = ops_of(module, PackedMmaOp)
    assert mma.code_bytes is not None and ops_of(module, PackCodeBytesOp)
    (after,) = run_module(module, weights, [x])
    assert rel_max_err(after, reference) <= 2e-4
    assert rel_max_err(after, before) <= 1e-2  # the int8 tables' error (M < 3: tables before)
    assert rel_max_err(after, reference) <= rel_max_err(before, reference) + 1e-7
    store = store_of(weights)
    model, source = compile_module(module, store, tmp_path)
    assert "LUTRT_LAYOUT_CODE_BYTES" in source
    (mma,) = ops_of(module, PackedMmaOp)
    np.testing.assert_array_equal(store[mma.packed.owner.weight_name.data].view(np.uint8).reshape(-1),
                                  packing.pack_code_bytes(qw.codes.astype(np.uint8)))
    (y,) = model(x)
    assert rel_max_err(y, after) <= 1e-6


def test_code_bytes_option_off_keeps_bit_planes():
    module, weights, x, _, _ = quantized_linear(2, 128, 40, "w8g32", seed=3)
    pipeline(module, pass_options={"lut-pack-weights": "{code-bytes=false}"})
    (mma,) = ops_of(module, PackedMmaOp)
    assert mma.code_bytes is None and not ops_of(module, PackCodeBytesOp)
