"""ONNX importer: a small MLP (float and lutc-quantized) and the user-facing errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module
from lutc.compiler.frontends.quantize import WeightSpec, quantize

from .conftest import max_abs, rel_max_abs
from .onnx_models import mlp, with_weights


def _ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_mlp_float_matches_onnxruntime(model_dir):
    path = model_dir / "mlp.onnx"
    onnx.save(mlp(), path)
    x = np.random.default_rng(1).standard_normal((4, 32)).astype(np.float32)
    im = import_onnx(path, {"x": (4, 32)})
    assert [i.shape for i in im.inputs] == [(4, 32)] and im.outputs[0].shape == (4, 48)
    assert im.quantization_report == []
    out = run_module(im.module, im.weights, [x])[0]
    assert max_abs(out, _ort(mlp(), {"x": x})[0]) <= 1e-4


@pytest.mark.parametrize("fmt", ["w4g32", "w2g16sym", "ternary"])
def test_mlp_quantized_matches_dequantized_reference(fmt):
    model = mlp()
    spec = WeightSpec.parse(fmt)
    im = import_onnx(model, {"x": (3, 32)}, spec)
    text = str(im.module)
    assert text.count("lut.dequantize") == 2 and "linalg.matmul" in text
    assert [name for name, _ in im.quantization_report] == ["fc1.weight", "fc2.weight"]
    assert all(0 < err < 1 for _, err in im.quantization_report)
    # reference: onnxruntime on the same model with the dequantized weights
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    deq = {
        "fc1.weight": quantize(inits["fc1.weight"].T, spec).dequantize().T,
        "fc2.weight": quantize(inits["fc2.weight"], spec).dequantize(),
    }
    x = np.random.default_rng(2).standard_normal((3, 32)).astype(np.float32)
    ref = _ort(with_weights(model, deq), {"x": x})[0]
    out = run_module(im.module, im.weights, [x])[0]
    assert rel_max_abs(out, ref) <= 1e-3


def test_mlp_ir_reparses_with_lutc_opt(tmp_path):
    im = import_onnx(mlp(), {"x": (2, 32)}, WeightSpec.parse("w2g32"))
    path = tmp_path / "mlp.mlir"
    path.write_text(str(im.module))
    lutc_opt = [sys.executable, "-c", "from lutc.compiler.opt import main; main()"]
    res = subprocess.run(lutc_opt + [str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "lut.dequantize" in res.stdout


def _error(model, shapes=None, weights=None) -> str:
    with pytest.raises(LutcError) as info:
        import_onnx(model, shapes, weights)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert _error(tmp_path / "nope.onnx") == f"model file '{tmp_path / 'nope.onnx'}' does not exist"


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x00\xffthis is not a protobuf")
    assert "is not an ONNX model file" in _error(path)
    path.write_text("")
    assert "is not an ONNX model file" in _error(path)


def test_unsupported_ops_listed_once_each():
    graph = helper.make_graph(
        [helper.make_node("Foo", ["x"], ["a"], name="bar"),
         helper.make_node("Foo", ["a"], ["b"], name="bar2"),
         helper.make_node("Relu", ["b"], ["c"], name="ok"),
         helper.make_node("Foo", ["c"], ["d"], name="bar3"),
         helper.make_node("Baz", ["d"], ["y"], name="q")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    assert _error(helper.make_model(graph)) == (
        "unsupported ONNX ops: Foo (x3, first at node 'bar'), Baz (x1, first at node 'q')")


def test_dynamic_dim_needs_shape():
    message = _error(mlp())
    assert "input 'x'" in message and "'batch'" in message and "--shape" in message
    assert "unknown input(s): z" in _error(mlp(), {"z": (1, 32)})
    assert "does not match" in _error(mlp(), {"x": (1, 31)})


def test_quantized_k_not_multiple_of_4_stays_float():
    """A layer whose K is not a multiple of 4 cannot run on LUT tables: with a weight format
    asked for it stays float with a note (the rest is quantized), not a failed import."""
    model = mlp(k=30)
    im = import_onnx(model, {"x": (2, 30)}, WeightSpec.parse("w4g32"))
    assert [name for name, _ in im.quantization_report] == ["fc2.weight"]
    assert im.float_notes == ["fc1.weight: kept float, its K = 30 input features (for 64 "
                              "outputs) are not a multiple of 4"]
    x = np.random.default_rng(5).standard_normal((2, 30)).astype(np.float32)
    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    h = np.maximum(x @ w["fc1.weight"] + w["fc1.bias"], 0)
    w2 = quantize(w["fc2.weight"], WeightSpec.parse("w4g32")).dequantize()
    out = run_module(im.module, im.weights, [x])[0]
    assert np.abs(out - (h @ w2.T + w["fc2.bias"])).max() <= 1e-4 * np.abs(out).max()


def test_external_data_outside_model_folder_is_refused(tmp_path):
    model = mlp()
    inside = tmp_path / "m"
    inside.mkdir()
    onnx.save(model, inside / "ok.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="ok.data", size_threshold=0)
    x = np.ones((1, 32), np.float32)
    im = import_onnx(inside / "ok.onnx", {"x": (1, 32)})
    assert max_abs(run_module(im.module, im.weights, [x])[0], _ort(mlp(), {"x": x})[0]) <= 1e-4
    # rewrite the location to escape the folder
    proto = onnx.load(str(inside / "ok.onnx"), load_external_data=False)
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../secret.data"
    (tmp_path / "secret.data").write_bytes((inside / "ok.data").read_bytes())
    onnx.save(proto, inside / "evil.onnx")
    assert "outside the model's folder" in _error(inside / "evil.onnx", {"x": (1, 32)})
