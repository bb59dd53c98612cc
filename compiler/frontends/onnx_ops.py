"""ONNX operators -> GraphBuilder calls (or NumpyFolder calls when every input is constant).

Each handler takes the node's context and its input values (SSA values, numpy arrays, or None
for an omitted optional input) and returns one value per node output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.ir import SSAValue

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.constant_folding import NumpyFolder
from lutc.compiler.frontends.conv1d import conv1d_output_length, depthwise_conv1d
from lutc.compiler.frontends.scatter import scatter_along
from lutc.compiler.frontends.topk import topk, topk_numpy
from lutc.compiler.frontends.graph_builder import (
    GraphBuilder,
    canonical_array,
    check_tensor_size,
    elem_of,
    storage_dtype,
    shape_of,
)
from lutc.compiler.frontends.linear_policy import low_bit_weight, note_float_product, \
    shared_batch_weight, swap_last_two
from lutc.compiler.frontends.quantize import QuantizedWeight, WeightSpec

Value = SSAValue | np.ndarray
Handler = Callable[["NodeContext", list], list]

HANDLERS: dict[tuple[str, str], Handler] = {}
# ops evaluated only on constants (their results are shape arithmetic)
CONSTANT_ONLY: set[tuple[str, str]] = set()
FOLDER = NumpyFolder()


def handles(*op_types: str, domain: str = "", constant_only: bool = False):
    def register(fn: Handler) -> Handler:
        for op in op_types:
            HANDLERS[(domain, op)] = fn
            if constant_only:
                CONSTANT_ONLY.add((domain, op))
        return fn
    return register


def onnx_dtype(elem_type: int) -> np.dtype:
    """lutc's numpy dtype for an ONNX element type (floats -> f32, ints -> i64)."""
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
    except (KeyError, ValueError):
        raise LutcError(f"ONNX element type {elem_type} is not supported") from None
    if dtype == np.bool_:
        return np.dtype(np.bool_)
    if np.issubdtype(dtype, np.integer) or dtype.name.startswith(("int", "uint")):  # int4 too
        return np.dtype(np.int64)
    if np.issubdtype(dtype, np.floating) or dtype.kind == "V":  # bfloat16, float8
        return np.dtype(np.float32)
    raise LutcError(f"ONNX element type {onnx.helper.tensor_dtype_to_string(elem_type)} "
                    "is not supported")


@dataclass
class LosslessWeight:
    """A constant that is the exact dequantization of low-bit codes (from a quantized format).

    `qw` describes the weight as W[N, K]; `k_axis` is the axis of the constant array that is K
    (0 when the array is a MatMul B [K, N], 1 when it is [N, K]).
    """

    array: np.ndarray
    qw: QuantizedWeight
    k_axis: int


@dataclass
class ImportState:
    """Import-wide facts shared by all nodes."""

    gb: GraphBuilder
    opset: int
    spec: WeightSpec | None
    report: list[tuple[str, float]] = field(default_factory=list)
    float_notes: list[str] = field(default_factory=list)  # linear_policy.kept_float
    initializer_types: dict[str, int] = field(default_factory=dict)  # name -> ONNX elem type
    # by (id(array), k_axis)
    lossless: dict[tuple[int, int], LosslessWeight] = field(default_factory=dict)

    def lossless_weight(self, value, k_axis: int) -> QuantizedWeight | None:
        if not isinstance(value, np.ndarray):
            return None
        entry = self.lossless.get((id(value), k_axis))
        if entry is not None and entry.array is value:
            return entry.qw
        return None


class NodeContext:
    """What a handler sees: the node, its attributes, the builders and the import options."""

    def __init__(self, state: ImportState, node: onnx.NodeProto, name: str):
        self.state = state
        self.gb = state.gb
        self.node = node
        self.name = name
        self.opset = state.opset
        self.spec = state.spec
        self.report = state.report
        self._attrs = {a.name: a for a in node.attribute}

    def attr(self, name: str, default=None):
        if name not in self._attrs:
            return default
        value = onnx.helper.get_attribute_value(self._attrs[name])
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        return value

    def error(self, message: str) -> LutcError:
        return LutcError(message, f"{self.node.op_type} node '{self.name}'")

    def builder(self, *values) -> GraphBuilder | NumpyFolder:
        """NumpyFolder when every given value is a constant, else the IR builder."""
        if all(v is None or isinstance(v, np.ndarray) for v in values):
            return FOLDER
        return self.gb

    def const(self, value, what: str) -> np.ndarray:
        """A value that must be known at import time (shapes, axes, indices of slices)."""
        if not isinstance(value, np.ndarray):
            raise self.error(f"{what} must be a constant (computed from shapes), but it depends "
                             "on the model inputs")
        return value

    def ints(self, value, what: str) -> list[int]:
        return [int(v) for v in self.const(value, what).reshape(-1)]

    def tensor(self, value: Value, hint: str = "const") -> SSAValue:
        return self.gb.value(value, hint)

    def input_name(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else ""


def shape(x: Value) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, np.ndarray) else shape_of(x)


