"""Tiny Llama through ONNX (dynamo and classic exporters): float and MatMulNBits logits."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module

from .conftest import max_abs, rel_max_abs
from .ir_contract import check_contract
from .torch_models import token_ids


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    ids = token_ids().numpy()
    names = [i.name for i in model.graph.input]
    return {n: ids if n == "input_ids" else np.ones_like(ids) for n in names}


def _ort(model: onnx.ModelProto, feeds) -> np.ndarray:
    options = ort.SessionOptions()
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    sess = ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


@pytest.mark.parametrize("exporter", ["dynamo", "classic"])
def test_llama_float_logits_match_onnxruntime(llama_onnx, exporter):
    path = llama_onnx(exporter)
    model = onnx.load(str(path))
    feeds = _feeds(model)
    im = import_onnx(path)
    check_contract(im.module)
    assert [i.original_name for i in im.inputs] == list(feeds)
    out = run_module(im.module, im.weights, list(feeds.values()))[0]
    assert out.shape == (1, 16, 1000)
    assert max_abs(out, _ort(model, feeds)) <= 1e-4


def test_llama_dynamic_sequence_with_static_shape(llama_onnx):
    """A symbolic sequence length, fixed with `shapes` (the CLI's --shape) to 8 tokens."""
    path = llama_onnx("dynamo_dynamic")
    model = onnx.load(str(path))
    ids = token_ids(seq=8).numpy()
    im = import_onnx(path, {"input_ids": (1, 8)})
    check_contract(im.module)
    out = run_module(im.module, im.weights, [ids])[0]
    assert out.shape == (1, 8, 1000)
    assert max_abs(out, _ort(model, {"input_ids": ids})) <= 1e-4


@pytest.mark.parametrize("bits,sym", [(4, False), (2, True)])
def test_llama_matmulnbits_logits_match_onnxruntime(llama_onnx, bits, sym):
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(llama_onnx("dynamo")))
    quantizer = MatMulNBitsQuantizer(copy.deepcopy(model), algo_config=DefaultWeightOnlyQuantConfig(
        block_size=32, is_symmetric=sym, bits=bits, accuracy_level=0))
    quantizer.process()
    qmodel = quantizer.model.model
    n_nbits = sum(n.op_type == "MatMulNBits" for n in qmodel.graph.node)
    assert n_nbits == 15  # 7 linears per layer + lm_head
    im = import_onnx(qmodel)
    check_contract(im.module)
    assert str(im.module).count("lut.dequantize") == n_nbits
    feeds = _feeds(qmodel)
    out = run_module(im.module, im.weights, list(feeds.values()))[0]
    assert rel_max_abs(out, _ort(qmodel, feeds)) <= 1e-3
