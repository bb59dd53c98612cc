"""The default pipeline end to end: quantized linear layers through every pass, to C, run,
against the interpreter (same IR) and the float reference (dequantized weights)."""

import numpy as np
import pytest

from lutc.compiler.interp.interpret import run_module
from lutc.compiler.pipeline import DEFAULT_PASSES
from lutc.dialects.fused_precompute import FusedPrecomputeOp
from lutc.dialects.packed_ops import PackedMmaOp
from test.ir_builders import quantized_linear, rel_max_err
from test.passes.compiled import compile_module, nmse, pipeline, store_of
from test.passes.models import rmsnorm_qkv


@pytest.mark.parametrize("spec, m", [
    ("w1g64", 1), ("w2g64", 3), ("w3g32sym", 16), ("w4g32", 2), ("ternary", 1), ("w4g128sym", 33),
])
def test_default_pipeline_to_c(spec, m, tmp_path, monkeypatch):
    module, weights, x, reference, _ = quantized_linear(m, 256, 80, spec, seed=m)
    pipeline(module)
    (mma,) = [op for op in module.walk() if isinstance(op, PackedMmaOp)]
    assert mma.format.is_mirrored and mma.table.type.is_quantized and "tile" in mma.attributes
    # from lutrt_i8act_min_m(B) tokens on (AVX512-VNNI CPUs) the runtime multiplies two-pass
    # int8 activations instead of looking up the tables (runtime/lutrt.h); the interpreter
    # follows the runtime's threshold, so both agree with the path on (default) and off
    expected = {}
    for min_m in (None, "0"):
        if min_m is not None:
            monkeypatch.setenv("LUTRT_I8ACT_MIN_M", min_m)
        (expected[min_m],) = run_module(module, weights, [x])
        assert nmse(expected[min_m], reference) <= 5e-4
    monkeypatch.delenv("LUTRT_I8ACT_MIN_M")
    model, _ = compile_module(module, store_of(weights), tmp_path)
    for min_m in (None, "0"):
        if min_m is not None:
            monkeypatch.setenv("LUTRT_I8ACT_MIN_M", min_m)
        (y,) = model(x)
        assert rel_max_err(y, expected[min_m]) <= 1e-5


@pytest.mark.parametrize("disabled", [p for p in DEFAULT_PASSES if p != "lut-lower-mpgemm"])
def test_each_pass_can_be_disabled(disabled, tmp_path):
    module, weights, xs, refs = rmsnorm_qkv(3, 128, 64, rows3d=True, seed=4)
    pipeline(module, disabled=(disabled,))
    expected = run_module(module, weights, xs)
    model, _ = compile_module(module, store_of(weights), tmp_path)
    for y, e, ref in zip(model(*xs), expected, refs):
        assert rel_max_err(y, e) <= 1e-5
        # unsymmetrized 16-entry int8 tables: the zero-point term uses the rounded all-ones
        # entries (W = 0 exactly 0, docs/design.md §2), a bound up to 2x looser than plain
        # sums; test_quantize_table.py's oracle uses the same limits
        assert nmse(y, ref) <= (1e-3 if disabled == "lut-symmetrize" else 5e-4)
    fused = any(isinstance(op, FusedPrecomputeOp) for op in module.walk())
    assert fused == (disabled != "lut-fuse-precompute")


def test_batch_rows_are_independent(tmp_path, monkeypatch):
    """Row m of a batched compiled GEMM equals the GEMV of row m alone (bitnet.cpp shipped a
    batch > 1 bug)."""
    module, weights, x, _, _ = quantized_linear(4, 256, 64, "w2g64", seed=1)
    pipeline(module)
    model, _ = compile_module(module, store_of(weights), tmp_path / "batch")
    single, weights1, _, _, _ = quantized_linear(1, 256, 64, "w2g64", seed=1)
    pipeline(single)
    model1, _ = compile_module(single, store_of(weights1), tmp_path / "one")
    # the table kernels (path off) and the int8-activation path from one token on (lutrt.h)
    for min_m in ("0", "1"):
        monkeypatch.setenv("LUTRT_I8ACT_MIN_M", min_m)
        (full,) = model(x)
        for row in range(4):
            (y,) = model1(x[row:row + 1])
            np.testing.assert_allclose(full[row], y[0], rtol=1e-5, atol=1e-5)
