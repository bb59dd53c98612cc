"""Emit C for a static-shape function on tensors: one C function, loops for linalg, runtime
calls for the `lut` ops (compiler/emit_lut.py).

Buffers come from compiler/buffer_plan.py. Identifiers are generated (t0, t1, ... for
tensors, v0, ... for scalars); nothing from the model file reaches the C text.

Repeated layers: top-level ops tagged `lutc.layer = i` (decoder_graph.py, `tag_layer`) are
emitted as one run per layer, each into its own scope where every weight/arena byte offset
is a parameter `o[k]`. Runs whose C text is then identical share one `static void` body,
called once per layer with that layer's row of an offset table: a 30-layer decoder compiles
one layer body instead of 30 copies (cc time). The values a run reads from outside are
re-addressed from their storage (arena slot, weight, argument), so only tensors cross a run's
boundary; a run that would need anything else is emitted inline.

Long stretches of untagged ops (a model without layer tags: an ONNX export of a whole decoder,
a graph of thousands of nodes) are cut into runs of OUTLINE_OPS ops outlined the same way: cc's
time grows faster than linearly with a function's size (2,000 chained ReLUs in one function:
58 s), and chunks whose text repeats share one body too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import arith, func, math, tensor
from xdsl.dialects.linalg import ops as linalg
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr

from lutc.compiler.codegen import lane_reduction
from lutc.compiler.codegen.buffer_plan import ALIGN, VIEW_OPS, BufferPlan, plan_buffers
from lutc.compiler.codegen.c_types import c_float_literal, c_type
from lutc.compiler.codegen.emit_tasks import POOL_PROTOTYPE, body_cost
from lutc.runtime.errors import LutcError
from lutc.runtime.model_loader import signature
from lutc.dialects.dtypes import numpy_dtype
from lutc.dialects.lut import LAYER_ATTR
from lutc.dialects.lut_ops import WeightOp
from lutc.dialects.table_type import TableType

_BINARY = {
    arith.AddfOp: "+", arith.SubfOp: "-", arith.MulfOp: "*", arith.DivfOp: "/",
    arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*", arith.DivSIOp: "/",
    arith.RemSIOp: "%", arith.AndIOp: "&", arith.OrIOp: "|", arith.XOrIOp: "^",
    arith.ShLIOp: "<<", arith.ShRSIOp: ">>",
}
_UNARY_F32 = {
    math.ExpOp: "expf", math.LogOp: "logf", math.SqrtOp: "sqrtf", math.TanhOp: "tanhf",
    math.SinOp: "sinf", math.CosOp: "cosf", math.AbsFOp: "fabsf", math.ErfOp: "erff",
    math.FloorOp: "floorf", math.CeilOp: "ceilf", math.RoundEvenOp: "rintf",
    math.RoundOp: "roundf", math.Log2Op: "log2f", math.Exp2Op: "exp2f", math.TruncOp: "truncf",
}
_CMPF = {1: "{a} == {b}", 2: "{a} > {b}", 3: "{a} >= {b}", 4: "{a} < {b}", 5: "{a} <= {b}",
         6: "({a} < {b} || {a} > {b})", 7: "!(isnan({a}) || isnan({b}))",
         8: "!({a} < {b} || {a} > {b})", 9: "!({a} <= {b})", 10: "!({a} < {b})",
         11: "!({a} >= {b})", 12: "!({a} > {b})", 13: "{a} != {b}",
         14: "(isnan({a}) || isnan({b}))", 0: "0", 15: "1"}
_CMPI = {0: "==", 1: "!=", 2: "<", 3: "<=", 4: ">", 5: ">=", 6: "<", 7: "<=", 8: ">", 9: ">="}
_CONVERSIONS = (arith.SIToFPOp, arith.FPToSIOp, arith.ExtFOp, arith.TruncFOp, arith.ExtSIOp,
                arith.TruncIOp, arith.IndexCastOp, arith.UIToFPOp, arith.FPToUIOp)


@dataclass
class WeightBlob:
    """The weights the C code reads, concatenated at 64-byte aligned offsets."""

    arrays: list[np.ndarray] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    size: int = 0

    def add(self, array: np.ndarray) -> int:
        self.arrays.append(np.ascontiguousarray(array))
        self.offsets.append(self.size)
        self.size = (self.size + array.nbytes + ALIGN - 1) // ALIGN * ALIGN
        return self.offsets[-1]

    def write(self, path) -> None:
        with open(path, "wb") as f:
            for array, offset in zip(self.arrays, self.offsets):
                f.seek(offset)
                f.write(array.reshape(-1))  # the buffer itself: no bytes copy
            f.truncate(max(self.size, 1))


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())


def _strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return list(reversed(strides))


def _c_int_literal(value: int) -> str:
    """An integer literal C reads as that value. (Fix: -9223372036854775808, the init of an
    int64 max-reduction, is `-` applied to a literal too large for int64: gcc warns and
    makes it unsigned.)"""
    return "INT64_MIN" if value == -(2**63) else str(value)


def _numel(shape) -> int:
    return int(np.prod(shape)) if shape else 1


# function attributes of a decoder chunk function (lutc/compiler/llm/decoder_graph.py)
ROWS_ARG_ATTR = "lutc.rows_arg"
ROW_ARGS_ATTR = "lutc.row_args"
# [count arg, index arg]: the rows a gather selects by the index input, `MS` of them at run time
SELECT_ROWS_ATTR = "lutc.select_rows"


def tag_layer(block: Block, after: Operation | None, layer: int) -> None:
    """Tag the ops of `block` after `after` (all of them if None) as layer `layer`."""
    op = block.first_op if after is None else after.next_op
    while op is not None:
        op.attributes[LAYER_ATTR] = IntegerAttr(layer, 64)
        op = op.next_op


class CEmitter:
    def __init__(self, module: ModuleOp, weights, title: str = "model"):
        self.module = module
        self.weights = weights
        self.title = title
        self.blob = WeightBlob()
        self.lines: list[str] = []
        self.names: dict[SSAValue, str] = {}
        self.counter = 0
        self.indent = 1
        self.constants: list[str] = []
        self.plan: BufferPlan | None = None
        # strided windows (buffer_plan.strided_slices, and expand_shape views of them): element
        # offset and strides per dim from their storage root's pointer
        self.strided: dict[SSAValue, tuple[int, tuple[int, ...]]] = {}
        self.counts: set[str] = set()  # run-time row counts declared (_count): M, MS
        self.weight_offsets: dict[str, int] = {}
        # dynamic rows (generation): values whose leading dim is the chunk's row count, a
        # runtime value `M` <= the static size (see `_find_row_values`)
        self.rows_max: int | None = None
        self.row_values: set[SSAValue] = set()
        # values computed from the selected rows' index (lutc.select_rows): `MS` real rows
        self.select_values: set[SSAValue] = set()
        # inside a layer run: the byte offsets its text reads as o[0], o[1], ...
        self.run_offsets: list[int] | None = None
        self.constant_names: dict[str, str] = {}  # constant array literal -> its static name
        self.static_names: dict[SSAValue, str] = {}  # constant arrays, seen from every scope
        self.bodies: list[str] = []  # the shared layer bodies, before the entry point
        # C types of the current scope's parameters (W, A, in0, ..., M, o), for task contexts
        self.param_types: dict[str, str] = {}
        from lutc.compiler.codegen.emit_blas import BlasEmitter
        from lutc.compiler.codegen.emit_lut import LutEmitter
        from lutc.compiler.codegen.emit_tasks import TaskOutliner

        self.lut = LutEmitter(self)
        self.tasks = TaskOutliner(self)
        self.blas = BlasEmitter(self)

    # -- helpers ----------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def off(self, offset: int) -> str:
        """A byte offset as the C text reads it: the number, or inside a layer run its
        parameter o[k]."""
        if self.run_offsets is None:
            return str(offset)
        self.run_offsets.append(offset)
        return f"o[{len(self.run_offsets) - 1}]"

    def ptr(self, value: SSAValue) -> str:
        if value in self.names:
            return self.names[value]
        owner = value.owner
        if value in self.static_names:
            self.names[value] = self.static_names[value]
        elif isinstance(owner, tensor.EmptyOp):
            self.names[value] = "NULL"
        elif isinstance(owner, WeightOp):
            # weights enter the blob when first read, so ones only packed copies replace
            # (lut.mma operands) never take space
            typ = c_type(value.type)
            off = self.weight_offset(owner.weight_name.data)
            self.names[value] = f"((const {typ} *)(W + {self.off(off)}))"
        elif isinstance(owner, arith.ConstantOp) and not isinstance(value.type, TensorType):
            self.names[value] = self._scalar_expr(owner, [])  # a literal, read from another run
        else:
            # defined in another layer run: address it from its storage
            assert self.plan is not None, value
            root = self.plan.storage_of(value)
            typ = c_type(value.type) if isinstance(value.type, TensorType) else "uint8_t"
            if isinstance(root, BlockArgument):
                self.names[value] = f"(({typ} *)in{root.index})"
            elif root in self.plan.offsets:
                self.names[value] = f"(({typ} *)(A + {self.off(self.plan.offsets[root])}))"
            else:
                self.names[value] = f"(({typ} *){self.ptr(root)})"
        return self.names[value]

    def weight_offset(self, name: str, array: np.ndarray | None = None) -> int:
        if name not in self.weight_offsets:
            data = np.asarray(self.weights[name]) if array is None else array
            self.weight_offsets[name] = self.blob.add(data)
        return self.weight_offsets[name]

    # -- driver -----------------------------------------------------------------
    def emit(self, function_name: str = "main") -> str:
        fn = next((op for op in self.module.walk() if isinstance(op, func.FuncOp)
                   and op.sym_name.data == function_name), None)
        if fn is None:
            raise LutcError(f"no function @{function_name} to compile")
        self.plan = plan_buffers(fn)
        self.function = fn
        params = ["const uint8_t *restrict W", "uint8_t *restrict A"]
        self.param_types = {"W": "const uint8_t *", "A": "uint8_t *"}
        for i, arg in enumerate(fn.body.block.args):
            self.names[arg] = f"in{i}"
            params.append(f"const {c_type(arg.type)} *restrict in{i}")
            self.param_types[f"in{i}"] = f"const {c_type(arg.type)} *"
        outputs = fn.function_type.outputs.data
        for i, typ in enumerate(outputs):
            params.append(f"{c_type(typ)} *restrict out{i}")
            self.param_types[f"out{i}"] = f"{c_type(typ)} *"
        body_start = len(self.lines)
        rows_arg = fn.attributes.get(ROWS_ARG_ATTR)
        if rows_arg is not None:
            self._find_row_values(fn, int(rows_arg.value.data))
        self._emit_ops(fn)
        body = self.lines[body_start:]
        code = "\n".join([*self.tasks.header(), *self.bodies, *body])
        vector_math = [f for f in _LIBMVEC if re.search(rf"\b{f}\(", code)]
        header = [
            f"/* Generated by lutc from {self.title}: LUT mpGEMM (lut.precompute + lut.mma) via",
            " * the lutrt runtime; every other op as loops. Arena "
            f"{self.plan.peak_bytes} bytes, weights {self.blob.size} bytes. */",
            "#include <math.h>",
            "#include <stdint.h>",
            "#include <string.h>",
            '#include "lutrt.h"',
            "",
            "#define LUTC_ARENA_BYTES " + str(max(self.plan.peak_bytes, 1)),
            "#define LUTC_WEIGHT_BYTES " + str(max(self.blob.size, 1)),
            "",
            "static inline int64_t lutc_floordiv(int64_t a, int64_t b) "
            "{ int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; }",
            "static inline float lutc_maxf(float a, float b) "
            "{ return (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b); }",
            "static inline float lutc_minf(float a, float b) "
            "{ return (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b); }",
            *_simd_declarations(vector_math),
            *ISA_CLONES,
            "",
            "size_t lutc_arena_bytes(void) { return LUTC_ARENA_BYTES; }",
            "size_t lutc_weight_bytes(void) { return LUTC_WEIGHT_BYTES; }",
            "/* dtypes and shapes of the entry point's arguments: the loader checks model.json by it */",
            f'const char *lutc_signature(void) {{ return "{self.signature(fn)}"; }}',
            "",
            *self.constants,
            *(POOL_PROTOTYPE if self.blas.used or self.tasks.definitions else []),
            *self.blas.header(),
            *self.tasks.header(),
            *self.bodies,
            f"LUTC_ISA_CLONES void lutc_{function_name}({', '.join(params)})",
            "{",
        ]
        return "\n".join(header + body + ["}", ""])

    # -- layers -----------------------------------------------------------------------
    def _emit_ops(self, fn: func.FuncOp) -> None:
        """The function's ops in order; each run of one layer's ops (or chunk of untagged ops)
        as a call of its shared body (see the module docstring), the rest inline."""
        runs = _chunk_untagged(_layer_runs(list(fn.body.block.ops)))
        layered = [(layer, ops) for layer, ops in runs if layer is not None
                   and self._run_is_callable(fn, ops)]
        if len(layered) < 2:
            for _, ops in runs:
                for op in ops:
                    self.emit_op(op)
            return
        callable_runs = {id(ops) for _, ops in layered}
        bodies: dict[str, int] = {}  # body text -> index
        users: list[list[tuple[int, list[int]]]] = []  # per body: (layer, offsets)
        calls: list[tuple[int, int, int]] = []  # (line index, body, row in its table)
        for layer, ops in runs:
            if id(ops) not in callable_runs:
                for op in ops:
                    self.emit_op(op)
                continue
            text, offsets = self._emit_run(fn, ops)
            index = bodies.setdefault(text, len(bodies))
            if index == len(users):
                users.append([])
            users[index].append((layer, offsets))
            calls.append((len(self.lines), index, len(users[index]) - 1))
            self.lines.append("")  # the call, filled in below once the bodies are known
        texts = list(bodies)
        for index, text in enumerate(texts):
            self._add_body(fn, index, text, users[index])
        for line, index, row in calls:
            args = self._body_args(fn, texts[index])
            layer = users[index][row][0]
            self.lines[line] = ("    " * self.indent + f"lutc_layer{index}({', '.join(args)}, "
                                f"lutc_layer{index}_offsets[{row}]);  /* {_label(layer)} */")

    def _run_is_callable(self, fn: func.FuncOp, ops: list[Operation]) -> bool:
        """Whether every value crossing the run's boundary is one `ptr` can re-address: a
        tensor or table (arena slot, weight, argument, empty, constant) or a scalar constant."""
        inside = {o for op in ops for o in op.walk()}
        for op in inside:
            if isinstance(op, func.ReturnOp):
                return False
            for value in op.operands:
                owner = value.owner
                if owner in inside or (isinstance(owner, Block) and owner is not fn.body.block
                                       and owner.parent_op() in inside):
                    continue
                if not _addressable(value):
                    return False
        return all(_addressable(r) for op in ops for r in op.results
                   if any(use.operation not in inside for use in r.uses))

    def _emit_run(self, fn: func.FuncOp, ops: list[Operation]) -> tuple[str, list[int]]:
        """One layer's ops in a scope of their own: (C text, the offsets it reads as o[k])."""
        saved = self.lines, self.names, self.counter, self.indent, self.param_types
        self.lines, self.counter, self.indent, self.run_offsets = [], 0, 1, []
        self.names = {arg: f"in{i}" for i, arg in enumerate(fn.body.block.args)}
        self.param_types = {**self.param_types, "M": "int64_t", "MS": "int64_t",
                            "o": "const int64_t *"}
        for op in ops:
            self.emit_op(op)
        text, offsets = "\n".join(self.lines), self.run_offsets
        self.lines, self.names, self.counter, self.indent, self.param_types = saved
        self.run_offsets = None
        return text, offsets

    def _body_args(self, fn: func.FuncOp, text: str) -> list[str]:
        """The parameters a body's text uses: W, A, the inputs it reads, M, MS (the run-time
        counts this function declares; a static-shape one has none)."""
        counts = [n for n in ("M", "MS") if n in self.counts]
        names = ["W", "A"] + [f"in{i}" for i in range(len(fn.body.block.args))] + counts
        return [n for n in names if n in ("W", "A") or re.search(rf"\b{n}\b", text)]

    def _add_body(self, fn: func.FuncOp, index: int, text: str,
                  users: list[tuple[int, list[int]]]) -> None:
        args = fn.body.block.args
        params = {"W": "const uint8_t *restrict W", "A": "uint8_t *restrict A",
                  "M": "const int64_t M", "MS": "const int64_t MS",
                  **{f"in{i}": f"const {c_type(a.type)} *restrict in{i}" for i, a in enumerate(args)}}
        layers = [layer for layer, _ in users]
        count = len(users[0][1])
        rows = [f"    {{{', '.join(map(str, offsets))}}},  /* {_label(layer)} */"
                for layer, offsets in users]
        self.bodies += [
            f"/* byte offsets o[] of layer body {index} into W (weights) and A (arena), one row "
            f"per layer */",
            f"static const int64_t lutc_layer{index}_offsets[{len(users)}][{max(count, 1)}] = {{",
            *rows, "};",
            f"/* the body of {_labels(layers)} */",
            f"LUTC_ISA_CLONES static void lutc_layer{index}("
            f"{', '.join(params[n] for n in self._body_args(fn, text))}, "
            f"const int64_t *restrict o)",
            "{", text, "}", ""]

    @staticmethod
    def signature(fn: func.FuncOp) -> str:
        """The entry point's signature text (runtime/model_loader.py `signature`)."""
        def pairs(types):
            return [(t.get_shape(), numpy_dtype(t)) for t in types]

        return signature(pairs(fn.function_type.inputs.data), pairs(fn.function_type.outputs.data))

    # -- dynamic rows ---------------------------------------------------------------
    def _find_row_values(self, fn: func.FuncOp, rows_arg: int) -> None:
        """A function with the `lutc.rows_arg = i` attribute takes its row count at run time
        in input i (an i64[1]); the inputs named by `lutc.row_args` have that many real rows
        in their leading dim C. Every value computed from them that keeps C as its leading
        dim is row-wise too, so its loops, LUT calls and copies cover `M` rows, not C.
        Row-major layout keeps every stride independent of the leading dim, so only loop
        bounds change. Rows M..C-1 of such values are left unspecified.

        `lutc.select_rows = [j, k]` adds a second count: input k (i64[C]) holds row indices
        (a gather by it picks rows of a row-wise value), input j (i64[1]) how many of them are
        real, `MS` (clamped to 1..C). Values computed from input k have `MS` real rows; an op
        that reads both kinds (the gather: k as its operand, the row-wise value inside its
        body) follows the one among its direct operands. Generation uses it to compute the
        logits of the last prompt row only."""
        args = fn.body.block.args
        row_args = [int(a.value.data) for a in fn.attributes[ROW_ARGS_ATTR].data]
        c = _shape(args[row_args[0]])[0]
        self.rows_max = c
        self.row_values = {args[i] for i in row_args}
        self._count("M", rows_arg, c, "real rows of this call")
        select = fn.attributes.get(SELECT_ROWS_ATTR)
        if select is not None:
            count, index = (int(a.value.data) for a in select.data)
            if not _shape(args[index]) or _shape(args[index])[0] != c:
                raise LutcError(f"lutc.select_rows: input {index} must have {c} rows, like the "
                                f"row inputs", node="func.func")
            self.select_values = {args[index]}
            self._count("MS", count, c, "selected rows of this call")
        for op in fn.walk():
            if isinstance(op, linalg.TransposeOp) and list(op.permutation.get_values())[:1] != [0]:
                continue
            inner = [o for region in op.regions for nested in region.walk() for o in nested.operands]
            read = [*op.operands, *inner]
            if any(o in self.select_values for o in op.operands):
                group = self.select_values
            elif any(o in self.row_values for o in read):
                group = self.row_values
            elif any(o in self.select_values for o in read):
                group = self.select_values
            else:
                continue
            for r in op.results:
                typ = r.type
                shape = typ.get_shape() if isinstance(typ, TensorType) else getattr(typ, "shape", ())
                if len(shape) and shape[0] == c:
                    group.add(r)

    def _count(self, name: str, arg: int, most: int, what: str) -> None:
        """`name` = input `arg`'s first element clamped to 1..most, declared in C."""
        self.counts.add(name)
        self.line(f"const int64_t {name} = in{arg}[0] < 1 ? 1 : (in{arg}[0] > {most} ? {most} "
                  f": in{arg}[0]);  /* {what} */")

    def rows(self, value: SSAValue, static: int) -> str | int:
        """The leading-dim extent to loop over: `M` for row-wise values, `MS` for selected
        rows, else static."""
        if value in self.select_values:
            return "MS"
        return "M" if value in self.row_values else static

    def lead_rows(self, value: SSAValue, shape) -> int | str:
        """The trip count of `value`'s first dim: `rows` of it (a decode step's row values
        loop over M = 1, not the compiled row capacity)."""
        return self.rows(value, shape[0]) if shape else 1

    def emit_op(self, op: Operation) -> None:
        handler = getattr(self, f"emit_{type(op).__name__}", None)
        if handler is not None:
            handler(op)
            return
        if self.lut.handles(op):
            self.lut.emit(op)
            return
        if not any(isinstance(r.type, TensorType) for r in op.results) and not op.regions:
            self.emit_scalar(op, _Env(self, self.names))
            return
        raise LutcError(f"op '{op.name}' has no C lowering yet", node=str(op.name))

    def define(self, value: SSAValue) -> str:
        """Declare the pointer for a result buffer (arena slot or view)."""
        assert self.plan is not None
        name = self.fresh("t")
        typ = c_type(value.type) if isinstance(value.type, TensorType) else "uint8_t"
        if value in self.plan.root:
            expr = f"({typ} *){self.ptr(self.plan.root[value])}"
        else:
            expr = f"({typ} *)(A + {self.off(self.plan.offsets[value])})"
        self.line(f"{typ} *{name} = {expr};  /* {self.describe(value)} */")
        self.names[value] = name
        return name

    @staticmethod
    def describe(value: SSAValue) -> str:
        typ = value.type
        if isinstance(typ, TensorType):
            return "x".join(map(str, typ.get_shape())) + f" {c_type(typ)}"
        return str(typ).replace("!lut.", "")

    # -- ops on tensors -----------------------------------------------------------
    def emit_WeightOp(self, op: WeightOp) -> None:
        """Weights are addressed where they are read (see `ptr`)."""

    def emit_EmptyOp(self, op: tensor.EmptyOp) -> None:
        """An empty tensor's contents are undefined: it needs no storage, only a shape."""
        self.names[op.tensor] = "NULL"

    def _view(self, op: Operation) -> None:
        source = op.operands[0]
        note = "view"
        if source in self.strided:  # an expand_shape of a window (buffer_plan): a window too
            assert isinstance(op, tensor.ExpandShapeOp), op
            offset, strides = self.strided[source]
            shape = _shape(op.results[0])
            new: list[int] = []
            for d, group in enumerate(op.reassociation.data):
                dims = [g.value.data for g in group.data]
                inner = strides[d]
                group_strides = []
                for k in reversed(dims):
                    group_strides.append(inner)
                    inner *= shape[k]
                new.extend(reversed(group_strides))
            self.strided[op.results[0]] = (offset, tuple(new))
            note = f"strided view: offset {offset}, strides {tuple(new)}"
        self._alias(op.results[0], source, note)

    def _alias(self, result: SSAValue, source: SSAValue, note: str) -> None:
        """Names `result` by a pointer to `source`'s storage (a view; no copy)."""
        name = self.fresh("t")
        typ = c_type(result.type)
        self.line(f"{typ} *{name} = ({typ} *){self.ptr(source)};  /* {note} */")
        self.names[result] = name

    emit_CollapseShapeOp = emit_ExpandShapeOp = emit_ReshapeOp = emit_CastOp = _view

    def emit_ConstantOp(self, op: arith.ConstantOp) -> None:
        value = op.value
        if isinstance(value, DenseIntOrFPElementsAttr):
            typ = c_type(value.type)
            data = np.array(value.get_values(), dtype=numpy_dtype(value.type))
            shape = value.type.get_shape()
            data = (data if data.size == _numel(shape) else np.broadcast_to(data, shape)).ravel()
            lit = (lambda v: c_float_literal(float(v), value.type.get_element_type())) \
                if data.dtype.kind == "f" else (lambda v: _c_int_literal(int(v)))
            values = ", ".join(lit(v) for v in data)
            text = f"static const {typ} {{}}[{max(data.size, 1)}] = {{{{{values}}}}};"
            if text not in self.constant_names:  # equal arrays (one per layer) are stored once
                self.constant_names[text] = f"c{len(self.constant_names) + 1}"
                self.constants.append(text.format(self.constant_names[text]))
            self.names[op.result] = f"(({typ} *){self.constant_names[text]})"
            self.static_names[op.result] = self.names[op.result]
            return
        self.emit_scalar(op, _Env(self, self.names))

    def _copy_into(self, dst: str, src: str, count: int, typ: str) -> None:
        self.line(f"memcpy({dst}, {src}, {count} * sizeof({typ}));")

    def _init_from(self, result: SSAValue, init: SSAValue) -> str:
        """Result buffer initialised with the destination operand's value."""
        dst = self.define(result)
        if isinstance(init.owner, tensor.EmptyOp):
            return dst
        shape = _shape(result)
        rows = self.lead_rows(result, shape)
        count = f"{rows} * {_numel(shape[1:])}" if isinstance(rows, str) else _numel(shape)
        self._copy_into(dst, self.ptr(init), count, c_type(result.type))
        return dst

    def emit_FillOp(self, op: linalg.FillOp) -> None:
        if self.blas.skips_fill(op):
            return
        dst = self.define(op.results[0])
        shape = _shape(op.results[0])
        rows = self.lead_rows(op.results[0], shape)
        value = self.scalar(op.inputs[0])
        if isinstance(rows, int):
            def nest(begin: str, end: str) -> None:
                self.line(f"for (int64_t i = {begin}; i < {end}; ++i) {dst}[i] = {value};")

            self.tasks.emit(_numel(shape), 1, nest)
            return
        row = _numel(shape[1:])

        def row_nest(begin: str, end: str) -> None:
            self.line(f"for (int64_t i = ({begin}) * {row}; i < ({end}) * {row}; ++i) "
                      f"{dst}[i] = {value};")

        self.tasks.emit(rows, row, row_nest)

    def emit_MatmulOp(self, op: linalg.MatmulOp) -> None:
        if self.blas.emit_matmul(op):
            return
        a, b = op.inputs
        m, k = _shape(a)
        n = _shape(b)[1]
        c = self._init_from(op.results[0], op.outputs[0])
        pa, pb = self.ptr(a), self.ptr(b)

        def nest(begin: str, end: str) -> None:
            self.line(f"for (int64_t i = {begin}; i < {end}; ++i)")
            self.line(f"    for (int64_t p = 0; p < {k}; ++p) {{")
            self.line(f"        const float s = {pa}[i * {k} + p];")
            self.line(f"        for (int64_t j = 0; j < {n}; ++j) {c}[i * {n} + j] += s * {pb}[p * {n} + j];")
            self.line("    }")

        self.tasks.emit(self.rows(op.results[0], m), 2 * k * n, nest)

    def emit_TransposeOp(self, op: linalg.TransposeOp) -> None:
        perm = list(op.permutation.get_values())
        src_shape = _shape(op.inputs[0])
        dst = self.define(op.results[0])
        dst_shape = _shape(op.results[0])
        src_strides = _strides(src_shape)
        idx = [f"i{d}" for d in range(len(dst_shape))]
        src_index = " + ".join(f"{idx[d]} * {src_strides[perm[d]]}" for d in range(len(perm))) or "0"
        dst_index = self._linear(idx, dst_shape)
        src = self.ptr(op.inputs[0])

        def nest(begin: str, end: str, split: int = 0) -> None:
            self._loops(dst_shape, idx, (begin, end), split)
            self.line(f"{dst}[{dst_index}] = {src}[{src_index}];")
            self._close(len(dst_shape))

        self._outline_copy(dst_shape, nest, op.results[0])

    def emit_BroadcastOp(self, op: linalg.BroadcastOp) -> None:
        dims = list(op.dimensions.get_values())
        dst_shape = _shape(op.results[0])
        dst = self.define(op.results[0])
        idx = [f"i{d}" for d in range(len(dst_shape))]
        kept = [d for d in range(len(dst_shape)) if d not in dims]
        src_shape = [dst_shape[d] for d in kept]
        src = self.ptr(op.inputs[0])

        def nest(begin: str, end: str, split: int = 0) -> None:
            self._loops(dst_shape, idx, (begin, end), split)
            self.line(f"{dst}[{self._linear(idx, dst_shape)}] = "
                      f"{src}[{self._linear([idx[d] for d in kept], src_shape)}];")
            self._close(len(dst_shape))

        self._outline_copy(dst_shape, nest, op.results[0] if 0 not in dims else None)

    def _outline_copy(self, shape, nest: Callable[..., None],
                      result: SSAValue | None = None) -> None:
        """A copy's loop nest, split over its outermost dim that is not a unit dim (whose
        rows it writes disjointly; `nest(begin, end, split)`); a row-valued `result` copies
        only the call's rows, split over them."""
        if not shape:
            nest("0", "1")
            return
        rows = shape[0] if result is None else self.lead_rows(result, shape)
        split = 0 if isinstance(rows, str) else _split_dim(shape)
        extent = rows if split == 0 else shape[split]
        self.tasks.emit(extent, 2 * _numel(shape[split + 1:]),
                        lambda begin, end: nest(begin, end, split))

    def emit_ExtractSliceOp(self, op: tensor.ExtractSliceOp) -> None:
        if op.result in self.plan.strided:  # a window the loops reading it index in place
            base, strides = self.strided.get(op.source, (0, tuple(_strides(_shape(op.source)))))
            offset = base + sum(o * st for o, st in zip(op.static_offsets.get_values(), strides))
            self.strided[op.result] = (offset, tuple(strides))
            self._alias(op.result, op.source,
                        f"strided view: offset {offset}, strides {tuple(strides)}")
            return
        dst = self.define(op.result)
        self._copy_slice(op, self.ptr(op.source), _shape(op.source), dst, into_slice=False,
                         rows_of=op.result)

    def emit_InsertSliceOp(self, op: tensor.InsertSliceOp) -> None:
        dst = self._init_from(op.result, op.dest)
        self._copy_slice(op, dst, _shape(op.dest), self.ptr(op.source), into_slice=True,
                         rows_of=op.result)

    def _copy_slice(self, op, whole: str, whole_shape, part: str, into_slice: bool,
                    rows_of: SSAValue) -> None:
        """Copy between a strided window of `whole` and the dense buffer `part`; a window
        over all rows of a row value (`rows_of`) copies only the call's rows."""
        offsets = op.static_offsets.get_values()
        sizes = op.static_sizes.get_values()
        strides = op.static_strides.get_values()
        whole_strides = _strides(whole_shape)
        idx = [f"i{d}" for d in range(len(sizes))]
        window = " + ".join(f"({offsets[d]} + {idx[d]} * {strides[d]}) * {whole_strides[d]}"
                            for d in range(len(sizes))) or "0"
        dense = self._linear(idx, sizes)

        def nest(begin: str, end: str, split: int = 0) -> None:
            self._loops(sizes, idx, (begin, end), split)
            if into_slice:
                self.line(f"{whole}[{window}] = {part}[{dense}];")
            else:
                self.line(f"{part}[{dense}] = {whole}[{window}];")
            self._close(len(sizes))

        # distinct rows of the window when the stride of the first dim that is not a unit
        # dim (the one _outline_copy splits) is nonzero
        all_rows = sizes and (offsets[0], sizes[0], strides[0]) == (0, whole_shape[0], 1)
        if sizes and strides[0] != 0 and strides[_split_dim(sizes)] != 0:
            self._outline_copy(sizes, nest, rows_of if all_rows else None)
        else:
            nest("0", str(sizes[0]) if sizes else "1")

    def emit_ConcatOp(self, op: tensor.ConcatOp) -> None:
        axis = op.dim.value.data
        dst_shape = _shape(op.result)
        dst = self.define(op.result)
        outer: int | str = _numel(dst_shape[:axis])
        rows = self.lead_rows(op.result, dst_shape)
        if axis > 0 and isinstance(rows, str):
            outer = f"{rows} * {_numel(dst_shape[1:axis])}"
        inner_dst = _numel(dst_shape[axis:])
        offset = 0
        for src in op.inputs:
            inner = _numel(_shape(src)[axis:])
            r = self.fresh("r")  # not `o`: a layer body's offsets parameter
            self.line(f"for (int64_t {r} = 0; {r} < {outer}; ++{r}) memcpy({dst} + {r} * "
                      f"{inner_dst} + {offset}, {self.ptr(src)} + {r} * {inner}, "
                      f"{inner} * sizeof(*{dst}));")
            offset += inner

    def emit_ReturnOp(self, op: func.ReturnOp) -> None:
        for i, value in enumerate(op.arguments):
            shape = _shape(value)
            rows = self.rows(value, shape[0] if shape else 1)
            count = f"{rows} * {_numel(shape[1:])}" if isinstance(rows, str) else _numel(shape)
            self._copy_into(f"out{i}", self.ptr(value), count, c_type(value.type))

    # -- linalg.generic -------------------------------------------------------------
    def emit_GenericOp(self, op: linalg.GenericOp,
                       row_epilogue: Callable[[int], None] | None = None,
                       row_dims: int | None = None) -> None:
        """Loops over the iteration space. `row_epilogue(depth)`, when given, closes the
        loop nest instead of `_close` (lut.fused_precompute puts its per-row call there);
        the nest is then split over threads only along one of its first `row_dims` dims."""
        if row_epilogue is None and self.blas.emit_batch_matmul(op):
            return
        maps = [m.data for m in op.indexing_maps.data]
        operands = list(op.inputs) + list(op.outputs)
        sizes = [1] * maps[0].num_dims
        for amap, value in zip(maps, operands):
            for axis, expr in enumerate(amap.results):
                if isinstance(expr, AffineDimExpr):
                    sizes[expr.position] = _shape(value)[axis]
        n_in = len(op.inputs)
        lead = maps[n_in].results[0] if maps[n_in].results else None
        if op.results and isinstance(lead, AffineDimExpr):
            rows = self.rows(op.results[0], sizes[lead.position])
            if isinstance(rows, str):
                sizes[lead.position] = rows
        out_args = op.body.block.args[n_in:]
        outs = [self._init_from(r, init) if arg.uses else self.define(r)
                for r, init, arg in zip(op.results, op.outputs, out_args)]
        idx = [f"i{d}" for d in range(len(sizes))]
        block: Block = op.body.block

        # the dim to split over threads: the outermost one that is not a unit dim (exported
        # programs put a batch dim of 1 before the rows), if it is a parallel dim every output
        # is indexed by: then its iterations write disjoint outputs, and reductions stay inside
        # one task
        split = _split_dim(sizes)
        dim = AffineDimExpr(split)
        splittable = (sizes and op.iterator_types.data[split].data.value == "parallel"
                      and all(dim in maps[n_in + j].results for j in range(len(op.outputs)))
                      and all(isinstance(s, int) for s in sizes[split + 1:])
                      and (row_dims is None or split < row_dims))
        if not splittable:
            split = 0

        red = lane_reduction.match(op, sizes) if row_epilogue is None else None

        def iteration() -> _Env:
            """Loads the operands at `idx` and emits the body (the yield too, unless `red`)."""
            env = _Env(self)
            for i, arg in enumerate(block.args):
                if not arg.uses or (red is not None and i == n_in):  # red: only its add reads
                    continue
                value = operands[i]
                base = self.ptr(value) if i < n_in else outs[i - n_in]
                if i < n_in and value in self.strided:
                    index = self._window_index(maps[i].results, self.strided[value], idx)
                else:
                    index = self._map_index(maps[i].results, _shape(value), idx)
                name = self.fresh("v")
                self.line(f"const {c_type(arg.type)} {name} = {base}[{index}];")
                env[arg] = name
            self._index_names = idx
            for body_op in block.ops:
                if red is not None:
                    if lane_reduction.is_body_op(red, body_op):
                        self.emit_scalar(body_op, env)
                elif isinstance(body_op, linalg.YieldOp):
                    for j, yielded in enumerate(body_op.operands):
                        index = self._map_index(maps[n_in + j].results, _shape(op.outputs[j]), idx)
                        self.line(f"{outs[j]}[{index}] = {env[yielded]};")
                else:
                    self.emit_scalar(body_op, env)
            return env

        def nest(begin: str, end: str) -> None:
            if red is not None:
                out = self._map_index(maps[n_in].results, _shape(op.outputs[0]), idx)
                self._lane_reduction(red, sizes, idx, (begin, end), split, iteration,
                                     f"{outs[0]}[{out}]", c_type(block.args[n_in].type))
                return
            self._loops(sizes, idx, (begin, end), split)
            iteration()
            (row_epilogue or self._close)(len(sizes))

        if not splittable:
            nest("0", str(sizes[0]) if sizes else "1")
            return
        inner = _numel(sizes[split + 1:])
        cost = body_cost(block, len(operands)) + (8 if row_epilogue else 0)
        self.tasks.emit(sizes[split], inner * cost, nest)

    def _lane_reduction(self, red: lane_reduction.LaneReduction, sizes, idx,
                        first: tuple[str, str], split: int, iteration: Callable[[], _Env],
                        out: str, typ: str) -> None:
        """The loop nest of a sum reduction over its innermost dim in LANES partial sums
        (compiler/codegen/lane_reduction.py: the order of the additions and its error)."""
        lanes, n, i = lane_reduction.LANES, sizes[red.dim], idx[red.dim]
        whole = n // lanes * lanes
        self._loops(sizes[:red.dim], idx, first if split < red.dim else None, split)
        acc, sum_, blk = self.fresh("r"), self.fresh("r"), self.fresh("rb")
        self.line(f"{typ} {acc}[{lanes}] = {{0}};")
        self.line(f"for (int64_t {blk} = 0; {blk} < {whole}; {blk} += {lanes}) {{")
        self.line(f"    for (int64_t {i} = {blk}; {i} < {blk} + {lanes}; ++{i}) {{")
        self.indent += 2

        def accumulate(into: str, loops: int) -> None:
            self.line(f"{into} += {iteration()[red.term]};")
            self._close(loops)

        accumulate(f"{acc}[{i} - {blk}]", 2)
        self.line(f"for (int w = {lanes // 2}; w > 0; w >>= 1)")
        self.line(f"    for (int l = 0; l < w; ++l) {acc}[l] += {acc}[l + w];")
        self.line(f"{typ} {sum_} = {acc}[0];")
        if whole < n:
            self.line(f"for (int64_t {i} = {whole}; {i} < {n}; ++{i}) {{")
            self.indent += 1
            accumulate(sum_, 1)
        self.line(f"{out} = {out} + {sum_};")
        self._close(red.dim)

    @staticmethod
    def _window_index(exprs, window: tuple[int, tuple[int, ...]], idx) -> str:
        """The linear index into a strided window (element offset, strides per dim) of its
        storage, read at the map results `exprs` of the loop indices `idx`."""
        offset, strides = window
        terms = [str(offset)] if offset else []
        for axis, expr in enumerate(exprs):
            if isinstance(expr, AffineDimExpr):
                terms.append(f"{idx[expr.position]} * {strides[axis]}")
            elif not (isinstance(expr, AffineConstantExpr) and expr.value == 0):
                terms.append(f"{expr.value} * {strides[axis]}")
        return " + ".join(terms) or "0"

    def _map_index(self, exprs, shape, idx) -> str:
        """The row-major linear index of an operand of `shape` read at the map results
        `exprs` (dims and constants) of the loop indices `idx`."""
        return self._window_index(exprs, (0, tuple(_strides(shape))), idx)

    # -- scalar ops (inside generic bodies and between tensor ops) -------------------
    def scalar(self, value: SSAValue) -> str:
        return self.ptr(value)

    def emit_scalar(self, op: Operation, env) -> None:
        args = [env[o] for o in op.operands]
        result = op.results[0] if op.results else None
        expr = self._scalar_expr(op, args)
        name = self.fresh("v")
        self.line(f"const {c_type(result.type)} {name} = {expr};")
        env[result] = name

    def _scalar_expr(self, op: Operation, a: list[str]) -> str:
        t = type(op)
        if isinstance(op, arith.ConstantOp):
            v = op.value
            if isinstance(v, FloatAttr):
                return c_float_literal(v.value.data, op.result.type)
            if isinstance(v, IntegerAttr):
                return _c_int_literal(int(v.value.data))
            raise LutcError(f"arith.constant of {v} has no scalar C lowering")
        if t in _BINARY:
            return f"({a[0]} {_BINARY[t]} {a[1]})"
        if t is arith.NegfOp:
            return f"(-{a[0]})"
        f32 = c_type(op.results[0].type) == "float"
        if t in _UNARY_F32:
            fn = _UNARY_F32[t]
            return f"{fn if f32 else fn[:-1]}({a[0]})"
        if t is math.RsqrtOp:
            return f"(1.0f / sqrtf({a[0]}))" if f32 else f"(1.0 / sqrt({a[0]}))"
        if t is math.PowFOp:
            return f"powf({a[0]}, {a[1]})" if f32 else f"pow({a[0]}, {a[1]})"
        if t is math.FmaOp:
            return f"({a[0]} * {a[1]} + {a[2]})"
        if t in (arith.MaximumfOp, arith.MaxnumfOp):
            return f"lutc_maxf({a[0]}, {a[1]})" if t is arith.MaximumfOp else f"fmaxf({a[0]}, {a[1]})"
        if t in (arith.MinimumfOp, arith.MinnumfOp):
            return f"lutc_minf({a[0]}, {a[1]})" if t is arith.MinimumfOp else f"fminf({a[0]}, {a[1]})"
        if t is arith.MaxSIOp:
            return f"({a[0]} > {a[1]} ? {a[0]} : {a[1]})"
        if t is arith.MinSIOp:
            return f"({a[0]} < {a[1]} ? {a[0]} : {a[1]})"
        if t is arith.FloorDivSIOp:
            return f"lutc_floordiv({a[0]}, {a[1]})"
        if t is arith.ShRUIOp:
            return f"(({c_type(op.results[0].type)})((uint64_t){a[0]} >> {a[1]}))"
        if t is arith.CmpfOp:
            return "(" + _CMPF[op.predicate.value.data].format(a=a[0], b=a[1]) + ")"
        if t is arith.CmpiOp:
            pred = op.predicate.value.data
            if pred >= 6:
                return f"((uint64_t){a[0]} {_CMPI[pred]} (uint64_t){a[1]})"
            return f"({a[0]} {_CMPI[pred]} {a[1]})"
        if t is arith.SelectOp:
            return f"({a[0]} ? {a[1]} : {a[2]})"
        if t in _CONVERSIONS:
            return f"(({c_type(op.results[0].type)}){a[0]})"
        if t is linalg.IndexOp:
            return self._index_names[op.dim.value.data]
        if t is tensor.ExtractOp:
            shape = _shape(op.tensor)
            return f"{a[0]}[{self._linear(a[1:], shape)}]"
        raise LutcError(f"op '{op.name}' has no C lowering yet", node=str(op.name))

    # -- loop helpers ---------------------------------------------------------------
    def _loops(self, sizes, idx, first: tuple[str, str] | None = None, split: int = 0) -> None:
        """Loops over `sizes`; `first` = (begin, end) bounds loop `split` (a task's range; the
        loops outside it are unit dims)."""
        for d, (size, i) in enumerate(zip(sizes, idx)):
            begin, end = first if first is not None and d == split else ("0", size)
            self.line(f"for (int64_t {i} = {begin}; {i} < {end}; ++{i}) {{")
            self.indent += 1

    def _close(self, depth: int) -> None:
        for _ in range(depth):
            self.indent -= 1
            self.line("}")

    @staticmethod
    def _linear(idx, shape) -> str:
        strides = _strides(shape)
        return " + ".join(f"{i} * {s}" for i, s in zip(idx, strides)) or "0"


