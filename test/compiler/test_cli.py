"""User errors reach the user as one line naming the problem, exit 1, no traceback."""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LUTC = [sys.executable, "-m", "lutc.compiler.driver"]


def run_lutc(*args, cwd=None):
    return subprocess.run([*LUTC, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lutc: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_model_file(tmp_path):
    assert_one_line_error(run_lutc("compile", tmp_path / "nope.onnx", "-o", tmp_path / "out"),
                          "nope.onnx", "does not exist")


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffthis is not a protobuf\x13\x37" * 10)
    assert_one_line_error(run_lutc("compile", bad, "-o", tmp_path / "out"), "bad.onnx")


def _model_with(op_type: str, path: Path) -> None:
    w = numpy_helper.from_array(np.ones((8, 8), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node(op_type, ["h"], ["y"], name="weird_node")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_unsupported_op_names_node(tmp_path):
    path = tmp_path / "m.onnx"
    _model_with("Hardmax", path)
    assert_one_line_error(run_lutc("compile", path, "-o", tmp_path / "out"), "Hardmax",
                          "weird_node")


def test_bad_weight_format(tmp_path):
    path = tmp_path / "m.onnx"
    _model_with("Relu", path)
    assert_one_line_error(run_lutc("compile", path, "-o", tmp_path / "o", "--weights", "w9"),
                          "w9")


def test_unknown_disabled_pass(tmp_path):
    path = tmp_path / "m.onnx"
    _model_with("Relu", path)
    assert_one_line_error(run_lutc("compile", path, "-o", tmp_path / "o", "--disable-pass", "nope"),
                          "nope")


def test_run_with_wrong_input_shape(tmp_path):
    path = tmp_path / "m.onnx"
    _model_with("Relu", path)
    out = tmp_path / "out"
    proc = run_lutc("compile", path, "-o", out, "--weights", "w2g8")
    assert proc.returncode == 0, proc.stderr
    np.save(tmp_path / "x.npy", np.zeros((3, 8), np.float32))
    assert_one_line_error(run_lutc("run", out, "--input", tmp_path / "x.npy"), "[2, 8]", "[3, 8]")
    np.save(tmp_path / "x.npy", np.ones((2, 8), np.float32))
    proc = run_lutc("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, 8) and np.all(y >= 0)


def test_print_ir_after_all_shows_every_stage(tmp_path):
    path = tmp_path / "m.onnx"
    _model_with("Relu", path)
    proc = run_lutc("compile", path, "-o", tmp_path / "o", "--weights", "w2g8",
                    "--print-ir-after-all", "--emit", "c")
    assert proc.returncode == 0, proc.stderr
    assert "IR after import" in proc.stdout and "IR after lut-lower-mpgemm" in proc.stdout
    assert "IR after fold-weights" in proc.stdout
    assert "lut.mma" in proc.stdout


def test_print_ir_after_import_feeds_lutc_opt(tmp_path):
    """`--print-ir-after import` prints the frontend's IR alone, which lutc-opt takes as its
    input; the same pass through lutc-opt gives the IR the compile printed after it."""
    path = tmp_path / "m.onnx"
    _model_with("Relu", path)
    proc = run_lutc("compile", path, "-o", tmp_path / "o", "--weights", "w2g8", "--emit", "mlir",
                    "--print-ir-after", "import", "--print-ir-after", "lut-lower-mpgemm",
                    "--disable-pass", "lut-fuse-attention")
    assert proc.returncode == 0, proc.stderr
    parts = proc.stdout.split("// -----// IR after ")
    titles = [p.split(" ", 1)[0] for p in parts[1:]]
    assert titles == ["import", "lut-lower-mpgemm"], titles
    imported = parts[1].split("\n", 1)[1]
    assert "linalg.matmul" in imported and "lut.mma" not in imported
    lowered = parts[2].split("\n", 1)[1]
    lowered = lowered[:lowered.index("}\n}") + 3]
    (tmp_path / "imported.mlir").write_text(imported[:imported.index("}\n}") + 3])
    opt = subprocess.run([sys.executable, "-m", "lutc.compiler.opt", tmp_path / "imported.mlir",
                          "-p", "lut-lower-mpgemm"], capture_output=True, text=True)
    assert opt.returncode == 0, opt.stderr
    assert opt.stdout.strip() == lowered.strip()
    bad = run_lutc("compile", path, "-o", tmp_path / "o2", "--print-ir-after", "imports")
    assert bad.returncode == 1 and "'import' prints the imported IR" in bad.stderr, bad.stderr


def test_model_text_never_reaches_c(tmp_path):
    """Names from the model file (here hostile ones) are sanitized or dropped: none of them
    appears verbatim in the generated C."""
    names = {"input": "in */ system(\"rm\"); /*", "weight": "layers.0.SECRET_proj.weight",
             "node": "node`$(echo)`", "bias": "Bias#With Spaces", "output": "out\\put"}
    w = numpy_helper.from_array(np.ones((8, 8), np.float32), names["weight"])
    b = numpy_helper.from_array(np.arange(8, dtype=np.float32), names["bias"])
    nodes = [helper.make_node("MatMul", [names["input"], names["weight"]], ["h"], name=names["node"]),
             helper.make_node("Add", ["h", names["bias"]], [names["output"]], name="SECRET_add")]
    graph = helper.make_graph(
        nodes, "SECRET_graph", [helper.make_tensor_value_info(names["input"], TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info(names["output"], TensorProto.FLOAT, [2, 8])], [w, b])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    proc = run_lutc("compile", path, "-o", tmp_path / "out", "--weights", "w2g8", "--emit", "c")
    assert proc.returncode == 0, proc.stderr
    for c_file in ["model.c", "main.c"]:
        text = (tmp_path / "out" / c_file).read_text()
        assert "SECRET" not in text and "system" not in text
        for name in names.values():
            assert name not in text


def _matmul_model(path: Path) -> np.ndarray:
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 32])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return rng.standard_normal((4, 64)).astype(np.float32)


def test_lossless_option_on_compile_and_the_python_api(tmp_path):
    """`lutc compile --lossless` and `lutc.compile(lossless=True)`: f32 tables, i.e. exactly the
    pipeline without lut-quantize-table (as on `lutc generate --lossless` / `lutc.LLM`)."""
    import lutc

    path = tmp_path / "m.onnx"
    x = _matmul_model(path)
    texts = {}
    for name, extra in (("default", []), ("lossless", ["--lossless"]),
                        ("disabled", ["--disable-pass", "lut-quantize-table"])):
        proc = run_lutc("compile", path, "-o", tmp_path / name, "--weights", "w4g32",
                        "--emit", "c", *extra)
        assert proc.returncode == 0, proc.stderr
        texts[name] = (tmp_path / name / "model.c").read_text()
    assert ".table_i8 = 1" in texts["default"] and ".table_i8 = 1" not in texts["lossless"]
    assert texts["lossless"] == texts["disabled"]
    outs = {flag: lutc.compile(str(path), weights="w4g32", lossless=flag)(x)[0]
            for flag in (False, True)}
    want = lutc.compile(str(path), weights="w4g32", disable_passes=("lut-quantize-table",))(x)[0]
    assert np.array_equal(outs[True], want) and not np.array_equal(outs[False], want)


def test_python_api_reports_weights_kept_float(tmp_path, caplog):
    """lutc.compile warns (LutcWarning) for each weight kept float although a format was asked
    for — what `lutc compile` prints as `note:` lines — logs each quantized layer at INFO, and
    removes its temporary model directory with the returned model."""
    import gc
    import logging
    import warnings

    import lutc

    path = tmp_path / "m.onnx"
    rng = np.random.default_rng(8)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("MatMul", ["h", "v"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 6])],
        [numpy_helper.from_array(rng.standard_normal((64, 10)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal((10, 6)).astype(np.float32), "v")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    before = set(Path(tempfile.gettempdir()).glob("lutc-*"))
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, "lutc"):
        warnings.simplefilter("always")
        model = lutc.compile(str(path), weights="w4g32")
    kept = [str(w.message) for w in caught if issubclass(w.category, lutc.LutcWarning)]
    assert kept == ["v: kept float, its K = 10 input features (for 6 outputs) are not a "
                    "multiple of 4"]
    assert any(r.getMessage().startswith("quantized w: relative weight error") for r in caplog.records)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    assert model(x)[0].shape == (4, 6)
    created = set(Path(tempfile.gettempdir()).glob("lutc-*")) - before
    assert len(created) == 1 and next(iter(created)).is_dir()
    del model
    gc.collect()
    assert not any(p.exists() for p in created)
