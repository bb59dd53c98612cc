"""The numpy twin of GraphBuilder: evaluates the same API on constants at import time.

Frontends translate a node once, against whichever builder fits its inputs: when every input
is a known numpy array (shape arithmetic, masks built from shapes, dequantization subgraphs)
`NumpyFolder` computes the result, so only real tensor math reaches the IR.
Arrays stay in lutc's element types: float32, int64, bool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lutc.compiler.frontends.graph_builder import canonical_array


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (ONNX Div, arith.divsi)."""
    q = np.abs(a) // np.maximum(np.abs(b), 1)
    return np.where((a < 0) != (b < 0), -q, q)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


class NumpyFolder:
    """Same method names and meanings as GraphBuilder, on numpy arrays."""

    _BINARY = {
        "add": np.add, "sub": np.subtract, "mul": np.multiply,
        "max": np.maximum, "min": np.minimum,
        "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor,
        "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
        "gt": np.greater, "ge": np.greater_equal,
    }
    _UNARY = {
        "neg": np.negative, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh,
        "cos": np.cos, "sin": np.sin, "abs": np.abs, "not": np.logical_not, "isnan": np.isnan,
        "rsqrt": lambda x: 1 / np.sqrt(x), "reciprocal": lambda x: 1 / x,
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "relu": lambda x: np.maximum(x, 0),
        "erf": _erf, "round": np.rint, "floor": np.floor,
        "softplus": lambda x: np.logaddexp(np.float32(0), x),
    }

    @staticmethod
    def _out(x) -> np.ndarray:
        return canonical_array(np.asarray(x))

    def binary(self, op: str, a, b) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        if op == "pow":
            return self.pow(a, b)
        if op == "div":
            if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
                return self._out(_int_div(a, b))
            return self._out(np.divide(a, b, dtype=np.float32))
        out = self._BINARY[op](a, b)
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(b.dtype, np.floating):
            if out.dtype != np.bool_:
                out = out.astype(np.float32)
        return self._out(out)

    def unary(self, op: str, x) -> np.ndarray:
        x = np.asarray(x)
        out = self._UNARY[op](x)
        if np.issubdtype(x.dtype, np.floating) and out.dtype != np.bool_:
            out = out.astype(np.float32)
        return self._out(out)

    def pow(self, a, b) -> np.ndarray:
        return self._out(np.power(np.asarray(a, np.float32), np.asarray(b, np.float32)))

    def where(self, cond, a, b) -> np.ndarray:
        return self._out(np.where(np.asarray(cond, bool), a, b))

    def cast(self, x, to) -> np.ndarray:
        x = np.asarray(x)
        to = np.dtype(to)
        if to == np.bool_:
            return x != 0
        if np.issubdtype(to, np.integer) and np.issubdtype(x.dtype, np.floating):
            return np.trunc(x).astype(np.int64)
        return self._out(x.astype(to))

    def broadcast_to(self, x, shape) -> np.ndarray:
        x = np.asarray(x)
        return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape))).copy()

    def reduce(self, x, axes, kind="sum", keepdims=False) -> np.ndarray:
        x = np.asarray(x)
        axes = tuple(sorted({a % x.ndim for a in axes})) if x.ndim else ()
        fn = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod,
              "any": np.any, "all": np.all}[kind]
        return self._out(fn(x, axis=axes, keepdims=keepdims))

    def softmax(self, x, axis) -> np.ndarray:
        x = np.asarray(x, np.float32)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return self._out(e / e.sum(axis=axis, keepdims=True))

    def cumsum(self, x, axis, exclusive=False, reverse=False) -> np.ndarray:
        x = np.asarray(x)
        if reverse:
            x = np.flip(x, axis)
        out = np.cumsum(x, axis=axis)
        if exclusive:
            out = out - x
        if reverse:
            out = np.flip(out, axis)
        return self._out(out)

    def reshape(self, x, shape) -> np.ndarray:
        return np.asarray(x).reshape(tuple(shape))

    def transpose(self, x, perm) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(np.asarray(x), perm))

    def slice(self, x, starts, sizes, strides=None) -> np.ndarray:
        strides = strides or [1] * len(starts)
        index = tuple(slice(o, o + (n - 1) * s + 1, s) if n else slice(o, o)
                      for o, n, s in zip(starts, sizes, strides))
        return np.asarray(x)[index].copy()

    def concat(self, xs: Sequence, axis) -> np.ndarray:
        return self._out(np.concatenate([np.asarray(x) for x in xs], axis=axis))

    def gather(self, data, indices, axis) -> np.ndarray:
        data, idx = np.asarray(data), np.asarray(indices).astype(np.int64)
        idx = np.where(idx < 0, idx + data.shape[axis], idx)
        return np.asarray(np.take(data, idx, axis=axis))

    def gather_elements(self, data, indices, axis) -> np.ndarray:
        data, idx = np.asarray(data), np.asarray(indices).astype(np.int64)
        idx = np.where(idx < 0, idx + data.shape[axis], idx)
        return np.asarray(np.take_along_axis(data, idx, axis=axis))

    def mod(self, a, b, fmod: bool) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        return self._out(np.fmod(a, b) if fmod or np.issubdtype(a.dtype, np.floating)
                         else np.mod(a, b))

    def gather_nd(self, data, indices) -> np.ndarray:
        data, idx = np.asarray(data), np.asarray(indices).astype(np.int64)
        q = idx.shape[-1]
        idx = np.where(idx < 0, idx + np.array(data.shape[:q]), idx)
        return np.asarray(data[tuple(np.moveaxis(idx, -1, 0))])

    def matmul(self, a, b) -> np.ndarray:
        return self._out(np.matmul(np.asarray(a, np.float32), np.asarray(b, np.float32)))