def _split_dim(sizes) -> int:
    """The dim a loop nest over `sizes` is split along over threads: the outermost one that
    is not a unit dim (exported programs put a batch dim of 1 first; `M` counts as > 1)."""
    return next((d for d, n in enumerate(sizes) if n != 1), 0)


# Every function with loops (tasks, layer bodies, the entry) is built by GCC >= 11 on x86-64
# for the baseline ISA and also for x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512); glibc's
# ifunc picks one version per function when the library loads, so a model directory runs on
# any x86-64 and its loops use the vector width of the CPU it runs on (libmvec's 8- and
# 16-lane expf there). -ffp-contract=off (compiler/codegen/build.py) keeps a * b + c two
# roundings in every version. SmolLM2 / 492M model.c: cc ~0.4 -> ~1.1 s. Not under
# ThreadSanitizer, whose instrumented ifunc resolvers run before its runtime is set up.
ISA_CLONES = [
    "/* one version per ISA level, picked when the library loads (ifunc) */",
    "#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__) "
    "&& __GNUC__ >= 11 && !defined(__SANITIZE_THREAD__)",
    "#define LUTC_ISA_CLONES "
    '__attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))',
    "#else",
    "#define LUTC_ISA_CLONES",
    "#endif"]

# libm functions with 4-lane versions in every glibc libmvec since 2.22 (x86-64)
_LIBMVEC = ("expf", "logf", "sinf", "cosf")


