"""ATen operators (torch.export graphs) -> GraphBuilder calls.

Handlers only see nodes with at least one non-constant input: constant nodes are evaluated
by torch itself at import time. Arguments arrive as SSA values, numpy arrays (constants) or
Python scalars; every handler knows its result's static shape and dtype from the node's
`meta["val"]`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np
import torch
from xdsl.ir import SSAValue

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.linear_policy import note_float_product, shared_batch_weight, \
    swap_last_two
from lutc.compiler.frontends.conv1d import conv1d_output_length, depthwise_conv1d
from lutc.compiler.frontends.moe import SelectedExperts, expert_bmm, grouped_mm, is_expert_selection
from lutc.compiler.frontends.scatter import scatter_along
from lutc.compiler.frontends.topk import topk
from lutc.compiler.frontends.graph_builder import GraphBuilder, ScalarBuilder, canonical_array, \
    elem_of, storage_dtype, shape_of

Handler = Callable[["TorchNodeContext"], object]
HANDLERS: dict[str, Handler] = {}
# ops whose result depends only on the shapes/dtypes of their tensor inputs
SHAPE_ONLY = {
    "aten.full_like", "aten.zeros_like", "aten.ones_like", "aten.empty_like", "aten.new_zeros",
    "aten.new_ones", "aten.new_full", "aten.new_empty", "aten.sym_size", "aten.sym_numel",
    "aten.sym_stride", "aten.empty_strided",
}
# ops that compute nothing
IGNORED = {
    "aten._assert_tensor_metadata", "aten._assert_scalar", "aten.sym_constrain_range",
    "aten.sym_constrain_range_for_size", "aten._assert_async",
}


def handles(*names: str):
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn
    return register


def op_name(target) -> str:
    """'aten.add' for aten.add.Tensor; 'operator.getitem' for Python operators."""
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._opname}"
    if isinstance(target, torch._ops.OpOverloadPacket):
        return target._qualified_op_name.replace("::", ".")
    if target is operator.getitem:
        return "operator.getitem"
    return getattr(target, "__name__", str(target))


def torch_dtype(dtype: torch.dtype) -> np.dtype:
    """lutc's numpy dtype for a torch dtype (floats -> f32, ints -> i64, bool)."""
    if dtype == torch.bool:
        return np.dtype(np.bool_)
    if dtype.is_floating_point:
        return np.dtype(np.float32)
    if dtype.is_complex:
        raise LutcError(f"tensors of dtype {dtype} are not supported")
    return np.dtype(np.int64)


Value = SSAValue | np.ndarray


class TorchNodeContext:
    def __init__(self, importer, node: torch.fx.Node):
        self.importer = importer
        self.gb: GraphBuilder = importer.gb
        self.node = node
        self.name = node.name
        val = node.meta.get("val")
        self.out_shape = tuple(int(d) for d in val.shape) if isinstance(val, torch.Tensor) else None
        self.out_dtype = torch_dtype(val.dtype) if isinstance(val, torch.Tensor) else None

    def arg(self, i: int, default=None, name: str | None = None):
        """Positional argument i (or keyword `name`), converted to SSA / numpy / Python."""
        if i < len(self.node.args):
            return self.importer.value(self.node.args[i])
        if name is not None and name in self.node.kwargs:
            return self.importer.value(self.node.kwargs[name])
        return default

    def error(self, message: str) -> LutcError:
        return LutcError(message, f"{op_name(self.node.target)} node '{self.name}'")

    def tensor(self, x, hint: str = "const") -> SSAValue:
        if isinstance(x, SSAValue):
            return x
        return self.gb.value(canonical_array(np.asarray(x)), hint)


def shape(x) -> tuple[int, ...]:
    if isinstance(x, SSAValue):
        return shape_of(x)
    return tuple(np.shape(x))


def dtype(x) -> np.dtype:
    if isinstance(x, SSAValue):
        return storage_dtype(elem_of(x))
    if isinstance(x, bool):
        return np.dtype(np.bool_)
    if isinstance(x, int):
        return np.dtype(np.int64)
    if isinstance(x, float):
        return np.dtype(np.float32)
    return canonical_array(np.asarray(x)).dtype


def _as(ctx: TorchNodeContext, x, dt: np.dtype):
    """x converted to dtype dt: SSA values get a cast, constants are converted."""
    if isinstance(x, SSAValue):
        return ctx.gb.cast(x, dt) if dtype(x) != dt else x
    return np.asarray(x).astype(dt)


# -- shapes ---------------------------------------------------------------------------------


@handles("aten.view", "aten._unsafe_view", "aten.reshape", "aten.view_copy",
         "aten.unsqueeze", "aten.squeeze", "aten.flatten", "aten.unflatten")
def _reshape(ctx: TorchNodeContext):
    return ctx.gb.reshape(ctx.tensor(ctx.arg(0)), ctx.out_shape)


