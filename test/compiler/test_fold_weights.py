"""fold_weights (compiler/codegen/fold_weights.py): weight-only ops (bit planes, the
symmetrization re-encodings, packing, weight transposes) are evaluated into the weight store;
the numbers the IR computes do not change (interpreter before vs after folding)."""

import numpy as np
import pytest
from xdsl.dialects.linalg import ops as linalg

from lutc.compiler.codegen.fold_weights import FOLDABLE, fold_weights
from lutc.compiler.interp.interpret import run_module
from lutc.dialects.lut_ops import MmaOp, WeightOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from lutc.passes.pack_weights import PackWeightsPass
from lutc.passes.symmetrize import SymmetrizePass
from lutc.runtime import packing
from test.ir_builders import quantized_linear
from test.passes.compiled import store_of
from test.passes.test_lower_mpgemm import FLOAT_LINEAR


def ops_of(module, kind):
    return [op for op in module.walk() if isinstance(op, kind)]


PASSES = {
    "lower": [LowerMpGemmPass],
    "symmetrize": [LowerMpGemmPass, SymmetrizePass],
    "pack": [LowerMpGemmPass, SymmetrizePass, PackWeightsPass],
}


@pytest.mark.parametrize("spec", ["w2g64", "w3g32", "w4g32sym", "ternary"])
@pytest.mark.parametrize("stage", list(PASSES))
def test_folding_leaves_the_numbers_unchanged(spec, stage):
    module, weights, x, _, _ = quantized_linear(3, 128, 40, spec, seed=5)
    for p in PASSES[stage]:
        p().apply(None, module)
    store = store_of(weights)
    (before,) = run_module(module, store, [x])
    folded = fold_weights(module, store)
    module.verify()
    assert folded >= 1
    assert not [op for op in module.walk() if isinstance(op, FOLDABLE)
                and not isinstance(op, linalg.TransposeOp)], "a weight-only op was left"
    (after,) = run_module(module, store, [x])
    np.testing.assert_array_equal(after, before)


def test_bit_planes_fold_to_the_runtime_encoding():
    module, weights, x, _, qw = quantized_linear(2, 128, 40, "w3g32", seed=1)
    LowerMpGemmPass().apply(None, module)
    store = store_of(weights)
    fold_weights(module, store)
    (mma,) = ops_of(module, MmaOp)
    assert isinstance(mma.codes.owner, WeightOp)
    planes = store[mma.codes.owner.weight_name.data]
    np.testing.assert_array_equal(planes.view(np.uint8), packing.codes_from_q(qw.codes, 3))


def test_packing_folds_to_the_runtime_layout():
    module, weights, x, _, qw = quantized_linear(2, 128, 72, "w2g64", seed=3)  # 72: padding
    for p in PASSES["pack"]:
        p().apply(None, module)
    store = store_of(weights)
    fold_weights(module, store)
    (mma,) = ops_of(module, PackedMmaOp)
    packed = store[mma.packed.owner.weight_name.data].view(np.uint8).reshape(-1)
    codes = packing.mirror_codes(packing.codes_from_q(qw.codes, 2))
    np.testing.assert_array_equal(packed, packing.pack_weights(codes))


def test_weight_transpose_folds_but_activations_do_not():
    from xdsl.parser import Parser

    from lutc.compiler.context import make_context

    module = Parser(make_context(), FLOAT_LINEAR).parse_module()
    rng = np.random.default_rng(0)
    store = store_of({"w": rng.standard_normal((16, 64)).astype(np.float32)})
    x = rng.standard_normal((2, 64)).astype(np.float32)
    (before,) = run_module(module, store, [x])
    assert fold_weights(module, store) == 1
    assert not ops_of(module, linalg.TransposeOp)
    (w,) = [op for op in ops_of(module, WeightOp) if op.weight_name.data != "w"]
    np.testing.assert_array_equal(store[w.weight_name.data], store["w"].T)
    (after,) = run_module(module, store, [x])
    np.testing.assert_array_equal(after, before)
