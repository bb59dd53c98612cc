"""Ordinary misuse of `lutc run`, `lutc compile` and `lutc-opt` is one error line and exit 1:
`lutc: error: ...`, or MLIR's `FILE:LINE:COL: error: ...` from lutc-opt; never a traceback."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from test.hostile.conftest import LUTC_OPT, X_SHAPE, assert_one_line_error, run_lutc

# -- lutc run -------------------------------------------------------------------------------


def _bad_npy(path, kind):
    if kind == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif kind == "corrupt":
        path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    elif kind == "truncated":
        np.save(path, np.ones(X_SHAPE, np.float32))
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "npz":
        with open(path, "wb") as f:
            np.savez(f, a=np.ones(2))


@pytest.mark.parametrize("kind", ["object", "pickle", "corrupt", "truncated", "npz"])
def test_run_bad_npy(compiled_mlp, tmp_path, kind):
    path = tmp_path / "x.npy"
    _bad_npy(path, kind)
    assert_one_line_error(run_lutc("run", compiled_mlp, "--input", path), "x.npy")


def test_run_output_into_missing_folder(compiled_mlp, x_npy, tmp_path):
    assert_one_line_error(run_lutc("run", compiled_mlp, "--input", x_npy, "--output",
                                   tmp_path / "missing" / "y.npy"), "missing", "does not exist")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("threads", ["-5", "100000"])
def test_run_thread_count(compiled_mlp, x_npy, threads):
    assert_one_line_error(run_lutc("run", compiled_mlp, "--input", x_npy, "--threads", threads),
                          "thread count", threads)


# -- lutc compile: pass names and options -------------------------------------------------

@pytest.mark.parametrize("option,fragment", [
    ("lut-tile{n=abc}", "abc"),                  # a value of the wrong type
    ("lut-tile{bogus=1}", "bogus"),              # an unknown key
    ("lut-tile{n=128", "braces"),                # unbalanced braces
    ("lut-tile{n=128}}", "braces"),
    ("lut-tile", "braces"),
    ("lut-nope{n=1}", "no such pass"),           # an unknown pass
    ("lut-tile{n=-5}", "n must be"),             # a value the pass rejects
    ("lut-quantize-table{scale-group=0}", "scale-group"),
])
def test_compile_bad_pass_option(mlp_path, tmp_path, option, fragment):
    proc = run_lutc("compile", mlp_path, "-o", tmp_path / "o", "--weights", "w2g16",
                    "--emit", "c", "--pass-option", option)
    assert_one_line_error(proc, fragment)


def test_compile_unknown_print_ir_after(mlp_path, tmp_path):
    proc = run_lutc("compile", mlp_path, "-o", tmp_path / "o", "--weights", "w2g16",
                    "--emit", "c", "--print-ir-after", "lut-nope")
    assert_one_line_error(proc, "--print-ir-after lut-nope", "no such pass")


# -- lutc-opt: every diagnostic -------------------------------------------------------------

GOOD = """func.func @f(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  func.return %x : tensor<2x8xf32>
}
"""
BAD_MMA = """func.func @codes_shape(%t: !lut.table<1x64x16xf32>, %sums: tensor<1x4xf32>, %c: tensor<2x64x7xi8>, %s: tensor<64x4xf32>) -> tensor<1x64xf32> {
  %o = lut.mma %t, %sums, %c, %s as <w2, g64> : !lut.table<1x64x16xf32>, tensor<1x4xf32>, tensor<2x64x7xi8>, tensor<64x4xf32> -> tensor<1x64xf32>
  func.return %o : tensor<1x64xf32>
}
"""
OPT_CASES = {
    # name: (file text, extra args, expected line pattern)
    "syntax": ("func.func @f( {\n", [], r"^in\.mlir:1:15: error: Expected argument or type$"),
    "unknown_op": ("func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
                   "  %y = foo.bar %x : tensor<2xf32>\n  func.return %y : tensor<2xf32>\n}\n",
                   [], r"^in\.mlir:2:\d+: error: Operation foo\.bar is not registered$"),
    "unknown_lut_op": ('func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n'
                       '  %y = "lut.nope"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n'
                       '  func.return %y : tensor<2xf32>\n}\n',
                       [], r"^in\.mlir:2:\d+: error: .*lut\.nope"),
    "unknown_type": ("func.func @f(%x: !lut.bogus<3>) {\n  func.return\n}\n", [],
                     r"^in\.mlir:1:\d+: error: .*lut\.bogus"),
    "verifier_func": ("func.func @f(%x: tensor<2xf32>) -> tensor<3xf32> {\n"
                      "  func.return %x : tensor<2xf32>\n}\n", [],
                      r"^in\.mlir: error: 'func\.return' op "),
    "verifier_lut": (BAD_MMA, [], r"^in\.mlir: error: 'lut\.mma' op expects codes of shape"),
    "verifier_before_pass": (BAD_MMA, ["-p", "lut-lower-mpgemm"], r"^in\.mlir: error: 'lut\.mma'"),
    "not_utf8": (b"\xff\xfe\x00garbage", [], r"^in\.mlir: error: not UTF-8"),
    "bad_pass_name": (GOOD, ["-p", "lut-nope"], r"^lutc-opt: error: -p 'lut-nope': .*lut-nope"),
    "bad_pass_value": (GOOD, ["-p", "lut-tile{n=abc}"], r"^lutc-opt: error: .*abc"),
    "bad_pass_key": (GOOD, ["-p", "lut-tile{bogus=1}"], r"^lutc-opt: error: .*bogus"),
    "unbalanced": (GOOD, ["-p", "lut-tile{n=1"], r"^lutc-opt: error: .*Malformed"),
    "missing_input": (None, [], r"^lutc-opt: error: cannot read 'in\.mlir'"),
    "unwritable_output": (GOOD, ["-o", "missing/out.mlir"], r"^lutc-opt: error: cannot write"),
}


@pytest.mark.parametrize("case", sorted(OPT_CASES))
def test_lutc_opt_diagnostic(tmp_path, case):
    text, extra, pattern = OPT_CASES[case]
    if text is not None:
        data = text.encode() if isinstance(text, str) else text
        (tmp_path / "in.mlir").write_bytes(data)
    proc = run_lutc("in.mlir", *extra, cmd=LUTC_OPT, cwd=tmp_path)
    line = assert_one_line_error(proc, prefix="error: ")
    assert re.search(pattern, line), line


def test_lutc_opt_still_works(tmp_path):
    (tmp_path / "in.mlir").write_text(GOOD)
    proc = run_lutc("in.mlir", "-p", "lut-lower-mpgemm", cmd=LUTC_OPT, cwd=tmp_path)
    assert proc.returncode == 0 and "func.func @f" in proc.stdout, proc.stderr


@pytest.mark.parametrize("name", ["in.txt", "in", "in.gguf"])
def test_lutc_opt_reads_any_file_name_as_mlir(tmp_path, name):
    """Like mlir-opt: the file's name does not pick the parser (xDSL refused 'in.txt' and
    names without an extension with a traceback)."""
    (tmp_path / name).write_text(GOOD)
    proc = run_lutc(name, "-p", "lut-lower-mpgemm", cmd=LUTC_OPT, cwd=tmp_path)
    assert proc.returncode == 0 and "func.func @f" in proc.stdout, proc.stderr
    (tmp_path / name).write_text("func.func @f(\n")
    line = assert_one_line_error(run_lutc(name, cmd=LUTC_OPT, cwd=tmp_path), prefix="error: ")
    assert line.startswith(f"{name}:2:"), line  # MLIR's FILE:LINE:COL: the parse error


# -- command-line usage errors: one line, exit 1, naming the option ------------------------

@pytest.mark.parametrize("argv,fragments", [
    (["compile", "m.onnx"], ["lutc compile: error:", "-o/--output"]),           # required option
    (["compile", "m.onnx", "-o", "o", "--shape", "x=1x"], ["--shape", "x=1x"]),
    (["compile", "m.onnx", "-o", "o", "--emit", "exe"], ["--emit", "exe"]),
    (["compile", "m.onnx", "-o", "o", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["generate", "m.gguf", "-p", "hi", "--max-context", "0"], ["--max-context", ">= 1", "0"]),
    (["generate", "m.gguf", "-p", "hi", "--max-context", "-5"], ["--max-context", ">= 1"]),
    (["generate", "m.gguf", "-p", "hi", "--chunk", "0"], ["--chunk", ">= 1"]),
    (["generate", "m.gguf", "-p", "hi", "--threads", "-1"], ["--threads", ">= 0"]),
    (["generate", "m.gguf", "-p", "hi", "-n", "-1"], ["-n", ">= 0"]),
    (["generate", "m.gguf", "-p", "hi", "--temperature", "nan"], ["--temperature", ">= 0"]),
    (["generate", "m.gguf", "-p", "hi", "--top-k", "many"], ["--top-k", "integer", "many"]),
    (["perplexity", "m.gguf", "--text", "t.txt", "--context", "1"], ["--context", ">= 2"]),
    (["demo", "--threads", "-2"], ["--threads", ">= 0"]),
    (["nope"], ["invalid choice", "nope"]),
])
def test_usage_errors_are_one_line(tmp_path, argv, fragments):
    """argparse's default is the whole usage text and exit 2 (lutc's status for a bug); a bad
    option is bad input: one line naming it, exit 1, before any file is read."""
    line = assert_one_line_error(run_lutc(*argv, cwd=tmp_path), *fragments, prefix="lutc")
    assert "--help lists the options" in line, line


@pytest.mark.parametrize("argv,fragment", [
    (["--bogus", "in.mlir"], "unrecognized arguments: --bogus"),
    (["-f", "bogus", "in.mlir"], "-f/--frontend"),
])
def test_lutc_opt_usage_errors_are_one_line(tmp_path, argv, fragment):
    (tmp_path / "in.mlir").write_text(GOOD)
    assert_one_line_error(run_lutc(*argv, cmd=LUTC_OPT, cwd=tmp_path), fragment,
                          prefix="lutc-opt: error: ")