@handles("aten.permute", "aten.permute_copy")
def _permute(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    return ctx.gb.transpose(x, [d % len(shape(x)) for d in ctx.arg(1)])


@handles("aten.transpose", "aten.t", "aten.numpy_T")
def _transpose(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    rank = len(shape(x))
    if rank < 2:
        return x
    d0, d1 = (ctx.arg(1) % rank, ctx.arg(2) % rank) if len(ctx.node.args) > 1 else (0, 1)
    perm = list(range(rank))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return ctx.gb.transpose(x, perm)


@handles("aten.expand", "aten.expand_copy", "aten.expand_as", "aten.broadcast_to")
def _expand(ctx: TorchNodeContext):
    return ctx.gb.broadcast_to(ctx.tensor(ctx.arg(0)), ctx.out_shape)


@handles("aten.slice", "aten.slice_copy")
def _slice(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    xs = shape(x)
    dim = ctx.arg(1, 0, "dim") % len(xs)
    start, end, step = ctx.arg(2, None, "start"), ctx.arg(3, None, "end"), ctx.arg(4, 1, "step")
    r = range(xs[dim])[slice(start, end, step)]
    starts, sizes, strides = [0] * len(xs), list(xs), [1] * len(xs)
    starts[dim], sizes[dim], strides[dim] = (r.start if len(r) else 0), len(r), r.step
    return ctx.gb.slice(x, starts, sizes, strides)


@handles("aten.select", "aten.select_copy")
def _select(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    xs = shape(x)
    dim = ctx.arg(1) % len(xs)
    index = ctx.arg(2) % xs[dim]
    starts, sizes = [0] * len(xs), list(xs)
    starts[dim], sizes[dim] = index, 1
    return ctx.gb.reshape(ctx.gb.slice(x, starts, sizes), ctx.out_shape)


@handles("aten.split_with_sizes", "aten.split_with_sizes_copy", "aten.split", "aten.split_copy",
         "aten.chunk", "aten.unbind", "aten.unbind_copy")
def _split(ctx: TorchNodeContext):
    """A tuple of slices along one dim; only the parts some getitem reads are built."""
    x = ctx.tensor(ctx.arg(0))
    xs = shape(x)
    name = op_name(ctx.node.target)
    unbind = name.startswith("aten.unbind")
    dim = ctx.arg(1 if unbind else 2, 0, "dim") % len(xs)
    if unbind:
        sizes = [1] * xs[dim]
    elif name == "aten.chunk":
        step = -(-xs[dim] // ctx.arg(1))
        sizes = [min(step, xs[dim] - o) for o in range(0, xs[dim], step)]
    elif isinstance(ctx.arg(1), int):  # split.Tensor: parts of split_size, the last shorter
        step = ctx.arg(1)
        sizes = [min(step, xs[dim] - o) for o in range(0, xs[dim], step)] or [0]
    else:
        sizes = list(ctx.arg(1))
    if sum(sizes) != xs[dim]:
        raise ctx.error(f"split sizes {sizes} do not add up to dim {dim} of size {xs[dim]}")
    used = {u.args[1] for u in ctx.node.users if u.target is operator.getitem}
    parts, offset = [], 0
    for i, size in enumerate(sizes):
        if i in used:
            starts, extent = [0] * len(xs), list(xs)
            starts[dim], extent[dim] = offset, size
            part = ctx.gb.slice(x, starts, extent)
            parts.append(ctx.gb.reshape(part, xs[:dim] + xs[dim + 1:]) if unbind else part)
        else:
            parts.append(None)
        offset += size
    return tuple(parts)


@handles("aten.as_strided", "aten.as_strided_copy")
def _as_strided(ctx: TorchNodeContext):
    """as_strided where it is a plain view of a contiguous tensor: the strides are the
    row-major strides of some order of the dims (a reshape, then a transpose), from an offset."""
    x = ctx.tensor(ctx.arg(0))
    size, stride = [int(d) for d in ctx.arg(1)], [int(s) for s in ctx.arg(2)]
    offset = int(ctx.arg(3, 0, "storage_offset") or 0)
    val = ctx.node.args[0].meta.get("val") if isinstance(ctx.node.args[0], torch.fx.Node) \
        else None
    what = f"as_strided(size={size}, stride={stride}, storage_offset={offset})"
    if isinstance(val, torch.Tensor) and not val.is_contiguous():
        raise ctx.error(f"{what} of a non-contiguous tensor is not supported")
    # dims in memory order: larger strides outer; unit dims can go anywhere
    order = sorted(range(len(size)), key=lambda d: (-stride[d], d))
    expect = 1
    for d in reversed(order):
        if size[d] != 1 and stride[d] != expect:
            raise ctx.error(f"{what} is not a plain view (a reshape / permutation of a "
                            "contiguous block) and is not supported")
        expect *= size[d]
    count = math.prod(size)
    numel = math.prod(shape(x))
    if offset < 0 or offset + count > numel:
        raise ctx.error(f"{what} reads past the {numel} elements of its input")
    flat = ctx.gb.reshape(x, (numel,))
    if count != numel:
        flat = ctx.gb.slice(flat, [offset], [count])
    view = ctx.gb.reshape(flat, [size[d] for d in order])
    return ctx.gb.transpose(view, [order.index(d) for d in range(len(size))])


@handles("aten.cat", "aten.concat", "aten.concatenate")
def _cat(ctx: TorchNodeContext):
    parts = [p for p in ctx.arg(0) if math.prod(shape(p)) > 0]
    dim = ctx.arg(1, 0, "dim")
    dt = ctx.out_dtype
    return ctx.gb.concat([ctx.tensor(_as(ctx, p, dt)) for p in parts], dim % len(ctx.out_shape))


@handles("aten.clone", "aten.alias", "aten.contiguous", "aten.detach", "aten.lift_fresh_copy",
         "aten._to_copy", "aten.to", "aten.type_as", "aten.alias_copy", "aten.dropout",
         "aten.copy")
def _copy(ctx: TorchNodeContext):
    src = ctx.arg(1) if op_name(ctx.node.target) == "aten.copy" else ctx.arg(0)
    x = ctx.tensor(src)
    if ctx.out_dtype is not None and dtype(x) != ctx.out_dtype:
        if ctx.out_dtype == np.int64 and dtype(x) == np.float32:
            x = ctx.gb.cast(x, np.int64)  # fptosi truncates toward zero like torch
        else:
            x = ctx.gb.cast(x, ctx.out_dtype)
    if ctx.out_shape is not None and shape(x) != ctx.out_shape:  # copy_(dest, src) broadcasts
        x = ctx.gb.broadcast_to(x, ctx.out_shape)
    return x


# -- in-place updates (functionalized: each returns the updated tensor) ---------------------


def _scatter_source(ctx: TorchNodeContext, values, dest_shape, axis: int, n: int) -> SSAValue:
    """`values` broadcast to dest's shape with `axis` of size n, in dest's dtype."""
    want = tuple(dest_shape[:axis]) + (n,) + tuple(dest_shape[axis + 1:])
    return ctx.gb.broadcast_to(ctx.tensor(_as(ctx, values, ctx.out_dtype)), want)


@handles("aten.index_put")
def _index_put(ctx: TorchNodeContext):
    """dest[:, .., index, ..] = values with one index tensor (a static KV cache write)."""
    dest, indices, values = ctx.tensor(ctx.arg(0)), ctx.arg(1), ctx.arg(2)
    if ctx.arg(3, False, "accumulate"):
        raise ctx.error("index_put with accumulate=True is not supported")
    used = [i for i, t in enumerate(indices) if t is not None]
    if len(used) != 1:
        raise ctx.error(f"index_put with {len(used)} index tensors is not supported; write "
                        "through one index tensor on one dimension (e.g. cache[:, :, pos] = kv)")
    axis = used[0]
    index = indices[axis]
    if dtype(index) == np.bool_:
        raise ctx.error("index_put with a boolean mask is not supported")
    ishape = shape(index)
    n = math.prod(ishape)
    ds = shape(dest)
    # values broadcast against dest[:axis] + index.shape + dest[axis+1:]; the index is flattened
    full = tuple(ds[:axis]) + tuple(ishape) + tuple(ds[axis + 1:])
    src = ctx.gb.broadcast_to(ctx.tensor(_as(ctx, values, ctx.out_dtype)), full)
    src = ctx.gb.reshape(src, tuple(ds[:axis]) + (n,) + tuple(ds[axis + 1:]))
    flat = ctx.gb.reshape(index, (n,)) if isinstance(index, SSAValue) \
        else np.asarray(index).reshape(-1)
    return scatter_along(ctx.gb, dest, axis, flat, src)


@handles("aten.index_copy")
def _index_copy(ctx: TorchNodeContext):
    dest, index, source = ctx.tensor(ctx.arg(0)), ctx.arg(2), ctx.arg(3)
    axis = ctx.arg(1) % len(shape(dest))
    n = shape(index)[0] if shape(index) else 1
    index = ctx.gb.reshape(index, (n,)) if isinstance(index, SSAValue) \
        else np.asarray(index).reshape(-1)
    src = _scatter_source(ctx, source, shape(dest), axis, n)
    return scatter_along(ctx.gb, dest, axis, index, src)


@handles("aten.slice_scatter")
def _slice_scatter(ctx: TorchNodeContext):
    dest, src = ctx.tensor(ctx.arg(0)), ctx.arg(1)
    ds = shape(dest)
    axis = ctx.arg(2, 0, "dim") % len(ds)
    start, end, step = ctx.arg(3, None, "start"), ctx.arg(4, None, "end"), ctx.arg(5, 1, "step")
    positions = np.arange(ds[axis])[slice(start, end, step)]
    src = _scatter_source(ctx, src, ds, axis, len(positions))
    return scatter_along(ctx.gb, dest, axis, positions, src)


@handles("aten.select_scatter")
def _select_scatter(ctx: TorchNodeContext):
    dest, src = ctx.tensor(ctx.arg(0)), ctx.arg(1)
    ds = shape(dest)
    axis = ctx.arg(2) % len(ds)
    index = ctx.arg(3) % ds[axis]
    src = ctx.gb.reshape(ctx.tensor(src), tuple(ds[:axis]) + (1,) + tuple(ds[axis + 1:]))
    src = _scatter_source(ctx, src, ds, axis, 1)
    return scatter_along(ctx.gb, dest, axis, np.array([index]), src)


@handles("operator.getitem")
def _getitem(ctx: TorchNodeContext):
    seq = ctx.importer.env[ctx.node.args[0]]
    value = seq[ctx.node.args[1]]
    if value is None and ctx.node.users:  # an unused output needs no lowering
        raise ctx.error(f"output {ctx.node.args[1]} of {op_name(ctx.node.args[0].target)} is "
                        "used, and only its other outputs are supported")
    return value


# -- elementwise ----------------------------------------------------------------------------

_BINARY = {
    "aten.add": "add", "aten.sub": "sub", "aten.mul": "mul", "aten.div": "div",
    "aten.maximum": "max", "aten.minimum": "min", "aten.pow": "pow",
    "aten.logical_and": "and", "aten.bitwise_and": "and", "aten.logical_or": "or",
    "aten.bitwise_or": "or", "aten.logical_xor": "xor", "aten.bitwise_xor": "xor",
    "aten.eq": "eq", "aten.ne": "ne", "aten.lt": "lt", "aten.le": "le", "aten.gt": "gt",
    "aten.ge": "ge", "aten.rsub": "rsub",
}
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}


@handles(*_BINARY)
def _binary(ctx: TorchNodeContext):
    op = _BINARY[op_name(ctx.node.target)]
    a, b = ctx.arg(0), ctx.arg(1)
    alpha = ctx.node.kwargs.get("alpha", ctx.node.args[2] if len(ctx.node.args) > 2
                                and op in ("add", "sub", "rsub") else 1)
    if op == "rsub":  # rsub(a, b, alpha) = b - alpha * a
        a, b, op = b, a, "sub"
    if alpha != 1:
        b = ctx.gb.binary("mul", ctx.tensor(b), alpha) if isinstance(b, SSAValue) \
            else np.asarray(b) * alpha
    if op in _COMPARE:
        kinds = {dtype(a), dtype(b)}
        compute = (np.dtype(np.float32) if np.dtype(np.float32) in kinds else
                   np.dtype(np.int64) if np.dtype(np.int64) in kinds else np.dtype(np.bool_))
    elif op in ("and", "or", "xor"):
        compute = ctx.out_dtype
        if compute != np.bool_:
            raise ctx.error("bitwise operations on integer tensors are not supported")
    else:
        compute = ctx.out_dtype
    a, b = _as(ctx, a, compute), _as(ctx, b, compute)
    if op == "div":
        mode = ctx.node.kwargs.get("rounding_mode")
        if mode == "floor" and compute != np.float32:
            return ctx.gb.map(_floor_div_int, [a, b])
        out = ctx.gb.binary("div", a, b)
        if mode == "floor":
            out = ctx.gb.unary("floor", out)
        return out
    return ctx.gb.binary(op, a, b)


def _floor_div_int(s: ScalarBuilder, a, b):
    """Python's a // b on integers: the truncated quotient, one less when the remainder is
    nonzero and its sign differs from the divisor's."""
    q, r = s.div(a, b), s.sub(a, s.mul(s.div(a, b), b))
    zero = s.const(0, a.type)
    fix = s.logical_and(s.cmp("ne", r, zero),
                        s.logical_xor(s.cmp("lt", r, zero), s.cmp("lt", b, zero)))
    return s.select(fix, s.sub(q, s.const(1, a.type)), q)


_UNARY = {
    "aten.neg": "neg", "aten.rsqrt": "rsqrt", "aten.sqrt": "sqrt", "aten.exp": "exp",
    "aten.log": "log", "aten.cos": "cos", "aten.sin": "sin", "aten.tanh": "tanh",
    "aten.sigmoid": "sigmoid", "aten.relu": "relu", "aten.erf": "erf", "aten.abs": "abs",
    "aten.reciprocal": "reciprocal", "aten.logical_not": "not", "aten.bitwise_not": "not",
    "aten.isnan": "isnan", "aten.round": "round", "aten.floor": "floor",
}


@handles(*_UNARY)
def _unary(ctx: TorchNodeContext):
    op = _UNARY[op_name(ctx.node.target)]
    x = ctx.tensor(ctx.arg(0))
    if op == "not" and dtype(x) != np.bool_:
        raise ctx.error("bitwise not of integer tensors is not supported")
    if op in ("rsqrt", "sqrt", "exp", "log", "cos", "sin", "tanh", "sigmoid", "erf",
              "reciprocal"):
        x = _as(ctx, x, np.float32)
    return ctx.gb.unary(op, x)


@handles("aten.silu")
def _silu(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    return ctx.gb.map(lambda s, v: s.mul(v, s.sigmoid(v)), [x])


@handles("aten.softplus")
def _softplus(ctx: TorchNodeContext):
    """softplus(x, beta=1, threshold=20) = x where beta * x > threshold, else
    log(1 + exp(beta * x)) / beta (torch.nn.functional.softplus's definition)."""
    x = _as(ctx, ctx.tensor(ctx.arg(0)), np.float32)
    beta, threshold = float(ctx.arg(1, 1.0, "beta")), float(ctx.arg(2, 20.0, "threshold"))
    if beta == 0:
        raise ctx.error("softplus with beta = 0 divides by zero")

    def body(s: ScalarBuilder, v):
        bx = s.mul(v, s.const(beta, v.type)) if beta != 1 else v
        soft = s.softplus(bx)
        if beta != 1:
            soft = s.div(soft, s.const(beta, v.type))
        return s.select(s.cmp("gt", bx, s.const(threshold, v.type)), v, soft)

    return ctx.gb.map(body, [x])


@handles("aten.gelu")
def _gelu(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    gb = ctx.gb
    if ctx.node.kwargs.get("approximate", "none") == "tanh":
        c = math.sqrt(2 / math.pi)
        return gb.map(lambda s, v: s.mul(s.mul(v, s.const(0.5, v.type)), s.add(
            s.const(1.0, v.type), s.tanh(s.mul(s.const(c, v.type), s.add(v, s.mul(
                s.const(0.044715, v.type), s.mul(v, s.mul(v, v)))))))), [x])
    return gb.map(lambda s, v: s.mul(s.mul(v, s.const(0.5, v.type)), s.add(
        s.const(1.0, v.type), s.erf(s.mul(v, s.const(1 / math.sqrt(2), v.type))))), [x])


@handles("aten.clamp", "aten.clamp_min", "aten.clamp_max", "aten.hardtanh")
def _clamp(ctx: TorchNodeContext):
    name = op_name(ctx.node.target)
    x = ctx.tensor(_as(ctx, ctx.arg(0), ctx.out_dtype))
    if name == "aten.clamp_max":
        lo, hi = None, ctx.arg(1)
    elif name == "aten.hardtanh":
        lo, hi = ctx.arg(1, -1.0, "min_val"), ctx.arg(2, 1.0, "max_val")
    else:
        lo, hi = ctx.arg(1, None, "min"), ctx.arg(2, None, "max")
    if lo is not None:
        x = ctx.gb.binary("max", x, _as(ctx, lo, ctx.out_dtype))
    if hi is not None:
        x = ctx.gb.binary("min", x, _as(ctx, hi, ctx.out_dtype))
    return x


@handles("aten.where")
def _where(ctx: TorchNodeContext):
    c, a, b = ctx.arg(0), ctx.arg(1), ctx.arg(2)
    dt = ctx.out_dtype
    return ctx.gb.where(_as(ctx, c, np.bool_), _as(ctx, a, dt), _as(ctx, b, dt))


@handles("aten.masked_fill")
def _masked_fill(ctx: TorchNodeContext):
    x, mask, value = ctx.arg(0), ctx.arg(1), ctx.arg(2)
    dt = ctx.out_dtype
    return ctx.gb.where(_as(ctx, mask, np.bool_), _as(ctx, value, dt), _as(ctx, x, dt))


# -- reductions -----------------------------------------------------------------------------


def _dims(ctx: TorchNodeContext, x, index: int) -> list[int]:
    dims = ctx.arg(index, None, "dim")
    rank = len(shape(x))
    if dims is None or dims == []:
        return list(range(rank))
    if isinstance(dims, int):
        dims = [dims]
    return [d % rank for d in dims]


_REDUCE = {"aten.mean": "mean", "aten.sum": "sum", "aten.amax": "max", "aten.amin": "min",
           "aten.any": "any", "aten.all": "all", "aten.prod": "prod"}


@handles(*_REDUCE)
def _reduce(ctx: TorchNodeContext):
    kind = _REDUCE[op_name(ctx.node.target)]
    x = ctx.tensor(ctx.arg(0))
    dims = _dims(ctx, x, 1)
    keep = bool(ctx.arg(2, False, "keepdim"))
    if kind in ("any", "all"):
        x = _as(ctx, x, np.bool_)
    elif kind == "mean":
        x = _as(ctx, x, np.float32)
    else:
        x = _as(ctx, x, ctx.out_dtype)
    return ctx.gb.reduce(x, dims, kind, keep)


@handles("aten.max", "aten.min")
def _max_dim(ctx: TorchNodeContext):
    kind = "max" if op_name(ctx.node.target) == "aten.max" else "min"
    x = ctx.tensor(ctx.arg(0))
    if len(ctx.node.args) > 1 and isinstance(ctx.node.args[1], int):  # max.dim: (values, idx)
        dim = ctx.node.args[1] % len(shape(x))
        keep = bool(ctx.arg(2, False, "keepdim"))
        return (ctx.gb.reduce(x, [dim], kind, keep), None)
    if len(ctx.node.args) > 1:  # max.other: elementwise
        return ctx.gb.binary(kind, x, _as(ctx, ctx.arg(1), dtype(x)))
    return ctx.gb.reduce(x, list(range(len(shape(x)))), kind)


@handles("aten.topk")
def _topk(ctx: TorchNodeContext):
    """topk(x, k, dim=-1, largest=True, sorted=True) -> (values, indices): see topk.py (ties:
    the lower index first; sorted=False gets the sorted order)."""
    x = ctx.tensor(ctx.arg(0))
    xs = shape(x)
    if not xs:
        x, xs = ctx.gb.reshape(x, (1,)), (1,)
    k = ctx.arg(1)
    dim = ctx.arg(2, -1, "dim")
    if not isinstance(k, int):
        raise ctx.error("topk with a k computed from the model inputs is not supported; k must "
                        "be a constant")
    if not -len(xs) <= dim < len(xs):
        raise ctx.error(f"topk dim {dim} is out of range for a tensor of rank {len(xs)}")
    dim %= len(xs)
    if not 0 <= k <= xs[dim]:
        raise ctx.error(f"topk k = {k} is out of range for dim {dim} of size {xs[dim]}")
    values, indices = topk(ctx.gb, x, k, dim, bool(ctx.arg(3, True, "largest")))
    out_shape = tuple(int(d) for d in ctx.node.meta["val"][0].shape)
    return (ctx.gb.reshape(values, out_shape), ctx.gb.reshape(indices, out_shape))


@handles("aten.sort", "aten.argsort")
def _sort(ctx: TorchNodeContext):
    """sort(x, dim=-1, descending=False[, stable]) -> (values, indices) and argsort: a topk of
    the whole dim, which is stable (equal values keep their order) whatever `stable` says."""
    x = ctx.tensor(ctx.arg(0))
    xs = shape(x)
    name = op_name(ctx.node.target)
    dim, descending = ctx.arg(1, -1, "dim"), ctx.arg(2, False, "descending")
    if not xs:
        return x if name == "aten.argsort" else (x, ctx.gb.value(np.zeros((), np.int64)))
    dim %= len(xs)
    values, indices = topk(ctx.gb, x, xs[dim], dim, bool(descending))
    return indices if name == "aten.argsort" else (values, indices)


@handles("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax")
def _softmax(ctx: TorchNodeContext):
    x = _as(ctx, ctx.tensor(ctx.arg(0)), np.float32)
    out = ctx.gb.softmax(x, ctx.arg(1) % len(shape(x)))
    if "log_softmax" in op_name(ctx.node.target):
        out = ctx.gb.unary("log", out)
    return out


@handles("aten.cumsum")
def _cumsum(ctx: TorchNodeContext):
    x = _as(ctx, ctx.tensor(ctx.arg(0)), ctx.out_dtype)
    return ctx.gb.cumsum(x, ctx.arg(1))


@handles("aten.native_layer_norm", "aten.layer_norm")
def _layer_norm(ctx: TorchNodeContext):
    x = ctx.tensor(ctx.arg(0))
    normalized = ctx.arg(1)
    w, b = ctx.arg(2), ctx.arg(3)
    eps = ctx.arg(4, 1e-5, "eps")
    gb = ctx.gb
    rank = len(shape(x))
    axes = list(range(rank - len(normalized), rank))
    xc = gb.binary("sub", x, gb.reduce(x, axes, "mean", keepdims=True))
    var = gb.reduce(gb.binary("mul", xc, xc), axes, "mean", keepdims=True)
    y = gb.binary("mul", xc, gb.unary("rsqrt", gb.binary("add", var, np.float32(eps))))
    if w is not None:
        y = gb.binary("mul", y, ctx.tensor(w, "layer_norm.weight"))
    if b is not None:
        y = gb.binary("add", y, ctx.tensor(b, "layer_norm.bias"))
    if op_name(ctx.node.target) == "aten.layer_norm":
        return y
    return (y, None, None)


# -- gathers --------------------------------------------------------------------------------


@handles("aten.embedding")
def _embedding(ctx: TorchNodeContext):
    weight, ids = ctx.arg(0), ctx.arg(1)
    hint = ctx.importer.hint_for(ctx.node.args[0])
    return ctx.gb.gather(ctx.tensor(weight, hint), ids, 0)


@handles("aten.index")
def _index(ctx: TorchNodeContext):
    x = ctx.arg(0)
    indices = ctx.arg(1)
    used = [i for i, t in enumerate(indices) if t is not None]
    if is_expert_selection(ctx.node, x, indices):  # W[expert_ids] feeding bmm: see moe.py
        return SelectedExperts(x, indices[0], ctx.node.args[0])
    if len(used) == 1:
        return ctx.gb.gather(ctx.tensor(x, ctx.importer.hint_for(ctx.node.args[0])),
                             indices[used[0]], used[0])
    if used != list(range(len(used))):
        raise ctx.error("advanced indexing on non-leading dimensions is not supported")
    common = np.broadcast_shapes(*(shape(indices[i]) for i in used))
    parts = [ctx.gb.reshape(ctx.gb.broadcast_to(_as(ctx, indices[i], np.int64), common),
                            tuple(common) + (1,)) for i in used]
    return ctx.gb.gather_nd(ctx.tensor(x), ctx.gb.concat(parts, len(common)))


@handles("aten.index_select")
def _index_select(ctx: TorchNodeContext):
    return ctx.gb.gather(ctx.tensor(ctx.arg(0)), ctx.arg(2), ctx.arg(1))


# -- matrix products ------------------------------------------------------------------------


@handles("aten.mm", "aten.matmul", "aten.bmm")
def _mm(ctx: TorchNodeContext):
    a, b = ctx.arg(0), ctx.arg(1)
    if isinstance(a, SelectedExperts) or isinstance(b, SelectedExperts):
        return expert_bmm(ctx, a, b)
    if isinstance(b, np.ndarray) and isinstance(a, SSAValue):
        # 3-D and up: one matrix repeated over the batch (bmm(x, expand(W^T)))
        w = b if b.ndim == 2 else shared_batch_weight(shape(a), b)
        if w is not None:
            return ctx.importer.linear(ctx, a, w.T, None, ctx.node.args[1])
    if isinstance(a, np.ndarray) and a.ndim == 2 and isinstance(b, SSAValue) and len(shape(b)) >= 2:
        perm = swap_last_two(len(shape(b)))  # W @ x = (x^T @ W^T)^T
        y = ctx.importer.linear(ctx, ctx.gb.transpose(b, perm), a, None, ctx.node.args[0])
        return ctx.gb.transpose(y, perm)
    imp = ctx.importer
    nodes = ctx.node.args[:2]
    note_float_product(a, b, tuple(imp.hint_for(n) for n in nodes), imp.spec, imp.float_notes,
                       tuple(imp.source_shape(n) for n in nodes))
    return ctx.gb.matmul(ctx.tensor(a), ctx.tensor(b))


@handles("aten.addmm")
def _addmm(ctx: TorchNodeContext):
    bias, a, b = ctx.arg(0), ctx.arg(1), ctx.arg(2)
    beta, alpha = ctx.node.kwargs.get("beta", 1), ctx.node.kwargs.get("alpha", 1)
    if beta != 1:
        bias = ctx.gb.binary("mul", ctx.tensor(bias), beta) if isinstance(bias, SSAValue) \
            else np.asarray(bias) * beta
    if alpha != 1:
        b = np.asarray(b) * alpha if isinstance(b, np.ndarray) else \
            ctx.gb.binary("mul", b, alpha)
    if isinstance(b, np.ndarray) and isinstance(a, SSAValue):
        return ctx.importer.linear(ctx, a, b.T, bias, ctx.node.args[2])
    return ctx.gb.binary("add", ctx.gb.matmul(ctx.tensor(a), ctx.tensor(b)), ctx.tensor(bias))


@handles("aten.linear")
def _linear(ctx: TorchNodeContext):
    x, w, b = ctx.arg(0), ctx.arg(1), ctx.arg(2)
    if isinstance(w, np.ndarray) and isinstance(x, SSAValue):
        return ctx.importer.linear(ctx, x, w, b, ctx.node.args[1])
    y = ctx.gb.matmul(ctx.tensor(x), ctx.gb.transpose(ctx.tensor(w), [1, 0]))
    return ctx.gb.binary("add", y, ctx.tensor(b)) if b is not None else y


@handles("transformers.grouped_mm_fallback")
def _grouped_mm(ctx: TorchNodeContext):
    """transformers' grouped_mm experts (its CPU fallback op): see moe.py."""
    return grouped_mm(ctx, ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.node.args[1])


@handles("aten.histc")
def _histc(ctx: TorchNodeContext):
    """histc(x, bins=100, min=0, max=0): counts (f32) of x in `bins` equal bins over [min, max],
    x == max in the last bin, values outside not counted (torch.histc). min == max (torch then
    uses the data's own range) is refused."""
    x = _as(ctx, ctx.tensor(ctx.arg(0)), np.float32)
    bins = int(ctx.arg(1, 100, "bins"))
    lo, hi = float(ctx.arg(2, 0, "min")), float(ctx.arg(3, 0, "max"))
    if not hi > lo or bins < 1:
        raise ctx.error(f"histc with min={lo}, max={hi}, bins={bins} is not supported (needs "
                        "max > min and bins >= 1)")
    gb = ctx.gb
    flat = gb.reshape(x, (math.prod(shape(x)),))
    n = shape(flat)[0]
    inside = gb.binary("and", gb.binary("ge", flat, np.float32(lo)),
                       gb.binary("le", flat, np.float32(hi)))
    # torch: bin = (x - min) * bins / (max - min), truncated, x == max into the last bin
    pos = gb.map(lambda s, v: s.mul(s.sub(v, s.const(lo, v.type)), s.const(bins, v.type)), [flat])
    pos = gb.binary("min", gb.cast(gb.binary("div", pos, np.float32(hi - lo)), np.int64),
                    np.int64(bins - 1))
    hits = gb.binary("and", gb.binary("eq", gb.reshape(pos, (1, n)),
                                      np.arange(bins, dtype=np.int64).reshape(bins, 1)),
                     gb.reshape(inside, (1, n)))
    return gb.reduce(gb.where(hits, np.float32(1), np.float32(0)), [1], "sum")


@handles("aten.convolution", "aten.conv1d")
def _conv1d(ctx: TorchNodeContext):
    """Depthwise 1-D convolution (conv1d.py): input [N, C, L] (or [C, L]), weight [C*m, 1, K],
    groups == C, int or "valid" / "same" padding, stride, dilation, optional bias. Other
    convolutions (2-D, transposed, groups != C) are one-line errors."""
    x, w, bias = ctx.arg(0), ctx.arg(1), ctx.arg(2, None, "bias")
    conv = op_name(ctx.node.target) == "aten.convolution"
    stride = ctx.arg(3, [1], "stride")
    padding = ctx.arg(4, [0], "padding")
    dilation = ctx.arg(5, [1], "dilation")
    groups = ctx.arg(8 if conv else 6, 1, "groups")
    if conv and (ctx.arg(6, False, "transposed")):
        raise ctx.error("transposed convolution is not supported")
    ws = shape(w)
    xs = shape(x)
    if len(ws) != 3:
        raise ctx.error(f"only 1-D convolution is supported; the weight has shape {list(ws)}")
    unbatched = len(xs) == 2
    if unbatched:
        x = ctx.gb.reshape(ctx.tensor(x), (1,) + xs)
        xs = (1,) + xs
    c, k = xs[1], ws[2]
    if groups != c or ws[1] != 1 or ws[0] % c:
        raise ctx.error(f"only depthwise conv1d is supported (groups == in_channels, weight "
                        f"[in_channels * m, 1, K]); got groups={groups}, input {list(xs)}, "
                        f"weight {list(ws)}")
    stride, dilation = _one(ctx, stride, "stride"), _one(ctx, dilation, "dilation")
    if isinstance(padding, str):
        total = dilation * (k - 1) if padding == "same" else 0
        if padding == "same" and stride != 1:
            raise ctx.error("padding='same' needs stride 1")
        pads = (total // 2, total - total // 2)
    else:
        pads = (_one(ctx, padding, "padding"),) * 2
    if stride < 1 or dilation < 1 or min(pads) < 0:
        raise ctx.error(f"conv1d stride {stride}, dilation {dilation} and padding {pads} must be "
                        "positive (padding >= 0)")
    if conv1d_output_length(xs[2], k, pads, stride, dilation) < 1:
        raise ctx.error(f"conv1d input of length {xs[2]} is shorter than the dilated kernel "
                        f"({dilation * (k - 1) + 1}) plus padding")
    out = depthwise_conv1d(ctx.gb, ctx.tensor(_as(ctx, x, np.float32)), w, bias, pads, stride,
                           dilation)
    return ctx.gb.reshape(out, ctx.out_shape) if unbatched else out


def _one(ctx: TorchNodeContext, value, what: str) -> int:
    values = [value] if isinstance(value, int) else list(value)
    if len(values) != 1:
        raise ctx.error(f"only 1-D convolution is supported; {what} is {values}")
    return int(values[0])


@handles("aten.scaled_dot_product_attention")
def _sdpa(ctx: TorchNodeContext):
    """softmax(Q K^T * scale + mask) V; grouped K/V heads when enable_gqa."""
    gb = ctx.gb
    q, k, v = (ctx.tensor(ctx.arg(i)) for i in range(3))
    mask = ctx.arg(3, None, "attn_mask")
    is_causal = ctx.arg(5, False, "is_causal")
    scale = ctx.arg(6, None, "scale")
    qs, ks, vs = shape(q), shape(k), shape(v)
    d, sq, sk = qs[-1], qs[-2], ks[-2]
    scale = scale if scale is not None else 1.0 / math.sqrt(d)
    if len(qs) == 4 and qs[1] != ks[1]:
        rep = qs[1] // ks[1]
        bsz, hk = ks[0], ks[1]
        k = gb.reshape(gb.broadcast_to(gb.reshape(k, (bsz, hk, 1, sk, d)), (bsz, hk, rep, sk, d)),
                       (bsz, hk * rep, sk, d))
        v = gb.reshape(gb.broadcast_to(gb.reshape(v, (bsz, hk, 1, sk, vs[-1])),
                                       (bsz, hk, rep, sk, vs[-1])), (bsz, hk * rep, sk, vs[-1]))
    kt = gb.transpose(k, list(range(len(ks) - 2)) + [len(ks) - 1, len(ks) - 2])
    scores = gb.binary("mul", gb.matmul(q, kt), np.float32(scale))
    if is_causal:
        scores = gb.where(np.tril(np.ones((sq, sk), bool)), scores, np.float32(-np.inf))
    if mask is not None:
        if dtype(mask) == np.bool_:
            scores = gb.where(mask, scores, np.float32(-np.inf))
        else:
            scores = gb.binary("add", scores, mask)
    return gb.matmul(gb.softmax(scores, -1), v)
