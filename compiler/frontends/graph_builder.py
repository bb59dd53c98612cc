"""Builds lutc's graph-level IR (func + linalg + tensor + arith + math + lut) on static shapes.

Both frontends translate model nodes through this API, so the IR contract lives in one place:
- elementwise / broadcasting / reduction / gather math is `linalg.generic` whose indexing maps
  are dims or the constant 0 (size-1 broadcast dims), bodies of `arith`/`math` ops;
- 2-D products are `linalg.matmul` on a zero `linalg.fill`; batched products are a
  `linalg.generic` contraction (mulf + addf);
- every linear layer is `transpose(W[N, K]) -> matmul`, where W is a `lut.weight` (float) or a
  `lut.dequantize` of low-bit codes (the form `lut-lower-mpgemm` matches);
- reshapes are `tensor.collapse_shape` / `tensor.expand_shape`;
- tensors over 16 elements become `lut.weight`s in the weight store, smaller ones `arith.constant`.

Operands may be SSA values or numpy constants (scalars go into generic bodies as constants).
Element types: f32 (activations), i64 (integers), i1 (booleans).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith, func
from xdsl.dialects import math as mathd
from xdsl.dialects import tensor
from xdsl.dialects.linalg.attrs import IteratorTypeAttr
from xdsl.dialects.linalg.ops import (
    FillOp,
    GenericOp,
    IndexOp,
    MatmulOp,
    TransposeOp,
    YieldOp,
)
from xdsl.dialects.builtin import (
    AffineMapAttr,
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    f32,
    i1,
    i64,
)
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.rewriter import InsertPoint

from lutc.runtime.errors import LutcError
from lutc.compiler.frontends.quantize import QuantizedWeight
from lutc.compiler.weight_store import WeightStore
from lutc.dialects.lut_ops import DequantizeOp, WeightOp
from lutc.dialects.weight_format import WeightFormatAttr

MAX_TENSOR_ELEMENTS_ENV = "LUTC_MAX_TENSOR_ELEMENTS"
DEFAULT_MAX_TENSOR_ELEMENTS = 2**32


def max_tensor_elements() -> int:
    """The cap on one tensor's element count (inputs, constants, every value the graph
    computes): 2^32 unless LUTC_MAX_TENSOR_ELEMENTS (or the CLI's --max-tensor-elements, which
    sets it) raises or lowers it."""
    text = os.environ.get(MAX_TENSOR_ELEMENTS_ENV, "")
    if not text:
        return DEFAULT_MAX_TENSOR_ELEMENTS
    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if value <= 0:
        raise LutcError(f"{MAX_TENSOR_ELEMENTS_ENV}={text!r} must be a positive integer")
    return value


def check_tensor_size(shape: Sequence[int], what: str) -> None:
    """A user error when `what` (e.g. "input 'x'") would hold more elements than the cap."""
    count = math.prod(int(d) for d in shape)
    cap = max_tensor_elements()
    if count > cap:
        raise LutcError(f"{what} has shape {list(map(int, shape))} = {count} elements "
                        f"({count / 2**30:.4g} Gi), over the limit of {cap} elements per tensor "
                        f"(raise it with --max-tensor-elements N or {MAX_TENSOR_ELEMENTS_ENV}=N)")


MAX_INLINE_ELEMENTS = 16  # larger constants go to the weight store as `lut.weight`
i8 = IntegerType(8)

Operand = SSAValue | np.ndarray | float | int | bool


# -- types ----------------------------------------------------------------------------------


def shape_of(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType), typ
    return tuple(typ.get_shape())


def elem_of(value: SSAValue) -> Attribute:
    typ = value.type
    assert isinstance(typ, TensorType), typ
    return typ.get_element_type()


def element_type(dtype: np.dtype | type) -> Attribute:
    """The IR element type lutc uses for a numpy dtype (floats f32, integers i64, bool i1)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return i1
    if np.issubdtype(dtype, np.floating):
        return f32
    if np.issubdtype(dtype, np.integer):
        return i64
    raise LutcError(f"tensors of element type {dtype} are not supported")


def storage_dtype(elem: Attribute) -> np.dtype:
    """How the frontends store a constant of element type `elem` (i8 weight codes as uint8)."""
    if isinstance(elem, Float32Type):
        return np.dtype(np.float32)
    if elem == i1:
        return np.dtype(np.bool_)
    if elem == i8:
        return np.dtype(np.uint8)
    if isinstance(elem, IntegerType):
        return np.dtype(np.int64)
    raise AssertionError(f"no numpy dtype for {elem}")


