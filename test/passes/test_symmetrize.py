"""lut-symmetrize: the symmetrized path computes what the 16-entry path computes."""

import re

import numpy as np
import pytest

from lutc.compiler.codegen.fold_weights import fold_weights
from lutc.compiler.interp.interpret import run_module
from lutc.runtime import packing
from lutc.dialects.lut_ops import BitPlanesOp, MmaOp, PrecomputeOp
from lutc.dialects.mirror_ops import MirrorCodesOp, MirrorZerosOp
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from lutc.passes.symmetrize import SymmetrizePass
from lutc.compiler.frontends.quantize import WeightSpec
from test import ir_builders
from test.ir_builders import quantized_linear, rel_max_err
from test.passes.compiled import compile_module, store_of
from test.passes.models import rmsnorm_qkv

# 1..4 bits and ternary, with zero points (asym) and without (sym: implicit zero point)
SPECS = ["w1g64", "w1g64sym", "w2g64", "w2g32sym", "w3g32", "w3g64sym", "w4g32", "w4g128sym",
         "ternary", "ternaryg64"]


def ops_of(module, kind):
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("m", [1, 3, 16])
def test_symmetrized_equals_unsymmetrized(spec, m):
    module, weights, x, reference, qw = quantized_linear(m, 256, 48, spec, seed=m)
    LowerMpGemmPass().apply(None, module)
    (before,) = run_module(module, weights, [x])
    SymmetrizePass().apply(None, module)
    module.verify()
    (after,) = run_module(module, weights, [x])
    (mma,) = ops_of(module, MmaOp)
    assert mma.format.is_mirrored and mma.table.type.entries.data == 8
    assert mma.format.nbits == qw.bits  # bit-serial: W planes of one 8-entry table
    assert (mma.zeros is not None) == (qw.zeros is not None)
    assert rel_max_err(after, before) <= 1e-5  # fp32 rounding only
    assert rel_max_err(after, reference) <= 1e-4


# 5..8-bit codes (GGUF Q6_K: w6 g16, Q8_0: w8 g32 with the implicit zero point 128). The
# mirrored form pays for them as for narrow codes (8-entry tables, half the precompute and
# table traffic, the same B lookups), so lut-symmetrize treats every width alike.
WIDE_SPECS = ["w5g32", "w6g16", "w6g16sym", "w7g64sym", "w8g32", "w8g32sym"]


@pytest.fixture
def wide_weight_specs(monkeypatch):
    """`--weights` parses w1..w4 only; the test IR builder takes w5..w8 too."""
    parse = WeightSpec.parse

    def wide(text):
        m = re.fullmatch(r"w([5-8])g(\d+)(sym)?", text)
        return WeightSpec(int(m[1]), int(m[2]), not m[3], False) if m else parse(text)

    monkeypatch.setattr(ir_builders.WeightSpec, "parse", staticmethod(wide))


@pytest.mark.parametrize("spec", WIDE_SPECS)
@pytest.mark.parametrize("m", [1, 3, 16])
def test_wide_codes_symmetrize(spec, m, wide_weight_specs):
    """The interpreter (lut_semantics) runs B = 5..8 planes, codes >= 128 stored in i8
    included, before and after symmetrization; both match the dequantized matmul."""
    module, weights, x, reference, qw = quantized_linear(m, 256, 48, spec, seed=m)
    assert qw.codes.max() >= 2 ** (qw.bits - 1)
    LowerMpGemmPass().apply(None, module)
    (before,) = run_module(module, weights, [x])
    SymmetrizePass().apply(None, module)
    module.verify()
    (after,) = run_module(module, weights, [x])
    (mma,) = ops_of(module, MmaOp)
    assert mma.format.is_mirrored and mma.format.nbits == qw.bits
    assert mma.codes.type.get_shape()[0] == qw.bits
    assert rel_max_err(before, reference) <= 1e-4
    assert rel_max_err(after, reference) <= 1e-4


