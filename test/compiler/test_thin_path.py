"""ONNX MatMul + Add + Relu, quantized by lutc, through the whole stack to running C."""

import numpy as np
import onnx
import pytest

from lutc.compiler.demo import demo_model, nmse, reference_forward
from lutc.compiler.driver import compile_model
from lutc.compiler.quantize import WeightSpec
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