def canonical_array(array: np.ndarray) -> np.ndarray:
    """A numpy array in one of lutc's element types (float32, int64, bool)."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":  # ml_dtypes: int4/uint4/int2, bfloat16, float8
        integer = array.dtype.name.startswith(("int", "uint"))
        return array.astype(np.int64 if integer else np.float32)
    return array.astype(storage_dtype(element_type(array.dtype)), copy=False)


def tensor_type(shape: Sequence[int], elem: Attribute) -> TensorType:
    return TensorType(elem, list(shape))


def _is_float(elem: Attribute) -> bool:
    return isinstance(elem, Float32Type)


def _affine_map(num_dims: int, results: Sequence[int | None]) -> AffineMapAttr:
    """A map (d0..dn) -> (results), where None stands for the constant 0."""
    exprs = tuple(
        AffineExpr.constant(0) if r is None else AffineExpr.dimension(r) for r in results
    )
    return AffineMapAttr(AffineMap(num_dims, 0, exprs))


def _reassociation(groups: Sequence[Sequence[int]]) -> ArrayAttr:
    return ArrayAttr([ArrayAttr([IntegerAttr(i, 64) for i in g]) for g in groups])


def _group_dims(src: Sequence[int], dst: Sequence[int]) -> list[list[int]] | None:
    """Group consecutive `src` dims so that group products are `dst` (a collapse src -> dst)."""
    groups: list[list[int]] = []
    i = 0
    for d in dst:
        group: list[int] = []
        prod = 1
        while i < len(src) and not (group and prod == d):
            group.append(i)
            prod *= src[i]
            i += 1
            if prod > d:
                return None
        if prod != d or not group:
            return None
        groups.append(group)
    if i < len(src):  # trailing unit dims join the last group
        if not groups or any(src[j] != 1 for j in range(i, len(src))):
            return None
        groups[-1].extend(range(i, len(src)))
    return groups


# -- scalar bodies ---------------------------------------------------------------------------


class ScalarBuilder:
    """Builds the scalar body of a `linalg.generic`: arith/math ops dispatched on element type."""

    def __init__(self, builder: Builder):
        self.b = builder

    def insert(self, op):
        self.b.insert(op)
        return op.results[0] if op.results else op

    def const(self, value: float | int | bool, elem: Attribute) -> SSAValue:
        if _is_float(elem):
            return self.insert(arith.ConstantOp(FloatAttr(float(value), f32)))
        if elem == i1:
            return self.insert(arith.ConstantOp(IntegerAttr(int(bool(value)), i1)))
        return self.insert(arith.ConstantOp(IntegerAttr(int(value), elem)))

    def index(self, dim: int) -> SSAValue:
        return self.insert(IndexOp(dim))

    def index_to_i64(self, v: SSAValue) -> SSAValue:
        return self.insert(arith.IndexCastOp(v, i64))

    def to_index(self, v: SSAValue) -> SSAValue:
        return self.insert(arith.IndexCastOp(v, IndexType()))

    # arithmetic
    def add(self, a, b):
        if _is_float(a.type):
            return self.insert(arith.AddfOp(a, b))
        if a.type == i1:
            return self.insert(arith.OrIOp(a, b))
        return self.insert(arith.AddiOp(a, b))

    def sub(self, a, b):
        if _is_float(a.type):
            return self.insert(arith.SubfOp(a, b))
        return self.insert(arith.SubiOp(a, b))

    def mul(self, a, b):
        if _is_float(a.type):
            return self.insert(arith.MulfOp(a, b))
        if a.type == i1:
            return self.insert(arith.AndIOp(a, b))
        return self.insert(arith.MuliOp(a, b))

    def div(self, a, b):
        if _is_float(a.type):
            return self.insert(arith.DivfOp(a, b))
        return self.insert(arith.DivSIOp(a, b))

    def max(self, a, b):
        if _is_float(a.type):
            return self.insert(arith.MaximumfOp(a, b))
        if a.type == i1:
            return self.insert(arith.OrIOp(a, b))
        return self.insert(arith.MaxSIOp(a, b))

    def min(self, a, b):
        if _is_float(a.type):
            return self.insert(arith.MinimumfOp(a, b))
        if a.type == i1:
            return self.insert(arith.AndIOp(a, b))
        return self.insert(arith.MinSIOp(a, b))

    def neg(self, a):
        if _is_float(a.type):
            return self.insert(arith.NegfOp(a))
        return self.sub(self.const(0, a.type), a)

    def pow(self, a, b):
        return self.insert(mathd.PowFOp(a, b))

    def sqrt(self, a):
        return self.insert(mathd.SqrtOp(a))

    def rsqrt(self, a):
        return self.insert(mathd.RsqrtOp(a))

    def exp(self, a):
        return self.insert(mathd.ExpOp(a))

    def log(self, a):
        return self.insert(mathd.LogOp(a))

    def round(self, a):
        """Round half to even (torch.round, numpy.rint)."""
        return self.insert(mathd.RoundEvenOp(a))

    def floor(self, a):
        return self.insert(mathd.FloorOp(a))

    def tanh(self, a):
        return self.insert(mathd.TanhOp(a))

    def erf(self, a):
        return self.insert(mathd.ErfOp(a))

    def cos(self, a):
        return self.insert(mathd.CosOp(a))

    def sin(self, a):
        return self.insert(mathd.SinOp(a))

    def abs(self, a):
        if _is_float(a.type):
            return self.insert(mathd.AbsFOp(a))
        return self.insert(mathd.AbsIOp(a))

    def reciprocal(self, a):
        return self.div(self.const(1.0, a.type), a)

    def sigmoid(self, a):
        one = self.const(1.0, a.type)
        return self.div(one, self.add(one, self.exp(self.neg(a))))

    def relu(self, a):
        return self.max(a, self.const(0, a.type))

    def softplus(self, a):
        """log(1 + exp(a)) without overflow: max(a, 0) + log1p(exp(-|a|)), with log1p(t) as
        log(u) * t / (u - 1) for u = 1 + t (exact to f32 rounding for tiny t; Goldberg, "What
        every computer scientist should know about floating-point arithmetic", thm. 4)."""
        t = self.exp(self.neg(self.abs(a)))
        one = self.const(1.0, a.type)
        u = self.add(one, t)
        log1p = self.select(self.cmp("eq", u, one), t,
                            self.div(self.mul(self.log(u), t), self.sub(u, one)))
        return self.add(self.relu(a), log1p)

    # comparisons and logic
    _CMPF = {"eq": "oeq", "ne": "une", "lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge"}
    _CMPI = {"eq": "eq", "ne": "ne", "lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge"}

    def cmp(self, pred: str, a, b):
        if _is_float(a.type):
            return self.insert(arith.CmpfOp(a, b, self._CMPF[pred]))
        return self.insert(arith.CmpiOp(a, b, self._CMPI[pred]))

    def isnan(self, a):
        return self.insert(arith.CmpfOp(a, a, "uno"))

    def logical_and(self, a, b):
        return self.insert(arith.AndIOp(a, b))

    def logical_or(self, a, b):
        return self.insert(arith.OrIOp(a, b))

    def logical_xor(self, a, b):
        return self.insert(arith.XOrIOp(a, b))

    def logical_not(self, a):
        return self.insert(arith.XOrIOp(a, self.const(True, i1)))

    def select(self, c, a, b):
        return self.insert(arith.SelectOp(c, a, b))

    def cast(self, a, elem: Attribute):
        src = a.type
        if src == elem:
            return a
        if _is_float(elem):
            if src == i1:
                return self.insert(arith.UIToFPOp(a, f32))
            return self.insert(arith.SIToFPOp(a, f32))
        if elem == i1:
            return self.cmp("ne", a, self.const(0, src))
        if _is_float(src):
            return self.insert(arith.FPToSIOp(a, elem))
        if src == i1:
            return self.insert(arith.ExtUIOp(a, elem))
        if src.width.data < elem.width.data:  # type: ignore[attr-defined]
            return self.insert(arith.ExtSIOp(a, elem))
        return self.insert(arith.TruncIOp(a, elem))


BodyFn = Callable[..., SSAValue]  # (ScalarBuilder, *scalar args) -> scalar result


# -- the graph builder ---------------------------------------------------------------------



def _wrapped_index(sb: "ScalarBuilder", raw: SSAValue, size: int) -> SSAValue:
    """An index element as an `index` value, negative ones wrapped by `size` (ONNX Gather /
    GatherElements: -1 is the last element)."""
    raw = sb.cast(raw, i64)
    neg = sb.cmp("lt", raw, sb.const(0, i64))
    return sb.to_index(sb.select(neg, sb.add(raw, sb.const(size, i64)), raw))

class GraphBuilder:
    """Accumulates one `func.func @main` on static-shape tensors."""

    def __init__(self, weights: WeightStore | None = None):
        self.weights = weights if weights is not None else WeightStore()
        self.block = Block()
        self.b = Builder(InsertPoint.at_end(self.block))
        self._weight_values: dict[int, tuple[np.ndarray, SSAValue]] = {}
        # names for constant arrays (by id), so their weights are named after the model's tensors
        self.name_hints: dict[int, tuple[np.ndarray, str]] = {}

    def name_constant(self, array: np.ndarray, name: str) -> None:
        """Name the weight that `array` becomes if it is ever materialized."""
        self.name_hints[id(array)] = (array, name)

    # -- signature -----------------------------------------------------------------------
    def add_input(self, shape: Sequence[int], dtype: np.dtype | type,
                  what: str = "an input", element: Attribute | None = None) -> SSAValue:
        """A function argument of `shape`; its element type is element_type(dtype), or
        `element` when given (e.g. f16 for an f16 KV cache)."""
        check_tensor_size(shape, what)
        typ = tensor_type(shape, element or element_type(dtype))
        return self.block.insert_arg(typ, len(self.block.args))

    def finish(self, outputs: Sequence[Operand]) -> ModuleOp:
        results = [self.value(o) for o in outputs]
        self.b.insert(func.ReturnOp(*results))
        fn = func.FuncOp(
            "main",
            ([a.type for a in self.block.args], [r.type for r in results]),
            Region(self.block),
        )
        module = ModuleOp([fn])
        # run_pipeline verifies the module once after its passes (seconds on a 30-layer model,
        # so not twice); LUTC_VERIFY_EACH=1 also checks the import itself
        if os.environ.get("LUTC_VERIFY_EACH") == "1":
            module.verify()
        return module

    def _insert(self, op) -> SSAValue:
        for r in op.results:
            if isinstance(r.type, TensorType):
                check_tensor_size(r.type.get_shape(), "the result")
        self.b.insert(op)
        return op.results[0]

    # -- constants -------------------------------------------------------------------------
    def weight(self, array: np.ndarray, hint: str, elem: Attribute | None = None) -> SSAValue:
        """A `lut.weight` holding `array` (the same array object is stored once)."""
        key = id(array)
        if key in self._weight_values and self._weight_values[key][0] is array:
            return self._weight_values[key][1]
        named = self.name_hints.get(key)
        if named is not None and named[0] is array:
            hint = named[1]
        stored = array if elem == i8 else canonical_array(array)
        name = self.weights.add(hint, stored)
        elem = elem or element_type(stored.dtype)
        value = self._insert(WeightOp(name, tensor_type(stored.shape, elem)))
        self._weight_values[key] = (array, value)
        return value

    def constant(self, array: np.ndarray | float | int | bool, hint: str = "const") -> SSAValue:
        """A tensor constant: `arith.constant` up to 16 elements, else a `lut.weight`; a
        larger one whose elements are all equal and that is no named model tensor (e.g. the
        zeros of torch's decomposed SDPA guard) is a `linalg.fill` instead (no weight bytes,
        and passes can see its value)."""
        array = np.asarray(array)
        if array.size > MAX_INLINE_ELEMENTS:
            named = self.name_hints.get(id(array))
            if named is None or named[0] is not array:
                flat = canonical_array(array).reshape(-1)
                if flat.dtype != object and bool((flat == flat[0]).all()):
                    return self.full(array.shape, flat[0].item(), element_type(flat.dtype))
            return self.weight(array, hint)
        array = canonical_array(array)
        elem = element_type(array.dtype)
        typ = tensor_type(array.shape, elem)
        if elem == i1:
            data = [int(v) for v in array.reshape(-1)]
        elif _is_float(elem):
            data = [float(v) for v in array.reshape(-1)]
        else:
            data = [int(v) for v in array.reshape(-1)]
        attr = DenseIntOrFPElementsAttr.from_list(typ, data)
        return self._insert(arith.ConstantOp(attr))

    def value(self, x: Operand, hint: str = "const") -> SSAValue:
        return x if isinstance(x, SSAValue) else self.constant(x, hint)

    def scalar(self, value: float | int | bool, elem: Attribute) -> SSAValue:
        """A scalar (not tensor) `arith.constant`, e.g. for `linalg.fill`."""
        return ScalarBuilder(self.b).const(value, elem)

    def empty(self, shape: Sequence[int], elem: Attribute) -> SSAValue:
        return self._insert(tensor.EmptyOp([], tensor_type(shape, elem)))

    def full(self, shape: Sequence[int], value: float | int | bool, elem: Attribute) -> SSAValue:
        fill_value = self.scalar(value, elem)
        return self._insert(FillOp([fill_value], [self.empty(shape, elem)]))

    # -- elementwise -----------------------------------------------------------------------
    def map(self, fn: BodyFn, operands: Sequence[Operand], out_elem: Attribute | None = None,
            out_shape: Sequence[int] | None = None) -> SSAValue:
        """An elementwise `linalg.generic` with numpy broadcasting.

        Scalar (size-1) numpy operands become constants inside the body; `fn` receives a
        ScalarBuilder and one scalar per operand and returns the scalar result.
        """
        tensors = [o for o in operands if isinstance(o, SSAValue)]
        # element type of scalar constants follows the tensor operands
        ref_elem = elem_of(tensors[0]) if tensors else None
        shapes = [shape_of(o) if isinstance(o, SSAValue) else np.shape(o) for o in operands]
        shape = tuple(np.broadcast_shapes(*shapes)) if out_shape is None else tuple(out_shape)
        inputs: list[SSAValue] = []
        slots: list[int | tuple[float | int | bool, Attribute]] = []
        for o in operands:
            if isinstance(o, SSAValue):
                slots.append(len(inputs))
                inputs.append(o)
                continue
            arr = np.asarray(o)
            if arr.size == 1:
                elem = element_type(arr.dtype)
                if ref_elem is not None and _is_float(ref_elem) and not _is_float(elem) \
                        and elem != i1:
                    elem = ref_elem
                slots.append((arr.reshape(()).item(), elem))
            else:
                slots.append(len(inputs))
                inputs.append(self.constant(arr))
        rank = len(shape)
        maps = []
        for v in inputs:
            vs = shape_of(v)
            off = rank - len(vs)
            maps.append(_affine_map(rank, [
                None if (d == 1 and shape[off + j] != 1) else off + j for j, d in enumerate(vs)
            ]))
        in_elems = [elem_of(v) for v in inputs]
        # infer the result element type by building the body once
        body = Block(arg_types=in_elems)
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        args = [body.args[s] if isinstance(s, int) else sb.const(*s) for s in slots]
        result = fn(sb, *args)
        if out_elem is not None and result.type != out_elem:
            result = sb.cast(result, out_elem)
        res_elem = result.type
        body.insert_arg(res_elem, len(body.args))  # the (unused) output element
        sb.insert(YieldOp(result))
        maps.append(_affine_map(rank, list(range(rank))))
        init = self.empty(shape, res_elem)
        op = GenericOp(
            inputs, [init], Region(body), maps,
            [IteratorTypeAttr.parallel()] * rank, [tensor_type(shape, res_elem)],
        )
        return self._insert(op)

    _BINARY = {
        "add": ScalarBuilder.add, "sub": ScalarBuilder.sub, "mul": ScalarBuilder.mul,
        "div": ScalarBuilder.div, "max": ScalarBuilder.max, "min": ScalarBuilder.min,
        "and": ScalarBuilder.logical_and, "or": ScalarBuilder.logical_or,
        "xor": ScalarBuilder.logical_xor,
    }
    _UNARY = {
        "neg": ScalarBuilder.neg, "sqrt": ScalarBuilder.sqrt, "rsqrt": ScalarBuilder.rsqrt,
        "exp": ScalarBuilder.exp, "log": ScalarBuilder.log, "tanh": ScalarBuilder.tanh,
        "erf": ScalarBuilder.erf, "cos": ScalarBuilder.cos, "sin": ScalarBuilder.sin,
        "abs": ScalarBuilder.abs, "reciprocal": ScalarBuilder.reciprocal,
        "sigmoid": ScalarBuilder.sigmoid, "relu": ScalarBuilder.relu,
        "softplus": ScalarBuilder.softplus,
        "not": ScalarBuilder.logical_not, "isnan": ScalarBuilder.isnan,
        "round": ScalarBuilder.round, "floor": ScalarBuilder.floor,
    }

    def binary(self, op: str, a: Operand, b: Operand) -> SSAValue:
        if op == "pow":
            return self.pow(a, b)
        if op in ScalarBuilder._CMPI:
            return self.map(lambda s, x, y: s.cmp(op, x, y), [a, b])
        return self.map(self._BINARY[op], [a, b])

    def unary(self, op: str, x: Operand) -> SSAValue:
        return self.map(self._UNARY[op], [x])

    def pow(self, a: Operand, b: Operand) -> SSAValue:
        if not isinstance(b, SSAValue) and np.size(b) == 1:
            e = float(np.asarray(b).reshape(()))
            if e == 1.0:
                return self.value(a)
            if e == 2.0:
                return self.map(lambda s, x: s.mul(x, x), [a])
            if e == 0.5:
                return self.map(ScalarBuilder.sqrt, [a])
            if e == -0.5:
                return self.map(ScalarBuilder.rsqrt, [a])
            if e == -1.0:
                return self.map(ScalarBuilder.reciprocal, [a])
        return self.map(ScalarBuilder.pow, [a, b])

    def where(self, cond: Operand, a: Operand, b: Operand) -> SSAValue:
        return self.map(lambda s, c, x, y: s.select(c, x, y), [cond, a, b])

    def cast(self, x: Operand, to: Attribute | np.dtype | type) -> SSAValue:
        """Convert elements to `to` (an element type or a numpy dtype)."""
        x = self.value(x)
        elem = to if isinstance(to, Attribute) else element_type(to)
        if elem_of(x) == elem:
            return x
        return self.map(lambda s, v: s.cast(v, elem), [x])

    def broadcast_to(self, x: Operand, shape: Sequence[int]) -> SSAValue:
        x = self.value(x)
        if shape_of(x) == tuple(shape):
            return x
        return self.map(lambda s, v: v, [x], out_shape=tuple(np.broadcast_shapes(
            shape_of(x), tuple(shape))))

    # -- reductions ------------------------------------------------------------------------
    def reduce(self, x: Operand, axes: Sequence[int], kind: str = "sum",
               keepdims: bool = False) -> SSAValue:
        """sum | mean | max | min | prod | any | all over `axes`; the init is a `linalg.fill`."""
        x = self.value(x)
        shape = shape_of(x)
        rank = len(shape)
        axes = sorted({a % rank for a in axes}) if rank else []
        elem = elem_of(x)
        if kind == "mean":
            total = self.reduce(x, axes, "sum", keepdims)
            count = math.prod(shape[a] for a in axes)
            return self.map(lambda s, v: s.mul(v, s.const(1.0 / count, f32)), [total])
        kept = [d for d in range(rank) if d not in axes]
        out_shape = [shape[d] for d in kept]
        init_value = {
            "sum": 0, "prod": 1, "any": False, "all": True,
            "max": -math.inf if _is_float(elem) else -(2**63),
            "min": math.inf if _is_float(elem) else 2**63 - 1,
        }[kind]
        init = self.full(out_shape, init_value, elem)
        body = Block(arg_types=[elem, elem])
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        combine = {"sum": sb.add, "prod": sb.mul, "max": sb.max, "min": sb.min,
                   "any": sb.logical_or, "all": sb.logical_and}[kind]
        sb.insert(YieldOp(combine(body.args[1], body.args[0])))
        op = GenericOp(
            [x], [init], Region(body),
            [_affine_map(rank, list(range(rank))), _affine_map(rank, kept)],
            [IteratorTypeAttr.reduction() if d in axes
             else IteratorTypeAttr.parallel() for d in range(rank)],
            [tensor_type(out_shape, elem)],
        )
        out = self._insert(op)
        if keepdims:
            out = self.reshape(out, [1 if d in axes else shape[d] for d in range(rank)])
        return out

    def softmax(self, x: Operand, axis: int) -> SSAValue:
        """exp(x - max) / sum(exp(x - max)) along `axis` (numerically stable)."""
        x = self.value(x)
        m = self.reduce(x, [axis], "max", keepdims=True)
        e = self.map(lambda s, v, mx: s.exp(s.sub(v, mx)), [x, m])
        total = self.reduce(e, [axis], "sum", keepdims=True)
        return self.binary("div", e, total)

    def cumsum(self, x: Operand, axis: int, exclusive: bool = False,
               reverse: bool = False) -> SSAValue:
        """out[.., i, ..] = sum over j <= i (j < i exclusive; j >= i reversed) of x[.., j, ..]."""
        x = self.value(x)
        shape = shape_of(x)
        rank = len(shape)
        axis %= rank
        elem = elem_of(x)
        # loop dims: the output dims, then j (reduction) as the last dim
        j = rank
        in_map = [j if d == axis else d for d in range(rank)]
        init = self.full(shape, 0, elem)
        body = Block(arg_types=[elem, elem])
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        i_idx, j_idx = sb.index(axis), sb.index(j)
        i64i, i64j = sb.index_to_i64(i_idx), sb.index_to_i64(j_idx)
        pred = {(False, False): "le", (True, False): "lt", (False, True): "ge",
                (True, True): "gt"}[(exclusive, reverse)]
        take = sb.cmp(pred, i64j, i64i)
        term = sb.select(take, body.args[0], sb.const(0, elem))
        sb.insert(YieldOp(sb.add(body.args[1], term)))
        op = GenericOp(
            [x], [init], Region(body),
            [_affine_map(rank + 1, in_map), _affine_map(rank + 1, list(range(rank)))],
            [IteratorTypeAttr.parallel()] * rank + [IteratorTypeAttr.reduction()],
            [tensor_type(shape, elem)],
        )
        return self._insert(op)

    # -- shape ops -------------------------------------------------------------------------
    def reshape(self, x: Operand, shape: Sequence[int]) -> SSAValue:
        """Static reshape as collapse_shape and/or expand_shape."""
        x = self.value(x)
        src, dst = shape_of(x), tuple(int(d) for d in shape)
        if src == dst:
            return x
        assert math.prod(src) == math.prod(dst), (src, dst)
        if not dst:
            return self._collapse(x, [], dst)
        if not src:
            # xDSL's expand_shape verifier rejects the empty reassociation of a 0-d source
            # (MLIR accepts it), so a scalar becomes [1, .., 1] through a broadcasting copy
            return self.map(lambda s, v: v, [x], out_shape=dst)
        groups = _group_dims(src, dst)
        if groups is not None:
            return self._collapse(x, groups, dst)
        groups = _group_dims(dst, src)
        if groups is not None:
            return self._expand(x, groups, dst)
        flat = self._collapse(x, [list(range(len(src)))], (math.prod(src),))
        return self._expand(flat, [list(range(len(dst)))], dst)

    def _collapse(self, x: SSAValue, groups, dst) -> SSAValue:
        op = tensor.CollapseShapeOp.build(
            operands=[x], result_types=[tensor_type(dst, elem_of(x))],
            properties={"reassociation": _reassociation(groups)},
        )
        return self._insert(op)

    def _expand(self, x: SSAValue, groups, dst) -> SSAValue:
        op = tensor.ExpandShapeOp(x, [], _reassociation(groups), list(dst),
                                  tensor_type(dst, elem_of(x)))
        return self._insert(op)

    def transpose(self, x: Operand, perm: Sequence[int]) -> SSAValue:
        x = self.value(x)
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        shape = shape_of(x)
        out = self.empty([shape[p] for p in perm], elem_of(x))
        op = TransposeOp(x, out, DenseArrayBase.from_list(i64, perm))
        return self._insert(op)

    def slice(self, x: Operand, starts: Sequence[int], sizes: Sequence[int],
              strides: Sequence[int] | None = None) -> SSAValue:
        """tensor.extract_slice with static (normalized, positive-stride) parameters."""
        x = self.value(x)
        strides = list(strides) if strides is not None else [1] * len(starts)
        if list(starts) == [0] * len(starts) and tuple(sizes) == shape_of(x) \
                and strides == [1] * len(starts):
            return x
        op = tensor.ExtractSliceOp(x, [int(s) for s in starts], [int(s) for s in sizes],
                                   [int(s) for s in strides],
                                   tensor_type(sizes, elem_of(x)))
        return self._insert(op)

    def insert_slice(self, src: SSAValue, dest: SSAValue, offsets: Sequence[int]) -> SSAValue:
        sizes = list(shape_of(src))
        op = tensor.InsertSliceOp.get(src, dest, static_sizes=sizes,
                                      static_offsets=[int(o) for o in offsets],
                                      static_strides=[1] * len(sizes))
        return self._insert(op)

    def concat(self, xs: Sequence[Operand], axis: int) -> SSAValue:
        values = [self.value(x) for x in xs]
        if len(values) == 1:
            return values[0]
        shape = list(shape_of(values[0]))
        axis %= len(shape)
        shape[axis] = sum(shape_of(v)[axis] for v in values)
        op = tensor.ConcatOp(values, axis, tensor_type(shape, elem_of(values[0])))
        return self._insert(op)

    def gather(self, data: Operand, indices: Operand, axis: int) -> SSAValue:
        """numpy.take(data, indices, axis) with negative indices wrapped (ONNX Gather)."""
        data = self.value(data)
        dshape = shape_of(data)
        axis %= len(dshape)
        if not isinstance(indices, SSAValue):
            idx = np.asarray(indices).astype(np.int64)
            idx = np.where(idx < 0, idx + dshape[axis], idx)
            if idx.ndim == 0:  # one index: a slice without the axis
                starts = [0] * len(dshape)
                starts[axis] = int(idx)
                sizes = list(dshape)
                sizes[axis] = 1
                sliced = self.slice(data, starts, sizes)
                return self.reshape(sliced, dshape[:axis] + dshape[axis + 1:])
            indices = self.constant(idx, "indices")
        ishape = shape_of(indices)
        out_shape = dshape[:axis] + ishape + dshape[axis + 1:]
        rank = len(out_shape)
        ir = len(ishape)
        in_map = list(range(axis, axis + ir))
        elem = elem_of(data)
        body = Block(arg_types=[elem_of(indices), elem])
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        coords = [sb.index(d) for d in range(axis)]
        coords.append(_wrapped_index(sb, body.args[0], dshape[axis]))
        coords += [sb.index(axis + ir + d) for d in range(len(dshape) - axis - 1)]
        val = sb.insert(tensor.ExtractOp(data, coords, elem))
        sb.insert(YieldOp(val))
        op = GenericOp(
            [indices], [self.empty(out_shape, elem)], Region(body),
            [_affine_map(rank, in_map), _affine_map(rank, list(range(rank)))],
            [IteratorTypeAttr.parallel()] * rank, [tensor_type(out_shape, elem)],
        )
        return self._insert(op)

    def gather_elements(self, data: Operand, indices: Operand, axis: int) -> SSAValue:
        """ONNX GatherElements / numpy.take_along_axis: out[i..] = data[i.. with i[axis] =
        indices[i..]], negative indices wrapped; the result has the indices' shape."""
        data, indices = self.value(data), self.value(indices, "indices")
        dshape, out_shape = shape_of(data), shape_of(indices)
        axis %= len(dshape)
        rank = len(out_shape)
        elem = elem_of(data)
        body = Block(arg_types=[elem_of(indices), elem])
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        index = _wrapped_index(sb, body.args[0], dshape[axis])
        coords = [index if d == axis else sb.index(d) for d in range(rank)]
        sb.insert(YieldOp(sb.insert(tensor.ExtractOp(data, coords, elem))))
        op = GenericOp(
            [indices], [self.empty(out_shape, elem)], Region(body),
            [_affine_map(rank, list(range(rank))), _affine_map(rank, list(range(rank)))],
            [IteratorTypeAttr.parallel()] * rank, [tensor_type(out_shape, elem)],
        )
        return self._insert(op)

    def mod(self, a: Operand, b: Operand, fmod: bool) -> SSAValue:
        """ONNX Mod: fmod (C's, the dividend's sign: a - b * trunc(a / b)) or, for integers
        with fmod=0, Python's (the divisor's sign)."""
        def body(s: ScalarBuilder, x, y):
            if _is_float(x.type):
                q = s.div(x, y)
                trunc = s.select(s.cmp("lt", q, s.const(0.0, x.type)), s.neg(s.floor(s.neg(q))),
                                 s.floor(q))
                return s.sub(x, s.mul(y, trunc))
            r = s.insert(arith.RemSIOp(x, y))
            if fmod:
                return r
            zero = s.const(0, x.type)
            fix = s.logical_and(s.cmp("ne", r, zero),
                                s.logical_xor(s.cmp("lt", r, zero), s.cmp("lt", y, zero)))
            return s.select(fix, s.add(r, y), r)

        return self.map(body, [a, b])

    def gather_nd(self, data: Operand, indices: Operand) -> SSAValue:
        """ONNX GatherND with batch_dims = 0: out[i..] = data[indices[i.., :], ...]."""
        data = self.value(data)
        dshape = shape_of(data)
        ishape = shape_of(indices) if isinstance(indices, SSAValue) else np.shape(indices)
        q = ishape[-1]
        idx_value = self.value(indices, "indices")
        out_shape = tuple(ishape[:-1]) + dshape[q:]
        rank = len(out_shape)
        lead = len(ishape) - 1
        elem = elem_of(data)
        # gather each index component with its own generic input (a slice of the index tensor)
        parts = []
        for c in range(q):
            starts = [0] * len(ishape)
            starts[-1] = c
            sizes = list(ishape)
            sizes[-1] = 1
            parts.append(self.reshape(self.slice(idx_value, starts, sizes), ishape[:-1]))
        body = Block(arg_types=[elem_of(p) for p in parts] + [elem])
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        coords = []
        for c in range(q):
            raw = sb.cast(body.args[c], i64)
            neg = sb.cmp("lt", raw, sb.const(0, i64))
            coords.append(sb.to_index(sb.select(neg, sb.add(raw, sb.const(dshape[c], i64)),
                                                raw)))
        coords += [sb.index(lead + d) for d in range(len(dshape) - q)]
        sb.insert(YieldOp(sb.insert(tensor.ExtractOp(data, coords, elem))))
        op = GenericOp(
            parts, [self.empty(out_shape, elem)], Region(body),
            [_affine_map(rank, list(range(lead)))] * q
            + [_affine_map(rank, list(range(rank)))],
            [IteratorTypeAttr.parallel()] * rank, [tensor_type(out_shape, elem)],
        )
        return self._insert(op)

    # -- matrix products -------------------------------------------------------------------
    def matmul2d(self, a: SSAValue, b: SSAValue) -> SSAValue:
        (m, k), (k2, n) = shape_of(a), shape_of(b)
        assert k == k2, (shape_of(a), shape_of(b))
        acc = self.full([m, n], 0.0, f32)
        return self._insert(MatmulOp([a, b], [acc]))

    def matmul(self, a: Operand, b: Operand) -> SSAValue:
        """numpy.matmul semantics: 1-D operands, broadcast batch dims."""
        a, b = self.value(a), self.value(b)
        ash, bsh = shape_of(a), shape_of(b)
        if len(ash) == 1:
            return self.reshape(self.matmul(self.reshape(a, (1,) + ash), b),
                                bsh[:-2] + bsh[-1:])
        if len(bsh) == 1:
            out = self.matmul(a, self.reshape(b, bsh + (1,)))
            return self.reshape(out, shape_of(out)[:-1])
        if len(bsh) == 2:
            m = math.prod(ash[:-1])
            flat = self.reshape(a, (m, ash[-1]))
            return self.reshape(self.matmul2d(flat, b), ash[:-1] + (bsh[1],))
        return self.batch_matmul(a, b)

    def batch_matmul(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """out[..., m, n] = sum_k a[..., m, k] * b[..., k, n] as a generic contraction."""
        ash, bsh = shape_of(a), shape_of(b)
        batch = tuple(np.broadcast_shapes(ash[:-2], bsh[:-2]))
        nb = len(batch)
        m, k, n = ash[-2], ash[-1], bsh[-1]
        dims = nb + 3  # batch..., m, n, k
        dm, dn, dk = nb, nb + 1, nb + 2

        def operand_map(sh, last2):
            off = nb - (len(sh) - 2)
            res = [None if (d == 1 and batch[off + j] != 1) else off + j
                   for j, d in enumerate(sh[:-2])]
            return _affine_map(dims, res + last2)

        out_shape = batch + (m, n)
        acc = self.full(out_shape, 0.0, f32)
        body = Block(arg_types=[f32, f32, f32])
        sb = ScalarBuilder(Builder(InsertPoint.at_end(body)))
        sb.insert(YieldOp(sb.add(body.args[2], sb.mul(body.args[0], body.args[1]))))
        op = GenericOp(
            [a, b], [acc], Region(body),
            [operand_map(ash, [dm, dk]), operand_map(bsh, [dk, dn]),
             _affine_map(dims, list(range(nb)) + [dm, dn])],
            [IteratorTypeAttr.parallel()] * (nb + 2) + [IteratorTypeAttr.reduction()],
            [tensor_type(out_shape, f32)],
        )
        return self._insert(op)

    def linear(self, x: SSAValue, w_nk: SSAValue, bias: Operand | None = None) -> SSAValue:
        """y = x @ W^T (+ bias) in the canonical form: transpose(W[N, K]) then a 2-D matmul."""
        xs = shape_of(x)
        n, k = shape_of(w_nk)
        if xs[-1] != k:
            raise LutcError(f"linear layer expects {k} input features but got shape {list(xs)}")
        wt = self.transpose(w_nk, [1, 0])
        m = math.prod(xs[:-1])
        y = self.matmul2d(self.reshape(x, (m, k)), wt)
        y = self.reshape(y, xs[:-1] + (n,))
        if bias is not None:
            y = self.binary("add", y, bias)
        return y

    def float_linear(self, x: SSAValue, w_nk: np.ndarray, bias: Operand | None = None,
                     hint: str = "linear.weight") -> SSAValue:
        return self.linear(x, self.weight(np.asarray(w_nk, np.float32), hint), bias)

    def dequantize(self, qw: QuantizedWeight, hint: str) -> SSAValue:
        """`lut.dequantize` of codes [N, K] i8, scales (and zeros) [N, NG] f32."""
        n, k = qw.codes.shape
        if qw.ternary:
            fmt = WeightFormatAttr.get(2, qw.group, False, True)
        else:
            fmt = WeightFormatAttr.get(qw.bits, qw.group, qw.zeros is not None)
        codes = self.weight(np.ascontiguousarray(qw.codes, dtype=np.uint8), hint + ".codes", i8)
        scales = self.weight(np.asarray(qw.scales_for_lut(), np.float32), hint + ".scales")
        zeros = (self.weight(np.asarray(qw.zeros, np.float32), hint + ".zeros")
                 if qw.zeros is not None else None)
        return self._insert(DequantizeOp(codes, scales, zeros, fmt))

    def quantized_linear(self, x: SSAValue, qw: QuantizedWeight, bias: Operand | None = None,
                         hint: str = "linear", node: str | None = None) -> SSAValue:
        """y = x @ dequant(codes, scales[, zeros])^T (+ bias): what lut-lower-mpgemm matches."""
        n, k = qw.codes.shape
        if k % 4:
            raise LutcError(
                f"low-bit linear layer needs K (input features) to be a multiple of 4, got {k}",
                node or hint,
            )
        return self.linear(x, self.dequantize(qw, hint), bias)

