"""lut-fuse-siblings: GEMMs reading one table become one GEMM whose column slices are the old
results, bitwise, in the interpreter and in C; different formats stay apart."""

import numpy as np
import pytest

from lutc.compiler.codegen.fold_weights import fold_weights
from lutc.compiler.interp.interpret import run_module
from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.passes.fuse_precompute import FusePrecomputePass
from lutc.passes.fuse_siblings import FuseSiblingsPass
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from lutc.passes.quantize_table import QuantizeTablePass
from lutc.passes.symmetrize import SymmetrizePass
from test.ir_builders import rel_max_err
from test.passes.compiled import compile_module, pipeline, store_of
from test.passes.models import mlp2, rmsnorm_qkv


def count(module, kind) -> int:
    return sum(isinstance(op, kind) for op in module.walk())


def shared(module):
    for p in (LowerMpGemmPass(), SymmetrizePass(), QuantizeTablePass(), FusePrecomputePass()):
        p.apply(None, module)
    return module


@pytest.mark.parametrize("specs", [("w2g64",) * 3, ("w4g32",) * 3, ("w8g32",) * 3,
                                   ("w4g32", "w4g32", "w2g64")])
@pytest.mark.parametrize("m", [1, 5])
def test_qkv_become_one_gemm_with_bitwise_equal_slices(specs, m):
    module, weights, xs, refs = rmsnorm_qkv(m, 256, 72, specs=specs, seed=m)  # 72: padding
    shared(module)
    assert count(module, MmaOp) == 3
    before = run_module(module, weights, xs)
    FuseSiblingsPass().apply(None, module)
    module.verify()
    same = len(set(specs)) == 1
    assert count(module, MmaOp) == (1 if same else 2)  # a different format stays apart
    after = run_module(module, weights, xs)
    for a, b, ref in zip(after, before, refs):
        np.testing.assert_array_equal(a, b)
        assert rel_max_err(a, ref) <= 0.05


def test_max_n_splits_groups():
    module, weights, xs, _ = rmsnorm_qkv(2, 256, 64, seed=3)
    shared(module)
    FuseSiblingsPass(max_n=128).apply(None, module)
    assert count(module, MmaOp) == 2  # 64 + 64, then 64 alone


@pytest.mark.parametrize("m", [1, 6])
def test_mlp_and_qkv_compiled_c_equal_the_unfused_pipeline(m, tmp_path):
    """Through the whole pipeline and C: the same outputs bit for bit, fewer lutrt_mma calls,
    the concatenated weights folded into the weights file."""
    outputs, calls = [], []
    for disabled in ((), ("lut-fuse-siblings",)):
        module, weights, xs, _ = rmsnorm_qkv(m, 256, 96, specs=("w4g32",) * 3, seed=7)
        pipeline(module, disabled=disabled)
        expected = run_module(module, weights, xs)
        store = store_of(weights)
        fold_weights(module, store)
        assert not any(op.name == "tensor.concat" for op in module.walk())
        model, source = compile_module(module, store, tmp_path / str(len(disabled)))
        got = model(*xs)
        for g, e in zip(got, expected):
            assert rel_max_err(g, e) <= 1e-6
        outputs.append(got)
        calls.append(source.count("lutrt_mma("))
        assert count(module, PackedMmaOp) == (3 if disabled else 1)
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)
    assert calls == [1, 3]


def test_gemms_on_different_tables_are_left_alone():
    module, weights, xs, _ = mlp2(3, 128, 256, seed=2)  # up then down: two tables
    shared(module)
    n = count(module, MmaOp)
    FuseSiblingsPass().apply(None, module)
    assert count(module, MmaOp) == n
