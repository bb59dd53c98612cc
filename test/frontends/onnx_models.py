"""Seeded ONNX model generators for the frontend tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(seed: int = 0, k: int = 32, hidden: int = 64, n: int = 48) -> onnx.ModelProto:
    """x[batch, K] -> MatMul -> Add -> Relu -> Gemm(transB) -> y[batch, N]."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((k, hidden)) / np.sqrt(k)).astype(np.float32)
    b1 = rng.standard_normal(hidden).astype(np.float32)
    w2 = (rng.standard_normal((n, hidden)) / np.sqrt(hidden)).astype(np.float32)
    b2 = rng.standard_normal(n).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "fc1.weight"], ["h"], name="fc1"),
            helper.make_node("Add", ["h", "fc1.bias"], ["h1"], name="fc1_bias"),
            helper.make_node("Relu", ["h1"], ["r"], name="relu"),
            helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], transB=1,
                             name="fc2"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(a, name) for a, name in
         [(w1, "fc1.weight"), (b1, "fc1.bias"), (w2, "fc2.weight"), (b2, "fc2.bias")]],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def with_weights(model: onnx.ModelProto, replace: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose named initializers are replaced (e.g. by dequantized weights)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in replace:
            init.CopyFrom(numpy_helper.from_array(replace[init.name].astype(np.float32),
                                                  init.name))
    return out
