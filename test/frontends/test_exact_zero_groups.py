"""W = 0 gives exactly the bias (issue 10): weight groups whose codes all equal their integer
zero point get scale 0 when they become IR (QuantizedWeight.scales_for_lut), so every LUT
kernel, with int8 or f32 tables, adds exactly 0 for them."""

from __future__ import annotations

import numpy as np
import pytest

from lutc.compiler.frontends.quantize import QuantizedWeight


def test_dead_groups_get_scale_zero():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 16, (4, 40)).astype(np.uint8)  # groups of 16: 16 + 16 + 8
    zeros = np.array([[3, 5, 7], [3.5, 5, 7], [3, 5, 7], [0, 15, 2]], np.float32)
    codes[0, 0:16] = 3        # row 0 group 0: all at its zero point -> dead
    codes[1, 0:16] = 3        # row 1 group 0: zero point 3.5 is not an integer -> kept
    codes[2, 32:40] = 7       # row 2 partial last group: all 8 codes at 7 -> dead
    codes[3, 16:31] = 15      # row 3 group 1: one code short of dead -> kept
    codes[3, 31] = 14
    scales = rng.random((4, 3)).astype(np.float32) + 0.5
    qw = QuantizedWeight(codes, scales, zeros, 4, 16)
    got = qw.scales_for_lut()
    dead = np.zeros((4, 3), bool)
    dead[0, 0] = dead[2, 2] = True
    assert np.array_equal(got == 0, dead)
    assert np.array_equal(got[~dead], scales[~dead])
    assert np.array_equal(qw.dequantize(), QuantizedWeight(codes, got, zeros, 4, 16).dequantize())


def test_implicit_zero_point():
    codes = np.full((2, 32), 8, np.uint8)
    codes[1, 5] = 9
    qw = QuantizedWeight(codes, np.ones((2, 1), np.float32), None, 4, 32)
    assert qw.scales_for_lut().ravel().tolist() == [0.0, 1.0]


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("weights", ["w4g32", "w2g64sym", "ternary", "w3g32"])
@pytest.mark.parametrize("lossless", [False, True])
def test_zero_weights_give_exactly_the_bias(weights, lossless, tmp_path):
    """A linear layer whose weight is 0 in whole rows and in whole groups: those outputs are
    exactly the bias on every kernel this CPU has, with int8 and with f32 tables."""
    import lutc
    from lutc.runtime import kernels

    torch.manual_seed(0)
    lin = torch.nn.Linear(128, 96)
    with torch.no_grad():
        lin.weight[:32] = 0                  # whole rows
        lin.weight[32:64, :64] = 0           # the first 64 columns (whole groups of 32 / 64)
        x = torch.randn(5, 128) * 3
    run = lutc.compile(lin, example_inputs=(x,), weights=weights, outdir=tmp_path / "m",
                       disable_passes=("lut-quantize-table",) if lossless else ())
    bias = lin.bias.detach().numpy()
    names = [k for k in ("ref", "avx2", "avx512", "avx512vbmi") if kernels.kernel_available(k)]
    try:
        for name in names:
            kernels.set_kernel(name)
            y = np.asarray(run(x.numpy())[0]).reshape(5, 96)
            assert np.array_equal(y[:, :32], np.broadcast_to(bias[:32], (5, 32))), name
            # the other rows do compute (the zeros above are not a dead kernel's)
            assert np.isfinite(y).all() and (y[:, 64:] != bias[64:]).all(), name
    finally:
        kernels.set_kernel(None)
