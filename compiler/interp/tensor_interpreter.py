"""numpy implementations of the upstream ops lutc's tensor-level IR uses, for xDSL's interpreter.

xDSL's own impls evaluate tensors element by element on ShapedArray; lutc's IR holds whole
layers, so these run each linalg op as whole-array numpy (bodies are interpreted once, on
arrays broadcast over the iteration space). They are registered with override=True.
Scalar values are numpy scalars; tensors are numpy arrays.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from xdsl.dialects import arith, builtin, func, math, tensor
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    TensorType,
)
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    impl,
    impl_terminator,
    register_impls,
)
from xdsl.ir import Attribute, Operation

from lutc.compiler.codegen import lane_reduction
from lutc.dialects.dtypes import numpy_dtype
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr




def _cast(value: Any, typ: Attribute) -> Any:
    dtype = numpy_dtype(typ)
    return np.asarray(value).astype(dtype) if isinstance(value, np.ndarray) else dtype.type(value)


_CMPF = {
    0: lambda a, b: np.zeros(np.broadcast(a, b).shape, bool),
    1: np.equal, 2: np.greater, 3: np.greater_equal, 4: np.less, 5: np.less_equal,
    6: lambda a, b: np.not_equal(a, b) & ~np.isnan(a) & ~np.isnan(b),
    7: lambda a, b: ~np.isnan(a) & ~np.isnan(b),
    8: lambda a, b: np.equal(a, b) | np.isnan(a) | np.isnan(b),
    9: lambda a, b: ~np.less_equal(a, b), 10: lambda a, b: ~np.less(a, b),
    11: lambda a, b: ~np.greater_equal(a, b), 12: lambda a, b: ~np.greater(a, b),
    13: np.not_equal, 14: lambda a, b: np.isnan(a) | np.isnan(b),
    15: lambda a, b: np.ones(np.broadcast(a, b).shape, bool),
}
_CMPI = {0: np.equal, 1: np.not_equal, 2: np.less, 3: np.less_equal, 4: np.greater,
         5: np.greater_equal, 6: np.less, 7: np.less_equal, 8: np.greater, 9: np.greater_equal}


def _unsigned(x):
    x = np.asarray(x)
    return x.astype(np.dtype(f"uint{x.dtype.itemsize * 8}")) if x.dtype.kind == "i" else x


def _erf(x):
    from math import erf

    return np.vectorize(erf, otypes=[np.asarray(x).dtype])(x)


_ELEMENTWISE: dict[type[Operation], Any] = {
    arith.AddfOp: np.add, arith.SubfOp: np.subtract, arith.MulfOp: np.multiply,
    arith.DivfOp: np.divide, arith.AddiOp: np.add, arith.SubiOp: np.subtract,
    arith.MuliOp: np.multiply, arith.DivSIOp: lambda a, b: np.trunc(a / b).astype(np.result_type(a, b)),
    arith.FloorDivSIOp: np.floor_divide, arith.RemSIOp: np.fmod,
    arith.MaximumfOp: np.maximum, arith.MinimumfOp: np.minimum,
    arith.MaxnumfOp: np.fmax, arith.MinnumfOp: np.fmin,
    arith.MaxSIOp: np.maximum, arith.MinSIOp: np.minimum,
    arith.AndIOp: np.bitwise_and, arith.OrIOp: np.bitwise_or, arith.XOrIOp: np.bitwise_xor,
    arith.ShLIOp: np.left_shift, arith.ShRSIOp: np.right_shift,
    arith.NegfOp: np.negative,
    arith.ShRUIOp: lambda a, b: _unsigned(a) >> _unsigned(b),
    arith.DivUIOp: lambda a, b: _unsigned(a) // _unsigned(b),
    arith.RemUIOp: lambda a, b: _unsigned(a) % _unsigned(b),
    math.ExpOp: np.exp, math.LogOp: np.log, math.SqrtOp: np.sqrt,
    math.RsqrtOp: lambda x: (1 / np.sqrt(x)).astype(np.asarray(x).dtype),
    math.TanhOp: np.tanh, math.SinOp: np.sin, math.CosOp: np.cos, math.AbsFOp: np.abs,
    math.PowFOp: np.power, math.ErfOp: _erf, math.FloorOp: np.floor, math.CeilOp: np.ceil,
    math.RoundEvenOp: np.rint, math.RoundOp: lambda x: np.trunc(x + np.copysign(0.5, x)),
    math.Log2Op: np.log2, math.Exp2Op: np.exp2, math.TruncOp: np.trunc,
}
_CONVERSIONS = (arith.SIToFPOp, arith.UIToFPOp, arith.FPToSIOp, arith.FPToUIOp, arith.ExtFOp,
                arith.TruncFOp, arith.ExtSIOp, arith.TruncIOp, arith.IndexCastOp)


def _map_view(array: np.ndarray, exprs, rank: int) -> np.ndarray:
    """View `array` on an iteration space of `rank` dims through an indexing map's results."""
    index: list[Any] = []
    dims: list[int] = []
    for expr in exprs:
        if isinstance(expr, AffineDimExpr):
            index.append(slice(None))
            dims.append(expr.position)
        elif isinstance(expr, AffineConstantExpr):
            index.append(expr.value)
        else:
            raise NotImplementedError(f"indexing map result {expr} is not a dim or a constant")
    view = array[tuple(index)]
    order = sorted(range(len(dims)), key=lambda i: dims[i])
    view = np.transpose(view, order)
    shape = [1] * rank
    for i in order:
        shape[dims[i]] = view.shape[order.index(i)]
    return view.reshape(shape)