def dtype(x: Value) -> np.dtype:
    return x.dtype if isinstance(x, np.ndarray) else storage_dtype(elem_of(x))


def _axes(ctx: NodeContext, ins: list, index: int, rank: int, default=None) -> list[int] | None:
    """Axes from input `index` (newer opsets) or the `axes` attribute, normalized."""
    if len(ins) > index and ins[index] is not None:
        axes = ctx.ints(ins[index], "axes")
    else:
        axes = ctx.attr("axes", default)
    if axes is None:
        return None
    return [int(a) % rank if rank else 0 for a in axes]


# -- elementwise ----------------------------------------------------------------------------

_BINARY_OPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
               "And": "and", "Or": "or", "Xor": "xor", "Equal": "eq", "Less": "lt",
               "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge"}


@handles(*_BINARY_OPS)
def _binary(ctx: NodeContext, ins: list) -> list:
    a, b = ins
    if dtype(a) != dtype(b) and ctx.node.op_type != "Pow":
        # ONNX requires equal types; exported graphs rely on that, so align to the float side
        target = np.float32 if np.float32 in (dtype(a), dtype(b)) else dtype(a)
        a, b = ctx.builder(a).cast(a, target), ctx.builder(b).cast(b, target)
    if ctx.node.op_type == "Pow" and dtype(a) != np.float32:
        raise ctx.error("integer Pow is not supported")
    return [ctx.builder(a, b).binary(_BINARY_OPS[ctx.node.op_type], a, b)]


@handles("Max", "Min", "Sum", "Mean")
def _variadic(ctx: NodeContext, ins: list) -> list:
    op = {"Max": "max", "Min": "min", "Sum": "add", "Mean": "add"}[ctx.node.op_type]
    acc = ins[0]
    for x in ins[1:]:
        acc = ctx.builder(acc, x).binary(op, acc, x)
    if ctx.node.op_type == "Mean":
        acc = ctx.builder(acc).binary("mul", acc, np.float32(1.0 / len(ins)))
    return [acc]


_UNARY_OPS = {"Sqrt": "sqrt", "Reciprocal": "reciprocal", "Neg": "neg", "Exp": "exp",
              "Log": "log", "Tanh": "tanh", "Erf": "erf", "Cos": "cos", "Sin": "sin",
              "Sigmoid": "sigmoid", "Relu": "relu", "Abs": "abs", "Not": "not",
              "IsNaN": "isnan", "Softplus": "softplus"}


@handles(*_UNARY_OPS)
def _unary(ctx: NodeContext, ins: list) -> list:
    return [ctx.builder(ins[0]).unary(_UNARY_OPS[ctx.node.op_type], ins[0])]


@handles("Where")
def _where(ctx: NodeContext, ins: list) -> list:
    return [ctx.builder(*ins).where(*ins)]


@handles("Gelu")
def _gelu(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    b = ctx.builder(x)
    if ctx.attr("approximate", "none") == "tanh":
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = b.binary("mul", b.binary("mul", x, x), x)
        inner = b.binary("mul", b.binary("add", x, b.binary("mul", x3, np.float32(0.044715))),
                         np.float32(math.sqrt(2 / math.pi)))
        t = b.unary("tanh", inner)
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        t = b.unary("erf", b.binary("mul", x, np.float32(1 / math.sqrt(2))))
    return [b.binary("mul", b.binary("mul", x, np.float32(0.5)),
                     b.binary("add", t, np.float32(1.0)))]


@handles("Cast")
def _cast(ctx: NodeContext, ins: list) -> list:
    return [ctx.builder(ins[0]).cast(ins[0], onnx_dtype(ctx.attr("to")))]


@handles("CastLike")
def _cast_like(ctx: NodeContext, ins: list) -> list:
    return [ctx.builder(ins[0]).cast(ins[0], dtype(ins[1]))]


@handles("Identity", "Dropout")
def _identity(ctx: NodeContext, ins: list) -> list:
    return [ins[0]] + [None] * (len(ctx.node.output) - 1)


# -- reductions and normalizations ----------------------------------------------------------

_REDUCE_KIND = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max",
                "ReduceMin": "min", "ReduceProd": "prod"}


