"""`lut-quantize-table`: int8 lookup tables (docs/design.md §3.4).

Each f32 table becomes int8 entries with one f32 scale per `scale-group` activations (T-MAC:
scale = max over the group's tables of (|a0| + |a1| + |a2| + |a3|) / 127, the largest entry any
of those tables can hold, so no entry is clipped). Lookups then return int8, and `lut.mma`
sums them in int16 within one scale group before converting to float.

int16 accumulation bound: one lookup is at most 127 in magnitude; bit-serial combination over
B <= 4 planes weighs it by at most 2^B - 1 = 15; a scale group holds at most 64 activations =
16 tables (the table type refuses larger groups). So one int16 accumulator sees at most
127 * 15 * 16 = 30480 < 32767: no overflow, no saturation. Codes of B = 5..8 bits (GGUF Q6_K,
Q8_0) would reach 127 * 255 * 16, so the kernels keep planes 0..3 and 4..B-1 in two int16
accumulators (each within the bound above) and add them as lo + 16 hi in int32.

Choice of the scale group (option `scale-group`, default 4: one scale per table, the LUT
Tensor Core paper's choice): it must divide the weight group G of every GEMM reading the table
(a table scale never straddles a weight scale) and the precompute's sum group, unless that is
a single group over all of K. When the requested value does not divide it, the largest
multiple of 4 that divides it and is at most 64 is used (4 always qualifies).

Why per-table scales are the default (issue 10), measured 2026-12-01 on SmolLM2-135M-Instruct
with its exact Q4_1 codes, perplexity over 8,183 tokens of English (test/llm/data, 512-token
windows) against transformers on the same GGUF (21.6674): scale group 32 gives 21.7073
(+0.18%), 8 gives +0.12%, 4 gives 21.6679 (+0.002%; +0.092% over the whole 9,862-token
text, where the default pipeline, whose prefill takes lutrt_mma's two-pass int8-activation
path, gives +0.0006%). LLM activations carry a few outlier
channels; with a shared scale one outlier coarsens the 7 tables around it, with per-table
scales it only coarsens its own. Random tiny Llama/Qwen3 (w4g32, w2g64, ternary): logits NMSE
vs f32 tables 6-13e-5 at 32, 2.5-5.2e-5 at 4. Cost: per-table scales lie on a power-of-two
grid per 8 tables (lutrt.h), so the AVX-512 kernel multiplies each table's int16 lookup sum
by its integer multiplier in int32 (vpmaddwd / vpdpwssd) and converts to float once per 8
tables, like scale group 32; the first version, which converted after every table, ran a
1-thread GEMV 1.54x slower than scale group 32 (bench/bench_accuracy.py has today's ratio).
From 3 tokens on, lutrt_mma's int8-activation path takes over when the CPU has AVX512-VNNI.
`scale-group=32` keeps the coarser tables.

Before:
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xf32>, tensor<3x4xf32>
After (scale-group=32; the default 4 prints sg4):
  %table, %sums = lut.precompute %x sums 64 : tensor<3x256xf32> -> !lut.table<3x64x8xi8, sg32>, tensor<3x4xf32>
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from xdsl.utils.exceptions import PassFailedException
from lutc.dialects.fused_precompute import FusedPrecomputeOp
from lutc.dialects.lut_ops import MmaOp, PrecomputeOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.dialects.table_type import TableType

MAX_SCALE_GROUP = 64  # 16 tables: the int16 accumulation bound above


def choose_scale_group(requested: int, k: int, groups: list[int]) -> int:
    """The table scale group for activations of length `k` whose tables serve weight/sum
    groups `groups` (each G >= k is one group over all of K and constrains nothing)."""
    limit = 0
    for g in groups:
        if g < k:
            limit = gcd(limit, g)
    if not limit:
        return requested  # one group over all of K: any scale group works
    if limit % requested == 0:
        return requested
    return max(d for d in range(4, MAX_SCALE_GROUP + 1, 4) if limit % d == 0)


@dataclass
class QuantizeTables(RewritePattern):
    scale_group: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: PrecomputeOp | FusedPrecomputeOp,
                          rewriter: PatternRewriter) -> None:
        typ = op.table.type
        assert isinstance(typ, TableType)
        if typ.is_quantized:
            return
        m, t, e = typ.shape
        groups = [op.sum_group.value.data]
        for use in op.table.uses:
            if isinstance(use.operation, (MmaOp, PackedMmaOp)):
                groups.append(use.operation.format.group_size)
        sg = choose_scale_group(self.scale_group, 4 * t, groups)
        rewriter.replace_value_with_new_type(op.table, TableType.get(m, t, e, True, sg))


@dataclass(frozen=True)
class QuantizeTablePass(ModulePass):
    name = "lut-quantize-table"

    scale_group: int = 4

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        sg = self.scale_group
        if sg < 4 or sg % 4 or sg > MAX_SCALE_GROUP:
            raise PassFailedException(f"lut-quantize-table: scale-group must be a multiple of 4 in "
                            f"4..{MAX_SCALE_GROUP} (int16 accumulation bound), got {sg}")
        PatternRewriteWalker(QuantizeTables(sg), apply_recursively=False).rewrite_module(op)