def _loop_sizes(op: linalg.GenericOp, operands: list[np.ndarray]) -> list[int]:
    maps = [m.data for m in op.indexing_maps.data]
    sizes = [1] * maps[0].num_dims
    for amap, value in zip(maps, operands):
        for axis, expr in enumerate(amap.results):
            if isinstance(expr, AffineDimExpr):
                sizes[expr.position] = np.shape(value)[axis]
    return sizes


class TensorFunctions(InterpreterFunctions):
    """Whole-array numpy semantics of arith/math/linalg/tensor ops."""

    def __init__(self) -> None:
        self._domains: list[list[int]] = []

    # -- arith / math ---------------------------------------------------------
    @impl(arith.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: arith.ConstantOp, args: PythonValues):
        value = op.value
        if isinstance(value, DenseIntOrFPElementsAttr):
            typ = value.type
            data = np.array(value.get_values(), dtype=numpy_dtype(typ))
            shape = typ.get_shape()
            return (np.broadcast_to(data, shape).copy() if data.size == 1 else data.reshape(shape),)
        if isinstance(value, (IntegerAttr, FloatAttr)):
            return (_cast(value.value.data, op.result.type),)
        raise NotImplementedError(f"arith.constant of {value}")

    @impl(arith.CmpfOp)
    def run_cmpf(self, interpreter: Interpreter, op: arith.CmpfOp, args: PythonValues):
        return (_CMPF[op.predicate.value.data](args[0], args[1]),)

    @impl(arith.CmpiOp)
    def run_cmpi(self, interpreter: Interpreter, op: arith.CmpiOp, args: PythonValues):
        return (_CMPI[op.predicate.value.data](args[0], args[1]),)

    @impl(arith.SelectOp)
    def run_select(self, interpreter: Interpreter, op: arith.SelectOp, args: PythonValues):
        return (np.where(args[0], args[1], args[2]).astype(numpy_dtype(op.result.type)),)

    @impl(math.FmaOp)
    def run_fma(self, interpreter: Interpreter, op: math.FmaOp, args: PythonValues):
        return (args[0] * args[1] + args[2],)

    def _run_elementwise(self, interpreter: Interpreter, op: Operation, args: PythonValues):
        result = _ELEMENTWISE[type(op)](*args)
        return (_cast(result, op.results[0].type),)

    def _run_conversion(self, interpreter: Interpreter, op: Operation, args: PythonValues):
        value = args[0]
        if isinstance(op, (arith.FPToSIOp, arith.FPToUIOp)):
            value = np.trunc(value)
        return (_cast(value, op.results[0].type),)

    # -- linalg ---------------------------------------------------------------
    @impl(linalg.GenericOp)
    def run_generic(self, interpreter: Interpreter, op: linalg.GenericOp, args: PythonValues):
        n_in = len(op.inputs)
        ins, outs = list(args[:n_in]), [np.array(o, copy=True) for o in args[n_in:]]
        maps = [m.data for m in op.indexing_maps.data]
        sizes = _loop_sizes(op, ins + outs)
        rank = len(sizes)
        reduction = [i for i, it in enumerate(op.iterator_types.data)
                     if it.data.value == "reduction"]
        views = [_map_view(np.asarray(v), maps[i].results, rank) for i, v in enumerate(ins)]
        self._domains.append(sizes)
        try:
            if not reduction:
                results = interpreter.run_ssacfg_region(
                    op.body, views + [_map_view(o, maps[n_in + i].results, rank)
                                      for i, o in enumerate(outs)])
                return tuple(self._store(r, o, maps[n_in + i].results, rank, sizes)
                             for i, (r, o) in enumerate(zip(results, outs)))
            return self._run_reduction(interpreter, op, views, outs, maps[n_in:], sizes, reduction)
        finally:
            self._domains.pop()

    @staticmethod
    def _store(result, out: np.ndarray, exprs, rank: int, sizes: list[int]) -> np.ndarray:
        full = np.broadcast_to(result, [s for s in sizes])
        dims = [e.position for e in exprs if isinstance(e, AffineDimExpr)]  # constants: size 1
        moved = np.transpose(full, dims + [d for d in range(rank) if d not in dims])
        moved = moved.reshape(moved.shape[: len(dims)] + (-1,))[..., 0]
        return moved.astype(out.dtype).reshape(out.shape)

    def _run_reduction(self, interpreter, op, views, outs, out_maps, sizes, reduction):
        """Reductions run sequentially over the reduced dims, vectorised over the others."""
        rank = len(sizes)
        parallel_sizes = [1 if d in reduction else s for d, s in enumerate(sizes)]
        accs = [_map_view(o, m.results, rank) * np.ones(parallel_sizes, o.dtype)
                for o, m in zip(outs, out_maps)]
        contraction = _contraction_einsum(op, views, accs, sizes, reduction)
        lanes = lane_reduction.match(op, sizes) if contraction is None else None
        if contraction is not None:
            accs = contraction
        elif lanes is not None:
            accs = [self._lane_sum(interpreter, op, views, accs[0], sizes, lanes.dim)]
        else:
            for point in itertools.product(*[range(sizes[d]) for d in reduction]):
                accs = self._reduction_step(interpreter, op, views, accs, sizes,
                                            dict(zip(reduction, point)))
        self._offsets = {}
        return tuple(self._store(np.broadcast_to(a, parallel_sizes), o, m.results, rank,
                                 parallel_sizes) for a, o, m in zip(accs, outs, out_maps))

    def _reduction_step(self, interpreter, op, views, accs, sizes, point: dict[int, int]):
        """The body at one point of the reduced dims ({dim: index}), vectorised over the
        others, accumulating into `accs`."""
        index = [slice(point[d], point[d] + 1) if d in point else slice(None)
                 for d in range(len(sizes))]
        # an operand that does not vary along a reduced dim (size 1 there) is read at 0 on
        # every step of it
        sliced = [v[tuple(slice(0, 1) if d in point and v.shape[d] == 1 else ix
                          for d, ix in enumerate(index))] if v.ndim else v for v in views]
        self._domains[-1] = [1 if d in point else s for d, s in enumerate(sizes)]
        self._offsets = point
        return [np.asarray(a) for a in interpreter.run_ssacfg_region(op.body, sliced + accs)]

    def _lane_sum(self, interpreter, op, views, init, sizes, dim: int):
        """A sum over `dim` in the C emitter's order (compiler/codegen/lane_reduction.py):
        LANES partial sums from 0, their binary tree, the remaining iterations in order, then
        the initial value; each add in the output's precision, as the compiled C does it."""
        n, width = sizes[dim], lane_reduction.LANES
        whole = n // width * width
        lanes = [np.zeros_like(init)] * width
        for i in range(whole):
            lanes[i % width] = self._reduction_step(interpreter, op, views, [lanes[i % width]],
                                                    sizes, {dim: i})[0]
        w = width // 2
        while w:
            lanes[:w] = [(lanes[k] + lanes[k + w]).astype(init.dtype) for k in range(w)]
            w //= 2
        total = lanes[0]
        for i in range(whole, n):
            total = self._reduction_step(interpreter, op, views, [total], sizes, {dim: i})[0]
        return (init + total).astype(init.dtype)

    _offsets: dict[int, int] = {}

    @impl(linalg.IndexOp)
    def run_index(self, interpreter: Interpreter, op: linalg.IndexOp, args: PythonValues):
        sizes = self._domains[-1]
        dim = op.dim.value.data
        shape = [1] * len(sizes)
        shape[dim] = sizes[dim]
        return (np.arange(sizes[dim], dtype=np.int64).reshape(shape) + self._offsets.get(dim, 0),)

    @impl_terminator(linalg.YieldOp)
    def run_yield(self, interpreter: Interpreter, op: linalg.YieldOp, args: PythonValues):
        return ReturnedValues(args), ()

    @impl(linalg.MatmulOp)
    def run_matmul(self, interpreter: Interpreter, op: linalg.MatmulOp, args: PythonValues):
        a, b, c = args
        return ((c + np.matmul(a.astype(np.float64), b).astype(c.dtype)).astype(c.dtype),)

    @impl(linalg.FillOp)
    def run_fill(self, interpreter: Interpreter, op: linalg.FillOp, args: PythonValues):
        out = args[1]
        return (np.full(out.shape, args[0], dtype=out.dtype),)

    @impl(linalg.TransposeOp)
    def run_transpose(self, interpreter: Interpreter, op: linalg.TransposeOp, args: PythonValues):
        return (np.ascontiguousarray(np.transpose(args[0], op.permutation.get_values())),)

    @impl(linalg.BroadcastOp)
    def run_broadcast(self, interpreter: Interpreter, op: linalg.BroadcastOp, args: PythonValues):
        src, out = args
        dims = op.dimensions.get_values()
        shape = [1 if d in dims else s for d, s in enumerate(out.shape)]
        return (np.broadcast_to(src.reshape(shape), out.shape).astype(out.dtype).copy(),)

    # -- tensor ---------------------------------------------------------------
    @impl(tensor.EmptyOp)
    def run_empty(self, interpreter: Interpreter, op: tensor.EmptyOp, args: PythonValues):
        typ = op.tensor.type
        return (np.zeros(typ.get_shape(), numpy_dtype(typ)),)

    @impl(tensor.CollapseShapeOp)
    def run_collapse(self, interpreter: Interpreter, op: tensor.CollapseShapeOp, args):
        return (np.reshape(args[0], op.result.type.get_shape()),)

    @impl(tensor.ExpandShapeOp)
    def run_expand(self, interpreter: Interpreter, op: tensor.ExpandShapeOp, args):
        return (np.reshape(args[0], op.result.type.get_shape()),)

    @impl(tensor.ReshapeOp)
    def run_reshape(self, interpreter: Interpreter, op: tensor.ReshapeOp, args):
        return (np.reshape(args[0], op.result.type.get_shape()),)

    @impl(tensor.CastOp)
    def run_tensor_cast(self, interpreter: Interpreter, op: tensor.CastOp, args):
        return (args[0],)

    @impl(tensor.ExtractSliceOp)
    def run_extract_slice(self, interpreter: Interpreter, op: tensor.ExtractSliceOp, args):
        index = tuple(slice(o, o + s * st, st) for o, s, st in zip(
            op.static_offsets.get_values(), op.static_sizes.get_values(),
            op.static_strides.get_values()))
        return (np.reshape(args[0][index], op.result.type.get_shape()).copy(),)

    @impl(tensor.InsertSliceOp)
    def run_insert_slice(self, interpreter: Interpreter, op: tensor.InsertSliceOp, args):
        source, dest = args[0], np.array(args[1], copy=True)
        index = tuple(slice(o, o + s * st, st) for o, s, st in zip(
            op.static_offsets.get_values(), op.static_sizes.get_values(),
            op.static_strides.get_values()))
        dest[index] = np.reshape(source, dest[index].shape)
        return (dest,)

    @impl(tensor.ConcatOp)
    def run_concat(self, interpreter: Interpreter, op: tensor.ConcatOp, args):
        return (np.concatenate(args, axis=op.dim.value.data),)

    @impl(tensor.ExtractOp)
    def run_extract(self, interpreter: Interpreter, op: tensor.ExtractOp, args):
        source, *indices = args
        return (source[tuple(np.asarray(i, dtype=np.int64) for i in indices)],)

    @impl(tensor.SplatOp)
    def run_splat(self, interpreter: Interpreter, op: tensor.SplatOp, args):
        typ = op.result.type
        return (np.full(typ.get_shape(), args[0], numpy_dtype(typ)),)

    @impl(tensor.FromElementsOp)
    def run_from_elements(self, interpreter: Interpreter, op: tensor.FromElementsOp, args):
        typ = op.result.type
        return (np.array(args, numpy_dtype(typ)).reshape(typ.get_shape()),)