def test_weights_are_reencoded_as_documented():
    """q' = 2q - (2^W - 1) is what the mirrored planes index; s' = s/2; z' = 2z + 1 - 2^W."""
    module, weights, x, _, qw = quantized_linear(2, 64, 32, "w3g32", seed=4)
    LowerMpGemmPass().apply(None, module)
    SymmetrizePass().apply(None, module)
    store = store_of(weights)
    fold_weights(module, store)
    (mma,) = ops_of(module, MmaOp)
    planes = store[mma.codes.owner.weight_name.data].astype(np.uint8)
    s2 = store[mma.scales.owner.weight_name.data]
    z2 = store[mma.zeros.owner.weight_name.data]
    np.testing.assert_array_equal(s2, qw.scales / 2)
    np.testing.assert_allclose(z2, 2 * qw.zeros + 1 - 8, rtol=1e-6, atol=1e-6)
    # decode the ±1 planes: a code c >= 8 stands for pattern ~(c & 7) & 15 (sign bit set)
    patterns = np.where(planes >= 8, (~(planes & 7)) & 15, planes)
    bits = (patterns[..., None] >> np.arange(4)) & 1  # [B, N, K/4, 4]
    q_signed = sum((2.0 * bits[b] - 1) * 2**b for b in range(3)).reshape(32, 64)
    np.testing.assert_array_equal(q_signed, 2.0 * qw.codes - 7)


def test_shared_table_symmetrizes_all_its_gemms():
    module, weights, xs, _ = rmsnorm_qkv(3, 128, 32, specs=("w2g64", "w4g64sym", "w1g64"))
    LowerMpGemmPass().apply(None, module)
    from lutc.passes.fuse_precompute import FusePrecomputePass

    FusePrecomputePass(fuse=False).apply(None, module)
    before = run_module(module, weights, xs)
    assert len(ops_of(module, PrecomputeOp)) == 1
    SymmetrizePass().apply(None, module)
    module.verify()
    (pre,) = ops_of(module, PrecomputeOp)
    assert pre.table.type.entries.data == 8
    assert all(op.format.is_mirrored for op in ops_of(module, MmaOp))
    for a, b in zip(run_module(module, weights, xs), before):
        assert rel_max_err(a, b) <= 1e-5


def test_folded_planes_are_mirrored_by_mirror_codes():
    """Planes that are already a weight get a lut.mirror_codes (and fold again)."""
    module, weights, x, _, _ = quantized_linear(3, 128, 40, "w4g32", seed=5)
    LowerMpGemmPass().apply(None, module)
    store = store_of(weights)
    fold_weights(module, store)
    (before,) = run_module(module, store, [x])
    SymmetrizePass().apply(None, module)
    assert len(ops_of(module, MirrorCodesOp)) == 1 and not ops_of(module, BitPlanesOp)
    (after,) = run_module(module, store, [x])
    assert rel_max_err(after, before) <= 1e-5
    fold_weights(module, store)
    assert not ops_of(module, MirrorCodesOp)
    (folded,) = run_module(module, store, [x])
    np.testing.assert_array_equal(folded, after)


def test_idempotent():
    module, weights, x, _, _ = quantized_linear(1, 64, 32, "w2g64")
    LowerMpGemmPass().apply(None, module)
    SymmetrizePass().apply(None, module)
    text = str(module)
    SymmetrizePass().apply(None, module)
    assert str(module) == text
    assert len(ops_of(module, MirrorZerosOp)) == 1


def test_mirror_semantics():
    z = np.array([[0.0, 1.5, 3.0]], np.float32)
    np.testing.assert_array_equal(packing.mirror_zero(z, 2), [[-3.0, 0.0, 3.0]])
    np.testing.assert_array_equal(packing.mirror_scale(np.array([2.0], np.float32)), [1.0])


@pytest.mark.parametrize("spec", ["w1g64", "w3g32sym", "ternary"])
def test_compiled_symmetrized_gemm_matches_interpreter(spec, tmp_path):
    module, weights, x, reference, _ = quantized_linear(3, 256, 40, spec, seed=9)
    LowerMpGemmPass().apply(None, module)
    SymmetrizePass().apply(None, module)
    (expected,) = run_module(module, weights, [x])
    model, _ = compile_module(module, store_of(weights), tmp_path)
    (y,) = model(x)
    assert rel_max_err(y, expected) <= 1e-5
