"""ONNX low-bit formats imported losslessly into lut.dequantize, checked against onnxruntime."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.interp.interpret import run_module

from .conftest import rel_max_abs
from .ir_contract import check_contract
from .onnx_models import mlp


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    sess = ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _ort_quantized(model: onnx.ModelProto, **config) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    quantizer = MatMulNBitsQuantizer(copy.deepcopy(model), algo_config=DefaultWeightOnlyQuantConfig(
        accuracy_level=0, **config))
    quantizer.process()
    return quantizer.model.model


def _check(model: onnx.ModelProto, k: int, dequantizes: int, fmt: str | None = None):
    x = np.random.default_rng(3).standard_normal((3, k)).astype(np.float32)
    im = import_onnx(model, {"x": (3, k)})
    check_contract(im.module)
    text = str(im.module)
    assert text.count("lut.dequantize") == dequantizes
    if fmt:
        assert fmt in text
    assert im.quantization_report == []  # the model's own format: nothing quantized by lutc
    err = rel_max_abs(run_module(im.module, im.weights, [x])[0], _ort(model, x))
    assert err <= 1e-3
    return err


@pytest.mark.parametrize("bits,sym,block,k", [
    (4, False, 16, 32), (4, True, 16, 32), (2, False, 16, 32), (2, True, 32, 64),
    (4, False, 16, 40),  # K not a multiple of the block: padded last block
])
def test_matmulnbits(bits, sym, block, k):
    model = _ort_quantized(mlp(k=k), bits=bits, block_size=block, is_symmetric=sym)
    assert model.graph.node[0].op_type == "MatMulNBits"
    fmt = f"<w{bits}, g{block}{'' if sym else ', zp'}>"
    _check(model, k, 1, fmt)


def test_matmulnbits_8bit_becomes_float_linear():
    model = _ort_quantized(mlp(), bits=8, block_size=16, is_symmetric=True)
    _check(model, 32, 0)


@pytest.mark.parametrize("sym", [False, True])
def test_blocked_dequantize_linear_int4(sym):
    from onnxruntime.quantization import QuantFormat

    model = _ort_quantized(mlp(), bits=4, block_size=16, is_symmetric=sym,
                           quant_format=QuantFormat.QDQ)
    assert model.graph.node[0].op_type == "DequantizeLinear"
    _check(model, 32, 1, "<w4, g16")


def _nbits_model(k, n, bits, block, codes, scales, zeros=None, bias=None):
    blocks = -(-k // block)
    padded = np.zeros((n, blocks * block), np.uint8)
    padded[:, :k] = codes
    per = 8 // bits
    packed = np.zeros((n, blocks * block // per), np.uint8)
    for i in range(per):
        packed |= padded[:, i::per] << (bits * i)
    inits = [numpy_helper.from_array(packed.reshape(n, blocks, -1), "w_Q4"),
             numpy_helper.from_array(scales.reshape(-1).astype(np.float32), "w_scales")]
    names = ["x", "w_Q4", "w_scales"]
    if zeros is not None:
        inits.append(numpy_helper.from_array(zeros.reshape(-1), "w_zp"))
        names.append("w_zp")
    if bias is not None:
        names += ["", ""] if zeros is not None else ["", "", ""]
        names = names[:5] + ["w_bias"]
        inits.append(numpy_helper.from_array(bias, "w_bias"))
    node = helper.make_node("MatMulNBits", names, ["y"], domain="com.microsoft", K=k, N=n,
                            bits=bits, block_size=block, name="proj")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [3, k])],
                              [helper.make_tensor_value_info("y", 1, [3, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                   helper.make_opsetid("com.microsoft", 1)])


def test_matmulnbits_float_zero_points_bias_negative_scales():
    rng = np.random.default_rng(5)
    k, n, block = 48, 8, 16
    codes = rng.integers(0, 16, (n, k)).astype(np.uint8)
    scales = rng.standard_normal((n, 3)).astype(np.float32)  # negative scales included
    zeros = (rng.random((n, 3)) * 15).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    model = _nbits_model(k, n, 4, block, codes, scales, zeros, bias)
    _check(model, k, 1, "<w4, g16, zp>")
    model = _nbits_model(k, n, 4, block, codes, scales)  # symmetric, implicit zero point 8
    _check(model, k, 1, "<w4, g16>")


def test_matmulnbits_k_not_multiple_of_4_names_the_node():
    rng = np.random.default_rng(6)
    model = _nbits_model(30, 8, 4, 16, rng.integers(0, 16, (8, 30)).astype(np.uint8),
                         rng.random((8, 2)).astype(np.float32))
    with pytest.raises(LutcError, match="proj.*multiple of 4"):
        import_onnx(model)


def test_dequantize_linear_per_channel_uint4_into_gemm():
    """UINT4 [N, K] weights, one scale and zero point per output row, used by Gemm(transB=1)."""
    rng = np.random.default_rng(7)
    k, n = 32, 12
    q = rng.integers(0, 16, (n, k))
    scale = rng.random(n).astype(np.float32)
    zp = rng.integers(0, 16, n)
    inits = [
        helper.make_tensor("w_q", TensorProto.UINT4, [n, k], q.reshape(-1).tolist()),
        numpy_helper.from_array(scale, "w_scale"),
        helper.make_tensor("w_zp", TensorProto.UINT4, [n], zp.tolist()),
        numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "b"),
    ]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], axis=0),
             helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [3, k])],
                              [helper.make_tensor_value_info("y", 1, [3, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    _check(model, k, 1, f"<w4, g{k}, zp>")


def test_float_ternary_weights_stay_ternary():
    """BitNet b1.58 weights exported as float {-s, 0, +s}: imported as ternary, exactly."""
    model = mlp()
    rng = np.random.default_rng(8)
    for init in model.graph.initializer:
        if init.name.endswith("weight"):
            shape = numpy_helper.to_array(init).shape
            w = rng.integers(-1, 2, shape).astype(np.float32) * np.float32(0.03)
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    err = _check(model, 32, 2, "<ternary, g32>")
    assert err < 1e-5
