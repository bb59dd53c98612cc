"""Loop nests as pool tasks: a loop nest split over its outermost parallel dimension.

The CEmitter (emit_c.py) hands a loop nest it can split (its outermost loop that is not a
unit dim writes disjoint output rows: exported programs put a batch dim of 1 first) to
`TaskOutliner.emit` with that loop's extent and the work of one of its iterations. A nest
whose work can reach `PARALLEL_WORK` becomes a file-scope task

    struct lutc_task3_ctx { float *t1; const float *p1; int64_t M; };
    static void lutc_task3(void *arg, int begin, int end)
    {
        const struct lutc_task3_ctx *c = arg;
        float *restrict t1 = c->t1;
        const float *restrict p1 = c->p1;
        for (int64_t i0 = begin; i0 < end; ++i0) { ... }
    }

called as `lutc_parallel(M, M * 576, lutc_task3, &ctx)`: through `lutrt_parallel_for` when
the work of this call is large enough, else directly on [0, n). Smaller nests stay inline.

The context carries every name the nest reads from the enclosing scope; arena and weight
addresses (`((float *)(A + o[1]))`) become fields evaluated at the call, so the task's text
holds no byte offset and identical layers give identical tasks: equal texts share one
function, as equal layer bodies do. Pointers become `restrict` locals (the loops vectorize
without run-time alias checks, and loads invariant in the inner loop are hoisted) unless two
of them share storage in the buffer plan (lut.fused_precompute writes its producer's result
into the activations it then reads).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from xdsl.dialects import arith, math, tensor
from xdsl.ir import Block

# Work units: one per operand load and scalar op, more for divisions and libm calls
# (`body_cost`). Measured on the 2-core Xeon: one lutrt_parallel_for to a polling worker
# costs ~3 us (64 empty tasks, back to back), a vectorized SiLU*mul nest ~0.29 ns per unit
# (bench/bench_codegen_ops.py, 128 x 1536); so 2 threads break even near 20k units. The
# threshold is 3x that (~19 us on one thread): a worker that went to sleep wakes slower.
PARALLEL_WORK = 65536
# a claimed chunk of rows is at least this much work (keeps the pool's claims cheap)
CHUNK_WORK = 16384

_COSTLY = {math.ExpOp: 16, math.LogOp: 16, math.TanhOp: 20, math.ErfOp: 20, math.SinOp: 16,
           math.CosOp: 16, math.PowFOp: 30, math.Exp2Op: 12, math.Log2Op: 16,
           math.SqrtOp: 4, math.RsqrtOp: 4, arith.DivfOp: 4, arith.DivSIOp: 8,
           arith.RemSIOp: 8, arith.FloorDivSIOp: 8, tensor.ExtractOp: 2}


def enabled() -> bool:
    """LUTC_PARALLEL_LOOPS=0 keeps every loop nest inline (the earlier code, for benchmarks)."""
    return os.environ.get("LUTC_PARALLEL_LOOPS", "1") != "0"


def body_cost(block: Block, operands: int) -> int:
    """Work units of one iteration of a linalg.generic body: its operand loads and ops."""
    return operands + sum(_COSTLY.get(type(op), 1) for op in block.ops)


# names a nest may read from its enclosing scope (emit_c.py's generated identifiers)
_NAME = re.compile(r"\b([tvda]\d+|in\d+|out\d+|W|A|M|MS|o)\b")
# an address `ptr` builds from storage: arena slot or weight at a byte offset
_ADDRESS = re.compile(r"\(\((const )?(\w+) \*\)\((?:A|W) \+ (?:o\[\d+\]|\d+)\)\)")
# the runtime's pool, not in lutrt.h (runtime/lutrt_internal.h): emitted once by emit_c.py when
# tasks or BLAS calls use it
POOL_PROTOTYPE = [
    "/* the runtime's pool (runtime/threadpool.c) */",
    "void lutrt_parallel_for(int nthreads, int ntasks, int grain,",
    "                        void (*fn)(void *ctx, int begin, int end), void *ctx);",
]
_HELPER = [
    "/* fn over [0, n): split over the pool's threads when `work` (its work units) pays for it */",
    "static void lutc_parallel(int64_t n, int64_t work, void (*fn)(void *, int, int), void *ctx)",
    "{",
    "    if (n < 2 || work < LUTC_PARALLEL_WORK) {",
    "        fn(ctx, 0, (int)n);",
    "        return;",
    "    }",
    "    const int64_t per = work / n + 1;",
    "    lutrt_parallel_for(0, (int)n, per >= LUTC_CHUNK_WORK ? 1 : (int)(LUTC_CHUNK_WORK / per),"
    " fn, ctx);",
    "}",
    "",
]


class TaskOutliner:
    def __init__(self, emitter) -> None:
        self.e = emitter
        self.enabled = enabled()
        self.index: dict[str, int] = {}  # task text (name as {N}) -> its number
        self.definitions: list[str] = []  # file-scope structs and functions, in order

    def header(self) -> list[str]:
        """The pool helper and the tasks, for the file scope (nothing if no task exists)."""
        if not self.definitions:
            return []
        return [f"#define LUTC_PARALLEL_WORK {PARALLEL_WORK}  /* below it a nest stays on one "
                "thread */", f"#define LUTC_CHUNK_WORK {CHUNK_WORK}", *_HELPER, *self.definitions]

    def emit(self, extent: int | str, inner_work: int,
             nest: Callable[[str, str], None]) -> None:
        """`nest(begin, end)` emits a loop nest whose outermost loop runs over [begin, end)
        and whose iterations write disjoint memory; `extent` is that loop's trip count (`M`:
        the rows of this call, at most `rows_max`), `inner_work` the work of one iteration."""
        e = self.e
        most = extent if isinstance(extent, int) else (e.rows_max or 1)
        if not self.enabled or most < 2 or most * inner_work < PARALLEL_WORK:
            nest("0", str(extent))
            return
        first = e.counter
        saved = e.lines, e.indent
        e.lines, e.indent = [], 1
        nest("begin", "end")
        body, (e.lines, e.indent) = e.lines, saved
        text = "\n".join(body)

        # arena/weight addresses -> fields p1, p2, ... (in order of appearance)
        addresses: dict[str, str] = {}

        def to_field(m: re.Match) -> str:
            if m.group(0) not in addresses:
                addresses[m.group(0)] = f"p{len(addresses) + 1}"
            return addresses[m.group(0)]

        text = _ADDRESS.sub(to_field, text)
        names: list[str] = []
        for m in _NAME.finditer(text):
            name = m.group(1)
            inner = name[0] in "tvda" and int(name[1:]) > first
            if not inner and name not in names:
                names.append(name)
        decls = {p: _ADDRESS.fullmatch(a).group(0)[2:].split(")(")[0] for a, p in addresses.items()}
        decls.update({n: self._decl_type(n) for n in names})
        exprs = {**{p: a for a, p in addresses.items()}, **{n: n for n in names}}
        restrict = self._restrictable(exprs)
        fields, prologue = [], []
        for local, typ in decls.items():
            fields.append(f"{typ}{'' if typ.endswith('*') else ' '}{local};")
            qual = "restrict " if typ.endswith("*") and local in restrict else ""
            sep = "" if typ.endswith("*") else " "
            prologue.append(f"    {typ}{qual}{sep}{local} = c->{local};")
        template = "\n".join([  # @N@: the task's number, once known
            f"struct lutc_task@N@_ctx {{ {' '.join(fields)} }};",
            "LUTC_ISA_CLONES static void lutc_task@N@(void *arg, int begin, int end)",
            "{",
            "    const struct lutc_task@N@_ctx *c = arg;",
            *prologue, text, "}", ""])
        if template not in self.index:
            self.index[template] = len(self.index) + 1
            self.definitions.append(template.replace("@N@", str(self.index[template])))
        n = self.index[template]
        inits = ", ".join(f".{local} = {exprs[local]}" for local in decls)
        work = inner_work if extent == 1 else f"{extent} * {inner_work}"
        e.line("{")
        e.line(f"    const struct lutc_task{n}_ctx ctx = {{{inits}}};")
        e.line(f"    lutc_parallel({extent}, {work}, lutc_task{n}, (void *)&ctx);")
        e.line("}")

    def _decl_type(self, name: str) -> str:
        """The C type `name` is declared with in the enclosing scope."""
        e = self.e
        if name in e.param_types:
            return e.param_types[name]
        pattern = re.compile(rf"^\s*((?:const )?[A-Za-z_][\w ]*?\s*\**)\s*\b{name} = ")
        for line in reversed(e.lines):
            m = pattern.match(line)
            if m:
                typ = m.group(1).strip()
                return typ.removesuffix("*").rstrip() + " *" if typ.endswith("*") else typ
        raise AssertionError(f"no declaration of {name} before its loop nest")

    def _restrictable(self, exprs: dict[str, str]) -> set[str]:
        """The locals no other local shares storage with (buffer plan roots)."""
        e = self.e
        by_text: dict[str, list] = {}
        for value, text in e.names.items():
            by_text.setdefault(text, []).append(value)
        roots: dict[str, set] = {}
        for local, text in exprs.items():
            roots[local] = {e.plan.storage_of(v) for v in by_text.get(text, [])}
        owners: dict = {}
        for local, rs in roots.items():
            for r in rs:
                owners.setdefault(r, set()).add(local)
        return {local for local, rs in roots.items()
                if all(len(owners[r]) == 1 for r in rs)}