def _simd_declarations(functions: list[str]) -> list[str]:
    """Declarations that let gcc vectorize loops calling `functions` through libmvec."""
    if not functions:
        return []
    return ["/* glibc's libmvec has vector versions of these: loops calling them vectorize */",
            "#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__)",
            *(f'__attribute__((simd("notinbranch"))) float {f}(float);' for f in functions),
            "#endif"]


def _layer_runs(ops: list[Operation]) -> list[tuple[int | None, list[Operation]]]:
    """Consecutive ops of one layer (LAYER_ATTR), in order; untagged ops between two ops of
    the same layer (added by passes) belong to it, other untagged ops to no layer."""
    tags: list[int | None] = [int(op.attributes[LAYER_ATTR].value.data)
                              if LAYER_ATTR in op.attributes else None for op in ops]
    following: list[int | None] = []  # the next tag at or after each op
    for tag in reversed(tags):
        following.append(tag if tag is not None else (following[-1] if following else None))
    following.reverse()
    last: int | None = None
    for i, tag in enumerate(tags):
        if tag is None:
            tags[i] = last if last is not None and following[i] == last else None
        else:
            last = tag
    runs: list[tuple[int | None, list[Operation]]] = []
    for op, tag in zip(ops, tags):
        if runs and runs[-1][0] == tag:
            runs[-1][1].append(op)
        else:
            runs.append((tag, [op]))
    return runs


