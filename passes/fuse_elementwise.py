"""`lut-fuse-elementwise`: chains of elementwise `linalg.generic`s become one loop nest
(producer-consumer fusion, as MLIR's `linalg-fuse-elementwise-ops`; docs/design.md §6).

The frontends import one `linalg.generic` per operator: a torch.export or ONNX SwiGLU is
sigmoid, then x * sigmoid, then that * up; an RMSNorm is x * x, its sum, the scale by
1 / K, + eps, rsqrt, x * rsqrt, then * weight. Emitted as they are, each is a loop nest that
writes its whole tensor to memory for the next to read back (the 492M bench model's SwiGLU at
512 tokens: three passes over 11 MB per layer).

A producer is folded into its consumer when
  - the producer is a `linalg.generic` whose loops are all parallel, with one result that
    has one use (the consumer's input), an output map that is a permutation of its loops,
    and a body that does not read its output (`outs` is only a shape) and holds no nested
    regions;
  - the consumer is a `linalg.generic` (any iterators: x * x folds into its sum) that reads
    the result through a permutation of *all* its loops, so that every producer element is
    computed exactly once (a broadcast read, like rsqrt's per-row value in x * rsqrt, would
    recompute it for every column: left alone);
  - both sit in the same block with the same `lutc.layer` (repeated layers keep identical
    bodies, compiler/codegen/emit_c.py).
The fused op reads the producer's inputs through the producer's maps composed with the
consumer's (each producer loop d_p becomes the consumer loop that reads the same element),
runs the producer's body (its `linalg.index` renumbered the same way), then the consumer's
with the producer's yielded value in place of the operand. Every element goes through the
same float operations in the same order as before, so results are bitwise equal; the
intermediate tensor, its loop nest and its buffer are gone.

It runs after `lut-fuse-attention` (which matches the frontends' unfused attention chains)
and before `lut-lower-mpgemm` and `lut-fuse-precompute` (which then builds tables inside the
fused producer of each GEMM's activations). Named ops (matmul, transpose) are left alone.

Before:
  %s = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
       ins(%g : tensor<4x64xf32>) outs(%e0 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %n = arith.negf %a : f32
    %x = math.exp %n : f32
    ...
    linalg.yield %sig : f32
  } -> tensor<4x64xf32>
  %y = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
       ins(%g, %s : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e1 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<4x64xf32>
After:
  %y = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
       ins(%g, %g : tensor<4x64xf32>, tensor<4x64xf32>) outs(%e1 : tensor<4x64xf32>) {
  ^bb0(%a: f32, %a2: f32, %o: f32):
    %n = arith.negf %a2 : f32
    ...
    %m = arith.mulf %a, %sig : f32
    linalg.yield %m : f32
  } -> tensor<4x64xf32>
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import AffineMapAttr, ModuleOp
from xdsl.dialects.linalg import ops as linalg
from xdsl.ir import Block, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from lutc.dialects.lut import LAYER_ATTR
from lutc.passes.tensor_dce import erase_dead_tensor_ops


def permutation(amap: AffineMap) -> tuple[int, ...] | None:
    """(p_0, ..., p_{n-1}) where result r of `amap` is d_{p_r} and every dim appears once;
    None when `amap` is not a permutation of its dims (a broadcast, a constant, a symbol)."""
    if amap.num_symbols or len(amap.results) != amap.num_dims:
        return None
    dims = []
    for expr in amap.results:
        if not isinstance(expr, AffineDimExpr):
            return None
        dims.append(expr.position)
    return tuple(dims) if sorted(dims) == list(range(amap.num_dims)) else None


def _maps(op: linalg.GenericOp) -> list[AffineMap]:
    return [m.data for m in op.indexing_maps.data]


def _all_parallel(op: linalg.GenericOp) -> bool:
    return all(t.data.value == "parallel" for t in op.iterator_types.data)


def _layer(op: linalg.GenericOp):
    return op.attributes.get(LAYER_ATTR)


def producer_dims(producer: linalg.GenericOp, consumer: linalg.GenericOp,
                  operand: int) -> tuple[int, ...] | None:
    """For each producer loop, the consumer loop that reads the element it computes, or None
    when `producer` may not be fused into `consumer`'s input `operand` (module docstring)."""
    if len(producer.outputs) != 1 or len(producer.res) != 1 or not _all_parallel(producer):
        return None
    result = producer.res[0]
    if result.uses.get_length() != 1 or consumer.inputs[operand] is not result:
        return None
    if producer.parent is not consumer.parent or _layer(producer) != _layer(consumer):
        return None
    out_arg = producer.body.block.args[len(producer.inputs)]
    if out_arg.uses.get_length():  # the body reads its output: not elementwise
        return None
    if any(op.regions for op in producer.body.block.ops):  # a linalg.index in a nested
        return None  # region would keep the producer's loop numbering
    out_perm = permutation(_maps(producer)[len(producer.inputs)])
    read_perm = permutation(_maps(consumer)[operand])
    if out_perm is None or read_perm is None or len(out_perm) != len(read_perm):
        return None
    dims = [0] * len(out_perm)
    for r, p in enumerate(out_perm):  # producer loop p writes result dim r, which the
        dims[p] = read_perm[r]         # consumer's loop read_perm[r] reads
    return tuple(dims)


