"""Tiny Llama through ONNX to C, compared with onnxruntime on the same file: onnxruntime's
MatMulNBits quantization (accuracy_level 0, so onnxruntime computes with the dequantized weights
in f32) imported losslessly as lut.dequantize, and a static-cache decode step."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ..frontends.torch_models import export_llama_onnx, token_ids
from .conftest import DEFAULT, LOSSLESS, nmse, rel_max_abs, report
from .llama_static_cache import (
    decode_inputs,
    eager_reference,
    export_onnx_decode,
    static_cache_llama,
)

# (bits, symmetric): the 4-bit asymmetric and the 2-bit symmetric flavours, block 32
FLAVOURS = [(4, False), (2, True)]


def _label(flavour) -> str:
    bits, sym = flavour
    return f"MatMulNBits w{bits}g32{'sym' if sym else ''}"


@pytest.fixture(scope="session")
def llama_nbits(e2e_dir):
    """flavour -> MatMulNBits-quantized tiny Llama (ModelProto), from one dynamo export."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(export_llama_onnx(e2e_dir / "llama.onnx", dynamo=True)))
    out = {}
    for bits, sym in FLAVOURS:
        quantizer = MatMulNBitsQuantizer(copy.deepcopy(model), algo_config=(
            DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=sym, bits=bits,
                                         accuracy_level=0)))
        quantizer.process()
        qmodel = quantizer.model.model
        assert sum(n.op_type == "MatMulNBits" for n in qmodel.graph.node) == 15
        path = e2e_dir / f"llama_nbits_w{bits}{'sym' if sym else ''}.onnx"
        onnx.save(qmodel, str(path))
        out[(bits, sym)] = path
    return out


def _onnxruntime(path, ids: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input_ids": ids})[0]


@pytest.mark.parametrize("flavour", FLAVOURS, ids=_label)
def test_llama_matmulnbits_matches_onnxruntime(compiled, llama_nbits, flavour):
    path = llama_nbits[flavour]
    ids = token_ids().numpy()
    want = _onnxruntime(path, ids)
    name = _label(flavour).replace(" ", "_")
    jobs = [(f"llama_onnx_{name}_{p}", path, None, pipeline)
            for p, pipeline in (("lossless", LOSSLESS), ("default", DEFAULT))]
    compiled.prefetch(jobs)
    (exact, secs), (fast, fast_secs) = compiled(*jobs[0]), compiled(*jobs[1])
    (got,) = exact(ids)
    assert got.shape == (1, 16, 1000)
    err = rel_max_abs(got, want)
    report("tiny Llama prefill 16", _label(flavour), "ONNX", "lossless",
           f"rel {err:.1e} vs onnxruntime", secs)
    assert err <= 1e-4
    (fast_got,) = fast(ids)
    e = nmse(fast_got, got)
    report("tiny Llama prefill 16", _label(flavour), "ONNX", "default",
           f"NMSE {e:.1e} vs lossless (rel {rel_max_abs(fast_got, want):.1e} vs onnxruntime)",
           fast_secs)
    assert e <= 2e-4  # issue 10's bound for the default pipeline


def test_llama_decode_step_through_onnx(compiled, e2e_dir):
    """The static-cache decode step exported to ONNX with the cache as inputs/outputs (the
    write is ScatterND), on a cache filled by the torch prefill, against onnxruntime."""
    model = static_cache_llama()
    path = e2e_dir / "llama_decode.onnx"
    names = export_onnx_decode(model, path)
    ref = eager_reference(model, names)
    feeds = dict(zip(["input_ids", "cache_position", *names], [*decode_inputs(),
                                                              *ref.prefill_state]))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    decode, secs = compiled("llama_onnx_decode_f32", path, None, LOSSLESS)
    assert [s["name"] for s in decode.inputs] == list(feeds)
    got = decode(*feeds.values())
    err = max(rel_max_abs(g, w) for g, w in zip(got, want))
    eager_err = max(rel_max_abs(g, w) for g, w in zip(got, [ref.decode_logits,
                                                           *ref.decode_state]))
    report("tiny Llama decode @16", None, "ONNX", "lossless",
           f"rel {err:.1e} vs onnxruntime, {eager_err:.1e} vs eager (logits, cache)", secs)
    assert err <= 1e-4 and eager_err <= 1e-4
