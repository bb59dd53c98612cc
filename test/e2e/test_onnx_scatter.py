"""ONNX ScatterND with run-time indices (how torch's exporter writes a KV cache) through C,
against onnxruntime: one indexed dim and two, negative indices included."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from .conftest import LOSSLESS, rel_max_abs

DATA = (6, 3, 4)


def _scatter_model(q: int, count: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("ScatterND", ["data", "indices", "updates"], ["out"], name="write")],
        "scatter",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, list(DATA)),
         helper.make_tensor_value_info("indices", TensorProto.INT64, [count, q]),
         helper.make_tensor_value_info("updates", TensorProto.FLOAT,
                                       [count, *DATA[q:]])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(DATA))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("indices", [[[4], [-6]], [[5, 2], [0, -1], [3, 0]]],
                         ids=["one-dim", "two-dims"])
def test_scatter_nd_matches_onnxruntime(compiled, e2e_dir, indices):
    indices = np.array(indices, np.int64)
    count, q = indices.shape
    path = e2e_dir / f"scatter_nd_q{q}.onnx"
    onnx.save(_scatter_model(q, count), str(path))
    rng = np.random.default_rng(0)
    data = rng.standard_normal(DATA).astype(np.float32)
    updates = rng.standard_normal((count, *DATA[q:])).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"data": data, "indices": indices, "updates": updates})[0]
    model, _ = compiled(f"scatter_nd_q{q}", path, None, LOSSLESS)
    (got,) = model(data, indices, updates)
    assert rel_max_abs(got, want) == 0.0