def fuse(producer: linalg.GenericOp, consumer: linalg.GenericOp, operand: int,
         dims: tuple[int, ...]) -> linalg.GenericOp:
    """The consumer with `producer` (its input `operand`) inlined; see the module docstring."""
    n_dims = len(consumer.iterator_types.data)
    new_dims = [AffineDimExpr(d) for d in dims]
    p_maps = [m.replace_dims_and_symbols(new_dims, [], n_dims, 0)
              for m in _maps(producer)[:len(producer.inputs)]]
    c_maps = _maps(consumer)
    c_ins = list(consumer.inputs)
    inputs = c_ins[:operand] + list(producer.inputs) + c_ins[operand + 1:]
    maps = c_maps[:operand] + p_maps + c_maps[operand + 1:]
    c_args = consumer.body.block.args
    p_args = producer.body.block.args[:len(producer.inputs)]
    old_args = (*c_args[:operand], *p_args, *c_args[operand + 1:])
    block = Block(arg_types=[a.type for a in old_args])
    for old, new in zip(old_args, block.args):
        new.name_hint = old.name_hint
    mapping: dict[SSAValue, SSAValue] = {}
    for old, new in zip(p_args, block.args[operand:]):
        mapping[old] = new
    for body_op in producer.body.block.ops:
        if isinstance(body_op, linalg.YieldOp):
            value = mapping.get(body_op.operands[0], body_op.operands[0])
            continue
        if isinstance(body_op, linalg.IndexOp):
            clone = linalg.IndexOp(dims[body_op.dim.value.data])
        else:
            clone = body_op.clone(value_mapper=mapping)
        for old, new in zip(body_op.results, clone.results):
            mapping[old] = new
        block.add_op(clone)
    shift = len(p_args) - 1
    mapping = {c_args[operand]: value}
    for i, arg in enumerate(c_args):
        if i != operand:
            mapping[arg] = block.args[i if i < operand else i + shift]
    for body_op in consumer.body.block.ops:
        block.add_op(body_op.clone(value_mapper=mapping))
    fused = linalg.GenericOp(inputs, list(consumer.outputs), Region(block),
                             [AffineMapAttr(m) for m in maps], consumer.iterator_types,
                             [r.type for r in consumer.res], consumer.doc, consumer.library_call)
    fused.attributes.update(consumer.attributes)
    for old, new in zip(consumer.res, fused.res):
        new.name_hint = old.name_hint
    return fused


class FuseProducer(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, consumer: linalg.GenericOp, rewriter: PatternRewriter, /):
        for operand, value in enumerate(consumer.inputs):
            producer = value.owner
            if not isinstance(producer, linalg.GenericOp):
                continue
            dims = producer_dims(producer, consumer, operand)
            if dims is None:
                continue
            rewriter.replace(consumer, fuse(producer, consumer, operand, dims))
            rewriter.erase(producer)
            return


@dataclass(frozen=True)
class FuseElementwisePass(ModulePass):
    name = "lut-fuse-elementwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FuseProducer(), apply_recursively=True).rewrite_module(op)
        erase_dead_tensor_ops(op)
