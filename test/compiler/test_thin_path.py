"""ONNX MatMul + Add + Relu, quantized by lutc, through the whole stack to running C."""

import numpy as np
import onnx
import pytest

from lutc.compiler.demo import demo_model, nmse, reference_forward
from lutc.compiler.api import compile_model
from lutc.compiler.frontends.quantize import WeightSpec
from lutc.runtime.model_loader import CompiledModel


@pytest.mark.parametrize("spec", ["w2g64", "w4g32sym", "ternary"])
def test_thin_path_matches_dequantized_reference(tmp_path, spec):
    model, params = demo_model(seed=3)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    compile_model(path, tmp_path / "out", weights=spec, disabled=["lut-quantize-table"],
                  out=lambda s: None)
    x = np.random.default_rng(0).standard_normal((16, 512)).astype(np.float32)
    (y,) = CompiledModel(tmp_path / "out")(x)
    assert nmse(y, reference_forward(x, params, WeightSpec.parse(spec))) <= 1e-6


def test_thin_path_against_onnxruntime_float(tmp_path):
    """Quantization error is expected against the float model: report it, bound it loosely."""
    ort = pytest.importorskip("onnxruntime")
    model, params = demo_model(seed=5)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    compile_model(path, tmp_path / "w4", weights="w4g32", out=lambda s: None)
    x = np.random.default_rng(1).standard_normal((16, 512)).astype(np.float32)
    (y,) = CompiledModel(tmp_path / "w4")(x)
    (y_ort,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    error = nmse(y, y_ort)
    print(f"w4g32 vs onnxruntime float: NMSE {error:.2e}")
    assert error < 2e-2  # 4-bit group-32 weights on a random MLP


def test_standalone_main_runs_without_python(tmp_path):
    import subprocess

    model, _ = demo_model(seed=2)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    compile_model(path, out, weights="w2g64", out=lambda s: None)
    x = np.random.default_rng(2).standard_normal((16, 512)).astype(np.float32)
    x.tofile(tmp_path / "x.bin")
    proc = subprocess.run([str(out / "run_model"), str(out / "weights.bin"), str(tmp_path / "x.bin"),
                           str(tmp_path / "y.bin")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (expected,) = CompiledModel(out)(x)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "y.bin", np.float32).reshape(16, 512),
                                  expected)
    bad = subprocess.run([str(out / "run_model"), str(out / "weights.bin"), str(path),
                          str(tmp_path / "y.bin")], capture_output=True, text=True)
    assert bad.returncode == 1 and "must hold exactly" in bad.stderr
