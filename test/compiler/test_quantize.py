"""Round-to-nearest quantization of float weights (`--weights`)."""

import numpy as np
import pytest

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.quantize import WeightSpec, quantize, relative_error

# Gaussian weights: the expected relative error of each format (seeded, so tight bounds)
ERRORS = {"w4g32": 0.08, "w4g32sym": 0.10, "w3g64asym": 0.20, "w2g64": 0.45, "ternary": 0.52,
          "w1g128": 0.60}


@pytest.mark.parametrize("spec", list(ERRORS))
@pytest.mark.parametrize("k", [256, 200])  # 200: a partial last group
def test_error_and_code_range(spec, k):
    w = np.random.default_rng(0).standard_normal((64, k))
    parsed = WeightSpec.parse(spec)
    qw = quantize(w, parsed)
    assert qw.codes.shape == (64, k) and qw.codes.max() <= (2 if parsed.ternary else 2**parsed.bits - 1)
    assert qw.scales.shape == (64, -(-k // qw.group))
    assert relative_error(w, qw) <= ERRORS[spec]


@pytest.mark.parametrize("spec", ["w2g32", "w4g32sym", "ternary"])
def test_representable_weights_are_exact(spec):
    """Weights that already lie on a format's grid survive quantization unchanged."""
    rng = np.random.default_rng(1)
    parsed = WeightSpec.parse(spec)
    levels = {"w2g32": np.array([-1.5, -0.5, 0.5, 1.5]), "w4g32sym": np.arange(-8, 8) * 0.25,
              "ternary": np.array([-0.7, 0.0, 0.7])}[spec]
    w = rng.choice(levels, size=(8, 64))
    w[:, 0::32], w[:, 1::32] = levels.min(), levels.max()  # every group spans the grid
    if spec == "ternary":
        w[:] = rng.choice([-0.7, 0.7], size=(8, 64))  # all nonzero: mean |w| is the scale
    qw = quantize(w, parsed)
    np.testing.assert_allclose(qw.dequantize(), w, atol=1e-6)


def test_wide_specs_quantize_8_bit():
    spec = WeightSpec.parse("w8g32")
    assert (spec.bits, spec.group, spec.asym) == (8, 32, True)
    w = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    qw = quantize(w, spec)
    assert qw.codes.max() <= 255
    assert np.abs(qw.dequantize() - w).max() <= np.abs(w).max() / 100


def test_bad_specs():
    for bad in ["w9", "w0", "w2g6", "ternarysym", "q4"]:
        with pytest.raises(LutcError):
            WeightSpec.parse(bad)


@pytest.mark.parametrize("spec", ["w4g32", "w3g64asym", "w2g64", "ternary", "w1g128"])
@pytest.mark.parametrize("k", [256, 200])
def test_row_chunks_give_one_pass_result(spec, k, monkeypatch):
    """quantize runs in row chunks on threads; every group lies in a row, so the codes, scales
    and zero points equal those of one pass, and quantize_with_error's figure equals
    relative_error's."""
    from lutc.compiler.frontends import quantize as q

    w = np.random.default_rng(2).standard_normal((37, k)).astype(np.float32)
    parsed = WeightSpec.parse(spec)
    one = q.quantize(w, parsed)
    monkeypatch.setattr(q, "CHUNK_WEIGHTS", 3 * k)  # 3 rows per chunk, 13 chunks
    chunked, err = q.quantize_with_error(w, parsed)
    assert np.array_equal(one.codes, chunked.codes)
    assert np.array_equal(one.scales, chunked.scales)
    assert (one.zeros is None) == (chunked.zeros is None)
    if one.zeros is not None:
        assert np.array_equal(one.zeros, chunked.zeros)
    assert err == pytest.approx(relative_error(w, one), rel=1e-5)


def _numpy_path(w, spec):
    """_quantize_rows on float64 weights: the C runtime declines them, so this is the numpy
    reference of the same formulas."""
    from lutc.compiler.frontends import quantize as q

    assert q._quantize_rows_c(np.asarray(w, np.float64), spec) is None
    return q._quantize_rows(np.asarray(w, np.float64), spec)


@pytest.mark.parametrize("spec", ["w2g64", "w4g32", "w3g64", "w8g64", "w4g32sym", "w2g64sym",
                                  "ternary", "ternaryg4", "ternaryg12", "ternaryg136"])
@pytest.mark.parametrize("shape", [(40, 2176), (3, 20000), (9, 408)])
def test_c_quantizer_is_bit_identical_to_numpy(spec, shape):
    """lutrt_quantize_rtn (the compile-time fast path) gives exactly the numpy path's codes,
    scales and zero points; ternary's mean|w| follows NumPy's pairwise summation (groups of
    4 .. 20000 weights cover its < 8, <= 128 and halving branches), and its error sums agree
    to rounding. Constant, zero and two-valued groups are included."""
    from lutc.compiler.frontends import quantize as q

    parsed = WeightSpec.parse(spec)
    group = parsed.group or shape[1]
    if shape[1] % group:
        pytest.skip("a partial last group takes the numpy path")
    rng = np.random.default_rng(7)
    w = (rng.standard_normal(shape) * rng.random((shape[0], 1)) * 3).astype(np.float32)
    w[0, :group] = 0.0
    w[1, :group] = 0.75
    w[2, :group] = np.where(np.arange(group) % 2, 0.5, -0.25)
    fast = q._quantize_rows_c(w, parsed)
    assert fast is not None
    ref = _numpy_path(w, parsed)
    np.testing.assert_array_equal(fast[0].codes, ref[0].codes)
    np.testing.assert_array_equal(fast[0].scales, ref[0].scales)
    if ref[0].zeros is None:
        assert fast[0].zeros is None
    else:
        np.testing.assert_array_equal(fast[0].zeros, ref[0].zeros)
    np.testing.assert_allclose(fast[1:], ref[1:], rtol=1e-9)


def test_c_quantizer_leaves_non_finite_weights_to_numpy():
    """A NaN or inf weight makes lutrt_quantize_rtn decline (return None): the numpy path
    keeps defining that case."""
    from lutc.compiler.frontends import quantize as q

    for bad in (np.nan, np.inf, -np.inf):
        w = np.ones((4, 64), np.float32)
        w[2, 17] = bad
        assert q._quantize_rows_c(w, WeightSpec.parse("w4g32")) is None


def test_chunked_c_path_takes_numpy_rows_for_non_finite_chunks(monkeypatch):
    """In a chunked quantization that writes in place, a chunk holding a NaN is quantized by
    the numpy path and its rows land in the same outputs: the codes of the other rows equal
    those of quantizing them alone."""
    from lutc.compiler.frontends import quantize as q

    w = np.random.default_rng(3).standard_normal((12, 128)).astype(np.float32)
    w[5, 7] = np.nan
    parsed = WeightSpec.parse("w4g32")
    monkeypatch.setattr(q, "CHUNK_WEIGHTS", 4 * 128)  # 3 chunks, the middle one with the NaN
    qw, _ = q.quantize_with_error(w, parsed)
    ref = q._quantize_rows(w[4:8].astype(np.float64), parsed)[0]
    np.testing.assert_array_equal(qw.codes[4:8], ref.codes)
    np.testing.assert_array_equal(qw.scales[4:8], ref.scales)
    clean = q.quantize(np.delete(w, slice(4, 8), axis=0), parsed)
    np.testing.assert_array_equal(np.delete(qw.codes, slice(4, 8), axis=0), clean.codes)


@pytest.mark.parametrize("spec", ["w4g1000000", "w2g1000000sym", "ternaryg4096"])
@pytest.mark.parametrize("k", [64, 70])
def test_group_longer_than_the_row_is_the_whole_row(spec, k):
    """A group at least as long as the row quantizes like the whole row (one group), without
    padding the row to the group's length (w4g1000000 once allocated 8 MB per weight row)."""
    w = np.random.default_rng(1).standard_normal((8, k)).astype(np.float32)
    long, whole = WeightSpec.parse(spec), WeightSpec.parse(spec.split("g")[0]
                                                           + f"g{k - k % 4}" + spec[len(spec.rstrip("asym")):])
    assert long.row_group(k) == k
    q = quantize(w, long)
    assert q.group == k and q.scales.shape == (8, 1)
    if k % 4 == 0:  # the same as naming the row's length as the group
        ref = quantize(w, whole)
        np.testing.assert_array_equal(q.codes, ref.codes)
        np.testing.assert_array_equal(q.scales, ref.scales)
