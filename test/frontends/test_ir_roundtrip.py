"""Imported IR prints and parses back unchanged (the text the rest of the pipeline reads)."""

from __future__ import annotations

from xdsl.parser import Parser

from lutc.compiler.context import make_context
from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.frontends.quantize import WeightSpec


def _roundtrip(module) -> None:
    text = str(module)
    parsed = Parser(make_context(), text).parse_module()
    parsed.verify()
    assert str(parsed) == text


def test_llama_onnx_quantized_ir_reparses(llama_onnx):
    _roundtrip(import_onnx(llama_onnx("classic"), weights=WeightSpec.parse("w2g64")).module)


def test_llama_torch_ternary_ir_reparses(llama_program):
    _, ep, _ = llama_program
    _roundtrip(import_exported_program(ep, WeightSpec.parse("ternary")).module)
