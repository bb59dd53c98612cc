"""Repeated decoder layers compile to one shared C body (compiler/codegen/emit_c.py,
"Repeated layers"): a 4-layer tiny llama's model.c holds the layer body once, called once per
layer, and computes bit-identical logits to the same graph emitted inline (tags removed, no
outlining) and to its untagged ops outlined in chunks of OUTLINE_OPS."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lutc.compiler.codegen.build import build_library, emit_model  # noqa: E402
from lutc.compiler.codegen import emit_c  # noqa: E402
from lutc.compiler.codegen.emit_c import LAYER_ATTR  # noqa: E402
from lutc.compiler.llm.config import DecoderConfig  # noqa: E402
from lutc.compiler.llm.decoder_graph import DecoderGraph  # noqa: E402
from lutc.compiler.llm.model_source import load_source  # noqa: E402
from lutc.compiler.pipeline import PipelineOptions, run_pipeline  # noqa: E402
from lutc.compiler.frontends.quantize import WeightSpec  # noqa: E402
from lutc.runtime.model_loader import CompiledModel  # noqa: E402

LAYERS, CHUNK, CONTEXT, VOCAB = 4, 8, 64, 320


def compile_tiny(tmp_path, name: str, shared: bool, outline_ops: int | None = None,
                 monkeypatch=None):
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)).eval()
    src = load_source(model)
    imported = DecoderGraph(DecoderConfig.from_hf(src.config), src.tensors, CHUNK, CONTEXT,
                            WeightSpec.parse("w2g64")).build()
    run_pipeline(imported.module, PipelineOptions())
    if not shared:
        for op in imported.module.walk():
            op.attributes.pop(LAYER_ATTR, None)
    if outline_ops is not None:
        monkeypatch.setattr(emit_c, "OUTLINE_OPS", outline_ops)
    c_file = emit_model(imported, tmp_path / name, title="tiny llama")
    build_library(c_file)
    return c_file.read_text(), CompiledModel(tmp_path / name)


def run(model: CompiledModel) -> np.ndarray:
    """A prompt of 11 tokens (a full chunk, then 3 rows) and one decode step."""
    cache = np.zeros((LAYERS, 2, 2, CONTEXT, 16), np.float32)
    ids = np.random.default_rng(0).integers(0, VOCAB, 12)
    out = []
    for start, rows in ((0, 8), (8, 3), (11, 1)):
        tokens = np.zeros(CHUNK, np.int64)
        tokens[:rows] = ids[start:start + rows]
        positions = np.minimum(np.arange(start, start + CHUNK), CONTEXT - 1).astype(np.int64)
        (logits,) = model(tokens, positions, np.array([rows], np.int64), cache,
                          np.array([rows], np.int64), np.arange(CHUNK, dtype=np.int64))
        out.append(logits[:rows].copy())
    return np.concatenate(out)


def test_layer_body_is_emitted_once_with_identical_logits(tmp_path, monkeypatch):
    shared_c, shared = compile_tiny(tmp_path, "shared", shared=True)
    inline_c, inline = compile_tiny(tmp_path, "inline", shared=False, outline_ops=10**9,
                                    monkeypatch=monkeypatch)
    assert len(re.findall(r"^(?:LUTC_ISA_CLONES )?static void lutc_layer\d+\(", shared_c, re.M)) == 1
    calls = re.findall(r"^    lutc_layer0\(.*\);  /\* layer (\d+) \*/$", shared_c, re.M)
    assert calls == [str(i) for i in range(LAYERS)]
    assert shared_c.count("lutrt_attention_kv(") == 1
    assert inline_c.count("lutrt_attention_kv(") == LAYERS and "lutc_layer" not in inline_c
    a, b = run(shared), run(inline)
    assert np.isfinite(a).all()
    assert a.tobytes() == b.tobytes()


def test_untagged_ops_are_outlined_in_chunks(tmp_path, monkeypatch):
    """Without layer tags (an ONNX export of a decoder) the ops are cut into chunks of
    OUTLINE_OPS, each its own C function: the same logits, bit for bit, as all inline."""
    chunked_c, chunked = compile_tiny(tmp_path, "chunked", shared=False, outline_ops=40,
                                      monkeypatch=monkeypatch)
    inline_c, inline = compile_tiny(tmp_path, "inline", shared=False, outline_ops=10**9,
                                    monkeypatch=monkeypatch)
    calls = re.findall(r"^    lutc_layer\d+\(.*\);  /\* op chunk (\d+) \*/$", chunked_c, re.M)
    assert len(calls) >= 5 and [int(c) for c in calls] == sorted(set(int(c) for c in calls))
    assert "lutc_layer" not in inline_c
    a, b = run(chunked), run(inline)
    assert np.isfinite(a).all()
    assert a.tobytes() == b.tobytes()