def _table_impl(op_type: type[Operation], body):
    def run(self, interpreter: Interpreter, op: Operation, args: PythonValues):
        return body(self, interpreter, op, args)

    return impl(op_type)(run)


for _op in _ELEMENTWISE:
    setattr(TensorFunctions, f"run_{_op.__name__}", _table_impl(_op, TensorFunctions._run_elementwise))
for _op in _CONVERSIONS:
    setattr(TensorFunctions, f"run_{_op.__name__}", _table_impl(_op, TensorFunctions._run_conversion))
register_impls(TensorFunctions)


_COMBINERS = {arith.AddfOp: np.add, arith.AddiOp: np.add}


def _contraction_einsum(op: linalg.GenericOp, views, accs, sizes, reduction):
    """Fast path for `out += a * b` bodies (batched matmuls): one einsum."""
    block = op.body.block
    ops = list(block.ops)
    if len(ops) != 3 or len(views) != 2 or len(accs) != 1:
        return None
    mul, add, yld = ops
    if not (isinstance(mul, arith.MulfOp) and isinstance(add, arith.AddfOp)):
        return None
    a_arg, b_arg, out_arg = block.args
    if {mul.lhs, mul.rhs} != {a_arg, b_arg} or {add.lhs, add.rhs} != {out_arg, mul.result} \
            or yld.operands[0] != add.result:
        return None
    letters = "abcdefghijklmnopqrstuvwxyz"
    rank = len(sizes)
    operands, subscripts = [], []
    for view in views:  # squeeze broadcast dims so einsum sees each operand's own axes
        keep = [d for d in range(rank) if view.shape[d] != 1 or sizes[d] == 1]
        operands.append(view.reshape([view.shape[d] for d in keep]).astype(np.float64))
        subscripts.append("".join(letters[d] for d in keep))
    result = "".join(letters[d] for d in range(rank) if d not in reduction)
    if not set(result) <= set("".join(subscripts)):
        return None
    prod = np.einsum(f"{subscripts[0]},{subscripts[1]}->{result}", *operands, optimize=True)
    out = accs[0]
    return [(out + np.expand_dims(prod, reduction)).astype(out.dtype)]
