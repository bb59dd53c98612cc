"""lut-fuse-precompute: shared and fused tables compute what separate precomputes compute,
in the interpreter and in C."""

import numpy as np
import pytest

from lutc.compiler.interp.interpret import run_module
from lutc.dialects.fused_precompute import FusedPrecomputeOp
from lutc.dialects.lut_ops import PrecomputeOp
from lutc.passes.fuse_precompute import FusePrecomputePass
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from lutc.passes.quantize_table import QuantizeTablePass
from lutc.passes.symmetrize import SymmetrizePass
from test.ir_builders import rel_max_err
from test.passes.compiled import compile_module, nmse, pipeline, store_of
from test.passes.models import mlp2, rmsnorm_qkv


def count(module, kind) -> int:
    return sum(isinstance(op, kind) for op in module.walk())


def lowered(module):
    for p in (LowerMpGemmPass(), SymmetrizePass(), QuantizeTablePass()):
        p.apply(None, module)
    return module


@pytest.mark.parametrize("rows3d", [False, True])
@pytest.mark.parametrize("m", [1, 5])
def test_qkv_share_one_fused_table(rows3d, m):
    module, weights, xs, refs = rmsnorm_qkv(m, 256, 64, rows3d=rows3d, seed=m)
    lowered(module)
    assert count(module, PrecomputeOp) == 3
    before = run_module(module, weights, xs)
    FusePrecomputePass().apply(None, module)
    module.verify()
    assert count(module, PrecomputeOp) == 0 and count(module, FusedPrecomputeOp) == 1
    after = run_module(module, weights, xs)
    for a, b, ref in zip(after, before, refs):
        np.testing.assert_array_equal(a, b)  # the same tables, built once
        assert nmse(a, ref) <= 5e-4


def test_different_table_configs_are_not_shared():
    """w2g64 and w4g32 read the same activations with different sum groups: two tables; the
    first fuses into the producer, the other reads the fused op's activations."""
    module, weights, xs, _ = rmsnorm_qkv(3, 128, 32, specs=("w2g64", "w4g32", "w2g64"))
    lowered(module)
    before = run_module(module, weights, xs)
    FusePrecomputePass().apply(None, module)
    assert count(module, FusedPrecomputeOp) == 1 and count(module, PrecomputeOp) == 1
    for a, b in zip(run_module(module, weights, xs), before):
        np.testing.assert_array_equal(a, b)


def test_share_only_option():
    module, weights, xs, _ = rmsnorm_qkv(2, 128, 32)
    lowered(module)
    FusePrecomputePass(fuse=False).apply(None, module)
    assert count(module, PrecomputeOp) == 1 and count(module, FusedPrecomputeOp) == 0


def test_fused_and_unfused_c_agree(tmp_path):
    """The fused C (per-row lutrt_precompute_row inside the producer's loops) gives the same
    numbers as --disable-pass lut-fuse-precompute (one lutrt_precompute per table)."""
    results, sources = {}, {}
    for fused in (True, False):
        module, weights, xs, refs = rmsnorm_qkv(4, 256, 64, rows3d=True, seed=3)
        pipeline(module, disabled=() if fused else ("lut-fuse-precompute",))
        expected = run_module(module, weights, xs)
        model, sources[fused] = compile_module(module, store_of(weights), tmp_path / str(fused))
        results[fused] = model(*xs)
        for y, e in zip(results[fused], expected):
            assert rel_max_err(y, e) <= 1e-5
    assert "lutrt_precompute_row(" in sources[True] and "lutrt_precompute(" not in sources[True]
    assert "lutrt_precompute(" in sources[False] and "lutrt_precompute_row(" not in sources[False]
    for a, b in zip(results[True], results[False]):
        assert rel_max_err(a, b) <= 1e-6


def test_mlp_hidden_activation_fuses_into_silu(tmp_path):
    module, weights, xs, refs = mlp2(3, 128, 256, seed=2)
    pipeline(module)
    assert count(module, FusedPrecomputeOp) == 1 and count(module, PrecomputeOp) == 1
    (expected,) = run_module(module, weights, xs)
    assert nmse(expected, refs[0]) <= 5e-4
    model, source = compile_module(module, store_of(weights), tmp_path)
    (y,) = model(*xs)
    assert rel_max_err(y, expected) <= 1e-5
    assert source.count("lutrt_precompute_row(") == 1


def test_symmetrize_and_quantize_after_fusion():
    """The table passes also rewrite a fused precompute's tables (any pass order works)."""
    results = []
    for order in (("lut-symmetrize", "lut-quantize-table", "lut-fuse-precompute"),
                  ("lut-fuse-precompute", "lut-symmetrize", "lut-quantize-table")):
        module, weights, xs, _ = mlp2(2, 64, 128, seed=5)
        LowerMpGemmPass().apply(None, module)
        passes = {"lut-symmetrize": SymmetrizePass(), "lut-quantize-table": QuantizeTablePass(),
                  "lut-fuse-precompute": FusePrecomputePass()}
        for name in order:
            passes[name].apply(None, module)
        module.verify()
        (fused,) = [op for op in module.walk() if isinstance(op, FusedPrecomputeOp)]
        assert fused.table.type.mirrored and fused.table.type.is_quantized
        results.append(run_module(module, weights, xs)[0])
    np.testing.assert_array_equal(results[0], results[1])