OUTLINE_OPS = 48  # untagged ops per outlined chunk (module docstring)


@dataclass(frozen=True)
class _Chunk:
    """The tag of the i-th chunk of untagged ops (_chunk_untagged)."""
    index: int


def _chunk_untagged(runs: list[tuple[int | None, list[Operation]]]
                    ) -> list[tuple[int | _Chunk | None, list[Operation]]]:
    """Untagged runs longer than OUTLINE_OPS cut into chunks of OUTLINE_OPS ops, each tagged as
    a chunk (outlined like a layer when its boundary allows); shorter ones stay inline."""
    out: list[tuple[int | _Chunk | None, list[Operation]]] = []
    count = 0
    for tag, ops in runs:
        if tag is not None or len(ops) <= OUTLINE_OPS:
            out.append((tag, ops))
            continue
        for start in range(0, len(ops), OUTLINE_OPS):
            out.append((_Chunk(count), ops[start:start + OUTLINE_OPS]))
            count += 1
    return out


def _label(tag) -> str:
    return f"op chunk {tag.index}" if isinstance(tag, _Chunk) else f"layer {tag}"


def _labels(tags: list) -> str:
    layers = [t for t in tags if not isinstance(t, _Chunk)]
    chunks = [t.index for t in tags if isinstance(t, _Chunk)]
    parts = ([f"layer{'s' if len(layers) > 1 else ''} {_ranges(layers)}"] if layers else []) + \
        ([f"op chunk{'s' if len(chunks) > 1 else ''} {_ranges(chunks)}"] if chunks else [])
    return " and ".join(parts)


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _addressable(value: SSAValue) -> bool:
    if isinstance(value.type, (TensorType, TableType)):
        return True
    return isinstance(value.owner, arith.ConstantOp)


def is_view(op: Operation) -> bool:
    return isinstance(op, VIEW_OPS)


class _Env(dict):
    """SSA value -> C expression inside one emission scope, falling back to the emitter's
    buffers (and lazily addressed weights) for values defined outside it."""

    def __init__(self, emitter: CEmitter, backing: dict | None = None):
        super().__init__()
        self.emitter = emitter
        self.backing = backing

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if self.backing is not None:
            self.backing[key] = value

    def __missing__(self, key: SSAValue) -> str:
        return self.emitter.ptr(key)
