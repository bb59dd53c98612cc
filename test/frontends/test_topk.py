"""aten.topk / aten.sort and ONNX TopK (issue 11.17): values and indices against torch and
onnxruntime, through the interpreter and compiled C; ties (the lower index first, where torch
and onnxruntime agree), NaN, the attributes, and the one-line errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import lutc
from lutc.compiler.frontends.onnx_importer import import_onnx
from lutc.compiler.frontends.topk import topk_numpy
from lutc.compiler.frontends.torch_importer import import_exported_program
from lutc.compiler.interp.interpret import run_module
from lutc.runtime.errors import LutcError

from .ir_contract import check_contract

RNG = np.random.default_rng(17)


class TopK(torch.nn.Module):
    def __init__(self, k, dim=-1, largest=True, sorted=True):
        super().__init__()
        self.k, self.dim, self.largest, self.sorted = k, dim, largest, sorted

    def forward(self, x):
        v, i = torch.topk(x, self.k, dim=self.dim, largest=self.largest, sorted=self.sorted)
        return v * 2.0, i


def _ties(shape) -> np.ndarray:
    """Small integers as floats: many equal values on every row."""
    return RNG.integers(-2, 3, shape).astype(np.float32)


def _check_torch(module, x: np.ndarray, tmp_path=None):
    ep = torch.export.export(module, (torch.from_numpy(x),))
    want = [t.numpy() for t in module(torch.from_numpy(x))]
    im = import_exported_program(ep)
    check_contract(im.module)
    got = run_module(im.module, im.weights, [x])
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    if tmp_path is not None:
        got = lutc.compile(ep, outdir=tmp_path / "c")(x)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("k,dim,largest", [(2, -1, True), (3, -1, False), (1, 0, True),
                                           (4, 1, False), (5, -1, True)])
def test_torch_topk_interpreter(k, dim, largest):
    _check_torch(TopK(k, dim, largest), RNG.standard_normal((3, 5, 5)).astype(np.float32))


def test_torch_topk_c(tmp_path):
    _check_torch(TopK(2, 1, True), RNG.standard_normal((2, 7, 3)).astype(np.float32), tmp_path)


def test_torch_topk_ties_lower_index_first(tmp_path):
    """torch.topk on CPU does not keep equal values in index order (checked: torch 2.13 returns
    e.g. [7, 4, 3, 2] where the ONNX rule gives [3, 4, 7, 2]), so with ties lutc matches torch's
    values exactly and ONNX's rule for the indices: the lower index first."""
    x = _ties((6, 9))
    for largest in (True, False):
        ep = torch.export.export(TopK(4, largest=largest), (torch.from_numpy(x),))
        im = import_exported_program(ep)
        values, indices = run_module(im.module, im.weights, [x])
        want = torch.topk(torch.from_numpy(x), 4, largest=largest)
        np.testing.assert_array_equal(values, want.values.numpy() * 2)
        np.testing.assert_array_equal(indices, topk_numpy(x, 4, -1, largest)[1])
        order = np.argsort(-x if largest else x, axis=-1, kind="stable")[:, :4]
        np.testing.assert_array_equal(indices, order)
    got = lutc.compile(ep, outdir=tmp_path / "c")(x)
    np.testing.assert_array_equal(got[1], indices)


def test_torch_topk_nan_is_largest():
    x = np.array([[1.0, np.nan, 3.0, -1.0, np.nan]], np.float32)
    ep = torch.export.export(TopK(3), (torch.from_numpy(x),))
    im = import_exported_program(ep)
    values, indices = run_module(im.module, im.weights, [x])
    want = torch.topk(torch.from_numpy(x), 3)
    np.testing.assert_array_equal(indices, want.indices.numpy())
    np.testing.assert_array_equal(values, want.values.numpy() * 2)
    ep = torch.export.export(TopK(2, largest=False), (torch.from_numpy(x),))
    im = import_exported_program(ep)
    _, indices = run_module(im.module, im.weights, [x])
    np.testing.assert_array_equal(indices, [[3, 0]])


def test_torch_topk_unsorted_gives_the_same_set():
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    ep = torch.export.export(TopK(3, sorted=False), (torch.from_numpy(x),))
    im = import_exported_program(ep)
    _, indices = run_module(im.module, im.weights, [x])
    want = torch.topk(torch.from_numpy(x), 3, sorted=False).indices.numpy()
    np.testing.assert_array_equal(np.sort(indices, -1), np.sort(want, -1))


class Sort(torch.nn.Module):
    def forward(self, x):
        v, i = torch.sort(x, dim=0, descending=True, stable=True)
        return v, i, torch.argsort(x, dim=-1, stable=True)


def test_torch_sort_and_argsort_stable():
    _check_torch(Sort(), _ties((5, 6)))


# -- ONNX -----------------------------------------------------------------------------------


def _onnx_topk(shape, k, axis=-1, largest=1, sorted_=1, k_input=False):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    out_shape = [k if d == axis % len(shape) else s for d, s in enumerate(shape)] \
        if -len(shape) <= axis < len(shape) else shape
    outs = [helper.make_tensor_value_info("v", TensorProto.FLOAT, out_shape),
            helper.make_tensor_value_info("i", TensorProto.INT64, out_shape)]
    inits, inputs = [], [x]
    if k_input:
        inputs.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
    else:
        inits.append(numpy_helper.from_array(np.array([k], np.int64), "k"))
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, largest=largest,
                            sorted=sorted_)
    graph = helper.make_graph([node], "g", inputs, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("k,axis,largest", [(2, -1, 1), (3, 0, 0), (1, 1, 1), (6, 2, 0)])
def test_onnx_topk_vs_onnxruntime(k, axis, largest):
    model = _onnx_topk([4, 3, 6], k, axis, largest)
    x = _ties((4, 3, 6))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})
    im = import_onnx(model)
    check_contract(im.module)
    got = run_module(im.module, im.weights, [x])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # the import-time folding of a constant input agrees too
    folded = topk_numpy(x, k, axis, bool(largest))
    for g, w in zip(folded, want):
        np.testing.assert_array_equal(g, w)


def test_onnx_topk_c(tmp_path):
    model = _onnx_topk([3, 10], 4, -1, 1)
    x = _ties((3, 10))
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = lutc.compile(model, outdir=tmp_path / "c")(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_onnx_topk_errors_are_one_line():
    with pytest.raises(LutcError, match=r"TopK node .*K = 7 is out of range for axis 1 of size 6"):
        import_onnx(_onnx_topk([2, 6], 7))
    with pytest.raises(LutcError, match=r"TopK node .*TopK K must be a constant"):
        import_onnx(_onnx_topk([2, 6], 2, k_input=True))
    with pytest.raises(LutcError, match=r"TopK axis 2 is out of range"):
        import_onnx(_onnx_topk([2, 6], 2, axis=2))