@handles(*_REDUCE_KIND)
def _reduce(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    rank = len(shape(x))
    axes = _axes(ctx, ins, 1, rank)
    if not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(rank))
    keep = bool(ctx.attr("keepdims", 1))
    return [ctx.builder(x).reduce(x, axes, _REDUCE_KIND[ctx.node.op_type], keep)]


@handles("Softmax", "LogSoftmax")
def _softmax(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    b = ctx.builder(x)
    xs = shape(x)
    if ctx.opset < 13:  # softmax over the flattened trailing dims
        axis = ctx.attr("axis", 1) % len(xs)
        flat = b.reshape(x, (math.prod(xs[:axis]), math.prod(xs[axis:])))
        out = b.reshape(b.softmax(flat, 1), xs)
    else:
        out = b.softmax(x, ctx.attr("axis", -1) % len(xs))
    if ctx.node.op_type == "LogSoftmax":
        out = b.unary("log", out)
    return [out]


def _normalize(b, x, axes: list[int], eps: float, center: bool):
    """(x - mean) / sqrt(var + eps) over `axes` (no centering for RMS norm)."""
    if center:
        x = b.binary("sub", x, b.reduce(x, axes, "mean", keepdims=True))
    var = b.reduce(b.binary("mul", x, x), axes, "mean", keepdims=True)
    inv = b.unary("rsqrt", b.binary("add", var, np.float32(eps)))
    return b.binary("mul", x, inv)


@handles("LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization")
@handles("SimplifiedLayerNormalization", domain="com.microsoft")
def _layer_norm(ctx: NodeContext, ins: list) -> list:
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    rank = len(shape(x))
    axis = ctx.attr("axis", -1) % rank
    eps = ctx.attr("epsilon", 1e-5)
    if any(o for o in ctx.node.output[1:]):
        raise ctx.error("the mean / inverse-std-dev outputs are not supported")
    center = ctx.node.op_type == "LayerNormalization"
    b = ctx.builder(x)
    y = _normalize(b, x, list(range(axis, rank)), eps, center)
    y = b.binary("mul", y, ctx.tensor(scale, ctx.input_name(1)) if b is ctx.gb else scale)
    if bias is not None:
        y = b.binary("add", y, ctx.tensor(bias, ctx.input_name(2)) if b is ctx.gb else bias)
    return [y] + [None] * (len(ctx.node.output) - 1)


@handles("TopK")
def _topk(ctx: NodeContext, ins: list) -> list:
    """TopK(X, K[1]) -> (Values, Indices) along `axis` (default -1), `largest` (default 1),
    `sorted` (default 1; an unsorted request gets the sorted order). K must be a constant.
    Equal values: the lower index first, as the ONNX spec says; NaN is larger than any number
    (see topk.py)."""
    x = ins[0]
    xs = shape(x)
    if not xs:
        raise ctx.error("TopK of a 0-d tensor: the input needs at least one dimension")
    ks = ctx.ints(ins[1], "TopK K")
    if len(ks) != 1:
        raise ctx.error(f"TopK K must hold one value, got {len(ks)}")
    axis = int(ctx.attr("axis", -1))
    if not -len(xs) <= axis < len(xs):
        raise ctx.error(f"TopK axis {axis} is out of range for an input of rank {len(xs)}")
    axis %= len(xs)
    k = ks[0]
    if not 0 <= k <= xs[axis]:
        raise ctx.error(f"TopK K = {k} is out of range for axis {axis} of size {xs[axis]}")
    largest = bool(ctx.attr("largest", 1))
    if isinstance(x, np.ndarray):
        return list(topk_numpy(x, k, axis, largest))
    return list(topk(ctx.gb, x, k, axis, largest))


@handles("Conv")
def _conv(ctx: NodeContext, ins: list) -> list:
    """Depthwise 1-D Conv (conv1d.py): X [N, C, L], W [C*m, 1, K], group == C, optional B;
    pads [begin, end], strides, dilations, auto_pad NOTSET / VALID / SAME_UPPER / SAME_LOWER.
    Other convolutions (2-D and up, group != C) are one-line errors."""
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    xs, ws = shape(x), shape(w)
    if len(xs) != 3 or len(ws) != 3:
        raise ctx.error(f"only 1-D Conv is supported; the input has shape {list(xs)} and the "
                        f"weight {list(ws)}")
    c, k = xs[1], ws[2]
    group = int(ctx.attr("group", 1))
    if group != c or ws[1] != 1 or ws[0] % c:
        raise ctx.error(f"only depthwise 1-D Conv is supported (group == C, W [C * m, 1, K]); "
                        f"got group={group}, X {list(xs)}, W {list(ws)}")
    kernel = ctx.attr("kernel_shape")
    if kernel is not None and list(kernel) != [k]:
        raise ctx.error(f"kernel_shape {list(kernel)} does not match the weight's K = {k}")
    (stride,) = ctx.attr("strides", [1])
    (dilation,) = ctx.attr("dilations", [1])
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        total = max((-(-xs[2] // stride) - 1) * stride + dilation * (k - 1) + 1 - xs[2], 0)
        small, big = total // 2, total - total // 2
        pads = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        pads = (0, 0)
    elif auto_pad == "NOTSET":
        pads = tuple(int(p) for p in ctx.attr("pads", [0, 0]))
    else:
        raise ctx.error(f"auto_pad '{auto_pad}' is not one of NOTSET, VALID, SAME_UPPER, "
                        "SAME_LOWER")
    if stride < 1 or dilation < 1 or len(pads) != 2 or min(pads) < 0:
        raise ctx.error(f"Conv strides [{stride}], dilations [{dilation}] and pads {list(pads)} "
                        "must be positive (pads: two values >= 0)")
    if conv1d_output_length(xs[2], k, pads, stride, dilation) < 1:
        raise ctx.error(f"Conv input of length {xs[2]} is shorter than the dilated kernel "
                        f"({dilation * (k - 1) + 1}) plus padding")
    if isinstance(x, np.ndarray):
        x = ctx.gb.value(x, "conv.input")  # an all-constant conv is rare: compute it at run time
    return [depthwise_conv1d(ctx.gb, ctx.tensor(x), w, bias, pads, stride, dilation)]


@handles("CumSum")
def _cumsum(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    axis = ctx.ints(ins[1], "CumSum axis")[0]
    return [ctx.builder(x).cumsum(x, axis, bool(ctx.attr("exclusive", 0)),
                                  bool(ctx.attr("reverse", 0)))]


# -- matrix products ------------------------------------------------------------------------


def linear_layer(ctx: NodeContext, x: Value, w_nk: np.ndarray, bias, hint: str):
    """x @ W^T with W[N, K] constant, low-bit or float by linear_policy (the callers have
    already tried the model's own lossless codes)."""
    gb = ctx.gb
    x = ctx.tensor(x)
    if bias is not None and isinstance(bias, np.ndarray):
        bias = gb.value(canonical_array(bias), hint + ".bias")
    qw = low_bit_weight(w_nk, ctx.spec, hint, ctx.report, ctx.state.float_notes, ctx.error)
    if qw is None:
        return gb.float_linear(x, w_nk, bias, hint + ".weight")
    return gb.quantized_linear(x, qw, bias, hint, ctx.name)


def _left_linear(ctx: NodeContext, w_mk: np.ndarray, x, perm: list[int],
                 transposed: bool = False):
    """W @ x with W[M, K] constant = (x^T @ W^T)^T: a linear layer with weight W on x^T
    (`perm` swaps x's last two dims; `transposed`: x is given as x^T already)."""
    gb = ctx.gb
    xt = x if transposed else gb.transpose(ctx.tensor(x), perm)
    w = np.ascontiguousarray(w_mk.astype(np.float32))
    return gb.transpose(linear_layer(ctx, xt, w, None, ctx.input_name(0) or ctx.name), perm)


@handles("MatMul")
def _matmul(ctx: NodeContext, ins: list) -> list:
    a, b = ins
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return [FOLDER.matmul(a, b)]
    if isinstance(b, np.ndarray) and len(shape(a)) >= 2:
        # 3-D and up: one matrix repeated over the batch (bmm(x, expand(W^T)))
        w = b if b.ndim == 2 else shared_batch_weight(shape(a), b)
        if w is not None:
            hint = ctx.input_name(1) or ctx.name
            qw = ctx.state.lossless_weight(b, k_axis=0) if b.ndim == 2 else None
            if qw is not None:
                return [ctx.gb.quantized_linear(ctx.tensor(a), qw, None, hint, ctx.name)]
            return [linear_layer(ctx, a, np.ascontiguousarray(w.T.astype(np.float32)), None, hint)]
    if isinstance(a, np.ndarray) and a.ndim == 2 and len(shape(b)) >= 2:
        return [_left_linear(ctx, a, b, swap_last_two(len(shape(b))))]
    note_float_product(a, b, (ctx.input_name(0) or ctx.name, ctx.input_name(1) or ctx.name),
                       ctx.spec, ctx.state.float_notes)
    return [ctx.gb.matmul(a, b)]


@handles("Gemm")
def _gemm(ctx: NodeContext, ins: list) -> list:
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    if ctx.attr("transA", 0):
        a = ctx.builder(a).transpose(a, [1, 0])
    if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):  # A constant: W @ x
        w = np.ascontiguousarray(a.astype(np.float32) * np.float32(alpha))
        xt = b if ctx.attr("transB", 0) else ctx.gb.transpose(b, [1, 0])
        y = _left_linear(ctx, w, xt, [1, 0], transposed=True)
        if c is None:
            return [y]
        return [ctx.gb.binary("add", y, ctx.gb.binary("mul", c, np.float32(beta))
                              if beta != 1.0 else c)]
    if isinstance(b, np.ndarray) and not isinstance(a, np.ndarray):
        trans_b = ctx.attr("transB", 0)
        if c is not None and beta != 1.0:
            c = ctx.builder(c).binary("mul", c, np.float32(beta))
        hint = ctx.input_name(1) or ctx.name
        qw = ctx.state.lossless_weight(b, k_axis=1 if trans_b else 0)
        if qw is not None and alpha == 1.0:
            if isinstance(c, np.ndarray):
                c = ctx.gb.value(c, hint + ".bias")
            return [ctx.gb.quantized_linear(ctx.tensor(a), qw, c, hint, ctx.name)]
        w_nk = b if trans_b else b.T
        w_nk = np.ascontiguousarray(w_nk.astype(np.float32) * np.float32(alpha))
        return [linear_layer(ctx, a, w_nk, c, hint)]
    bld = ctx.builder(a, b, c)
    if ctx.attr("transB", 0):
        b = bld.transpose(b, [1, 0])
    y = bld.matmul(a, b)
    if alpha != 1.0:
        y = bld.binary("mul", y, np.float32(alpha))
    if c is not None:
        y = bld.binary("add", y, bld.binary("mul", c, np.float32(beta)) if beta != 1.0 else c)
    return [y]


# -- shapes ---------------------------------------------------------------------------------


@handles("Shape", constant_only=True)
def _shape(ctx: NodeContext, ins: list) -> list:
    dims = np.array(shape(ins[0]), np.int64)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return [dims[start:end]]


@handles("Size", constant_only=True)
def _size(ctx: NodeContext, ins: list) -> list:
    return [np.array(math.prod(shape(ins[0])), np.int64)]


@handles("Constant", constant_only=True)
def _constant(ctx: NodeContext, ins: list) -> list:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        v = ctx.attr(key)
        if v is not None:
            return [canonical_array(np.asarray(v))]
    raise ctx.error("only value / value_float(s) / value_int(s) constants are supported")


@handles("ConstantOfShape", constant_only=True)
def _constant_of_shape(ctx: NodeContext, ins: list) -> list:
    dims = ctx.ints(ins[0], "the shape")
    value = ctx.attr("value")
    value = canonical_array(value if value is not None else np.zeros(1, np.float32))
    return [np.full(dims, value.reshape(-1)[0], dtype=value.dtype)]


@handles("Range", constant_only=True)
def _range(ctx: NodeContext, ins: list) -> list:
    """max(ceil((limit - start) / delta), 0) elements start, start + delta, ... (ONNX Range)."""
    start, limit, delta = (ctx.const(v, "Range bounds") for v in ins)
    bounds = np.array([start, limit, delta], np.float64).ravel()
    if bounds.size != 3 or not np.all(np.isfinite(bounds)):
        raise ctx.error(f"Range needs three finite scalars, got start {start}, limit {limit}, "
                        f"delta {delta}")
    if bounds[2] == 0:
        raise ctx.error("Range with delta 0 (the step) has no defined length")
    check_tensor_size((max(math.ceil((bounds[1] - bounds[0]) / bounds[2]), 0),), "Range's output")
    return [canonical_array(np.arange(start, limit, delta, dtype=np.result_type(start, delta)))]


@handles("Reshape")
def _reshape(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    xs = shape(x)
    dims = ctx.ints(ins[1], "the target shape")
    allowzero = ctx.attr("allowzero", 0)
    out = [xs[i] if (d == 0 and not allowzero) else d for i, d in enumerate(dims)]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(xs) // known if known else 0
    if math.prod(out) != math.prod(xs):
        raise ctx.error(f"cannot reshape {list(xs)} to {dims}")
    return [ctx.builder(x).reshape(x, out)]


@handles("Flatten")
def _flatten(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    xs = shape(x)
    axis = ctx.attr("axis", 1) % (len(xs) + 1) if xs else 0
    return [ctx.builder(x).reshape(x, (math.prod(xs[:axis]), math.prod(xs[axis:])))]


@handles("Unsqueeze")
def _unsqueeze(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    xs = list(shape(x))
    raw = ctx.ints(ins[1], "axes") if len(ins) > 1 else list(ctx.attr("axes", []))
    axes = [a % (len(xs) + len(raw)) for a in raw]
    out = list(xs)
    for a in sorted(axes):
        out.insert(a, 1)
    return [ctx.builder(x).reshape(x, out)]


@handles("Squeeze")
def _squeeze(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    xs = shape(x)
    axes = _axes(ctx, ins, 1, len(xs))
    if axes is None:
        axes = [i for i, d in enumerate(xs) if d == 1]
    return [ctx.builder(x).reshape(x, [d for i, d in enumerate(xs) if i not in axes])]


@handles("Transpose")
def _transpose(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    perm = ctx.attr("perm", list(reversed(range(len(shape(x))))))
    return [ctx.builder(x).transpose(x, perm)]


@handles("Expand")
def _expand(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    return [ctx.builder(x).broadcast_to(x, ctx.ints(ins[1], "the Expand shape"))]


@handles("Concat")
def _concat(ctx: NodeContext, ins: list) -> list:
    parts = [v for v in ins if v is not None and math.prod(shape(v)) > 0] or [ins[0]]
    return [ctx.builder(*parts).concat(parts, ctx.attr("axis"))]


@handles("Slice")
def _slice(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    xs = shape(x)
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes = ctx.attr("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = ctx.ints(ins[1], "Slice starts"), ctx.ints(ins[2], "Slice ends")
        axes = (ctx.ints(ins[3], "Slice axes") if len(ins) > 3 and ins[3] is not None
                else list(range(len(starts))))
        steps = (ctx.ints(ins[4], "Slice steps") if len(ins) > 4 and ins[4] is not None
                 else [1] * len(starts))
    offs, sizes, strides = [0] * len(xs), list(xs), [1] * len(xs)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax %= len(xs)
        r = range(xs[ax])[slice(st, en, sp)]
        if sp < 0 and len(r) > 1:
            if isinstance(x, np.ndarray):
                x = np.flip(x, ax)
                r = range(xs[ax] - 1 - r.start, xs[ax] - 1 - r.start + len(r) * -sp, -sp)
            else:
                raise ctx.error("slices with negative steps are not supported")
        offs[ax], sizes[ax], strides[ax] = (r.start if len(r) else 0), len(r), abs(r.step)
    return [ctx.builder(x).slice(x, offs, sizes, strides)]


@handles("Split")
def _split(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    xs = shape(x)
    axis = ctx.attr("axis", 0) % len(xs)
    if len(ins) > 1 and ins[1] is not None:
        sizes = ctx.ints(ins[1], "Split sizes")
    elif ctx.attr("split") is not None:
        sizes = list(ctx.attr("split"))
    else:
        n = ctx.attr("num_outputs", len(ctx.node.output))
        chunk = -(-xs[axis] // n)
        sizes = [min(chunk, xs[axis] - i * chunk) for i in range(n)]
    b = ctx.builder(x)
    outs, off = [], 0
    for s in sizes:
        starts = [0] * len(xs)
        starts[axis] = off
        size = list(xs)
        size[axis] = s
        outs.append(b.slice(x, starts, size))
        off += s
    return outs


@handles("Gather")
def _gather(ctx: NodeContext, ins: list) -> list:
    data, idx = ins
    axis = ctx.attr("axis", 0)
    if isinstance(data, np.ndarray) and not isinstance(idx, np.ndarray):
        data = ctx.tensor(data, ctx.input_name(0))
    return [ctx.builder(data, idx).gather(data, idx, axis)]


@handles("GatherElements")
def _gather_elements(ctx: NodeContext, ins: list) -> list:
    data, idx = ins
    if shape(data) and len(shape(idx)) != len(shape(data)):
        raise ctx.error(f"GatherElements indices of rank {len(shape(idx))} for data of rank "
                        f"{len(shape(data))}: the ranks must be equal")
    return [ctx.builder(data, idx).gather_elements(data, idx, ctx.attr("axis", 0))]


@handles("Mod")
def _mod(ctx: NodeContext, ins: list) -> list:
    a, b = ins
    fmod = bool(ctx.attr("fmod", 0))
    if dtype(a) == np.float32 and not fmod:
        raise ctx.error("Mod of floats needs fmod=1 (the ONNX spec)")
    return [ctx.builder(a, b).mod(a, b, fmod)]


@handles("GatherND")
def _gather_nd(ctx: NodeContext, ins: list) -> list:
    if ctx.attr("batch_dims", 0):
        raise ctx.error("GatherND with batch_dims > 0 is not supported")
    data, idx = ins
    if isinstance(data, np.ndarray) and not isinstance(idx, np.ndarray):
        data = ctx.tensor(data, ctx.input_name(0))
    return [ctx.builder(data, idx).gather_nd(data, idx)]


@handles("ScatterND")
def _scatter_nd(ctx: NodeContext, ins: list) -> list:
    """data[indices[i.., :]] = updates[i..] (reduction 'none'), as torch's exporter writes a KV
    cache. The q indexed dims of data are flattened into one axis: a scatter along it."""
    data, indices, updates = ins[:3]
    if ctx.attr("reduction", "none") != "none":
        raise ctx.error(f"ScatterND with reduction '{ctx.attr('reduction')}' is not supported")
    ds, ishape = shape(data), shape(indices)
    q = ishape[-1]
    lead, rest = ds[:q], tuple(ds[q:])
    count = math.prod(ishape[:-1])
    if all(isinstance(v, np.ndarray) for v in (data, indices, updates)):
        out = np.array(data, copy=True)
        out[tuple(np.asarray(indices, np.int64).reshape(count, q).T)] = \
            np.asarray(updates).reshape((count,) + rest)
        return [out]
    gb = ctx.gb
    strides = np.array([math.prod(lead[c + 1:]) for c in range(q)], np.int64)
    bounds = np.array(lead, np.int64)
    if isinstance(indices, np.ndarray):
        idx = np.asarray(indices, np.int64).reshape(count, q)
        flat = (np.where(idx < 0, idx + bounds, idx) @ strides).astype(np.int64)
    else:
        idx = gb.reshape(gb.cast(indices, np.int64), (count, q))
        idx = gb.where(gb.binary("lt", idx, np.int64(0)), gb.binary("add", idx, bounds), idx)
        flat = gb.reduce(gb.binary("mul", idx, strides), [1], "sum")  # row-major position
    out = scatter_along(gb, gb.reshape(ctx.tensor(data), (math.prod(lead),) + rest), 0, flat,
                        gb.reshape(ctx.tensor(updates), (count,) + rest))
    return [gb.reshape(out, ds)]


@handles("Trilu")
def _trilu(ctx: NodeContext, ins: list) -> list:
    x = ins[0]
    k = ctx.ints(ins[1], "Trilu k")[0] if len(ins) > 1 and ins[1] is not None else 0
    n, m = shape(x)[-2:]
    rows, cols = np.arange(n)[:, None], np.arange(m)[None, :]
    keep = (cols - rows >= k) if ctx.attr("upper", 1) else (cols - rows <= k)
    b = ctx.builder(x)
    zero = np.zeros((), dtype(x))
    return [b.where(keep, x, zero)]


# -- attention (opset 23) -------------------------------------------------------------------


@handles("Attention")
def _attention(ctx: NodeContext, ins: list) -> list:
    """softmax(Q K^T * scale + mask) V with grouped K/V heads; 4-D inputs [B, H, S, D] or 3-D
    [B, S, H*D] with q_num_heads / kv_num_heads (the output is then 3-D too). Without a past the
    causal mask is top-left aligned (query i sees keys j <= i), as the spec's reference says."""
    q, k, v = ins[:3]
    mask = ins[3] if len(ins) > 3 else None
    if len(ins) > 4 and any(x is not None for x in ins[4:]):
        raise ctx.error("Attention with a KV cache is not supported")
    if any(o for o in ctx.node.output[1:]):
        raise ctx.error("only the first Attention output is supported")
    if ctx.attr("softcap", 0.0):
        raise ctx.error("Attention softcap is not supported")
    gb = ctx.gb
    q, k, v = (ctx.tensor(t) for t in (q, k, v))
    ranks = {len(shape_of(t)) for t in (q, k, v)}
    if ranks not in ({3}, {4}):
        raise ctx.error(f"Attention Q, K, V must all be 4-D [batch, heads, seq, head_dim] or "
                        f"all 3-D [batch, seq, heads*head_dim], got {shape_of(q)}, "
                        f"{shape_of(k)}, {shape_of(v)}")
    three_d = ranks == {3}
    if three_d:
        hq_attr, hk_attr = ctx.attr("q_num_heads", 0), ctx.attr("kv_num_heads", 0)
        if hq_attr <= 0 or hk_attr <= 0:
            raise ctx.error("3-D Attention inputs need q_num_heads and kv_num_heads attributes")

        def heads(t, n, what):
            b, s, hidden = shape_of(t)
            if hidden % n:
                raise ctx.error(f"Attention {what} hidden size {hidden} is not a multiple of "
                                f"its {n} heads")
            return gb.transpose(gb.reshape(t, (b, s, n, hidden // n)), [0, 2, 1, 3])

        q, k, v = heads(q, hq_attr, "Q"), heads(k, hk_attr, "K"), heads(v, hk_attr, "V")
    bsz, hq, sq, d = shape_of(q)
    hk, sk = shape_of(k)[1], shape_of(k)[2]
    dv = shape_of(v)[3]
    if hq % hk or shape_of(v)[1] != hk:
        raise ctx.error(f"Attention has {hq} query heads and {hk} / {shape_of(v)[1]} key / "
                        f"value heads: query heads must be a multiple of equal K and V heads")
    scale = ctx.attr("scale", 1.0 / math.sqrt(d))
    kt = gb.transpose(k, [0, 1, 3, 2])
    if hq != hk:  # grouped-query attention: repeat each K/V head hq / hk times
        rep = hq // hk
        kt = gb.reshape(gb.broadcast_to(gb.reshape(kt, (bsz, hk, 1, d, sk)),
                                        (bsz, hk, rep, d, sk)), (bsz, hq, d, sk))
        v = gb.reshape(gb.broadcast_to(gb.reshape(v, (bsz, hk, 1, sk, dv)),
                                       (bsz, hk, rep, sk, dv)), (bsz, hq, sk, dv))
    scores = gb.binary("mul", gb.matmul(q, kt), np.float32(scale))
    if ctx.attr("is_causal", 0):  # no past: offset 0, query i attends keys j <= i
        scores = gb.where(np.tril(np.ones((sq, sk), bool)), scores, np.float32(-np.inf))
    if mask is not None:
        is_bool = dtype(mask) == np.bool_
        pad = sk - shape(mask)[-1]
        if pad > 0:  # a shorter mask is padded with "not attended" up to the key length
            fill = np.full(shape(mask)[:-1] + (pad,), False if is_bool else -np.inf,
                           np.bool_ if is_bool else np.float32)
            mask = (np.concatenate([mask, fill], -1) if isinstance(mask, np.ndarray)
                    else gb.concat([mask, fill], -1))
        if is_bool:
            scores = gb.where(mask, scores, np.float32(-np.inf))
        else:
            scores = gb.binary("add", scores, mask)
    out = gb.matmul(gb.softmax(scores, -1), v)
    if three_d:
        out = gb.reshape(gb.transpose(out, [0, 2, 1, 3]), (bsz, sq, hq * dv))
    return [out] + [None] * (len(ctx.node.output) - 1)


def supported(domain: str, op_type: str) -> bool:
    return (domain, op_type) in HANDLERS


def constant_only(domain: str, op_type: str) -> bool:
    return (domain, op_type) in CONSTANT_ONLY

