"""The compile progress bar (compiler/progress.py): shown when asked, silent otherwise."""

from __future__ import annotations

import io
import sys

import pytest

from lutc.compiler.progress import CompileProgress


def _run(enabled, monkeypatch) -> tuple[str, list[str]]:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    said: list[str] = []
    with CompileProgress(2, enabled, said.append) as bar:
        bar.start("phase one")
        bar.start("phase two")
    return err.getvalue(), said


def test_bar_names_each_phase_when_enabled(monkeypatch):
    text, said = _run(True, monkeypatch)
    assert "lutc: phase one" in text and "lutc: phase two" in text
    assert [s.split(" in ")[0] for s in said] == ["phase one", "phase two"]


@pytest.mark.parametrize("enabled", [False, None])
def test_bar_is_silent_when_disabled_or_not_a_terminal(enabled, monkeypatch):
    text, said = _run(enabled, monkeypatch)  # a StringIO is not a terminal
    assert text == ""
    assert len(said) == 2  # the stats lines still reach `say`


def test_compile_model_shows_its_phases(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from lutc.compiler.api import compile_model

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    compile_model(path, tmp_path / "out", emit="c", out=lambda s: None, progress=True)
    text = err.getvalue()
    for phase in ("importing the model", "running the LUT passes", "emitting C"):
        assert f"lutc: {phase}" in text
