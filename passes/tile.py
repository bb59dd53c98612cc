"""`lut-tile`: choose the elongated tile of every LUT mpGEMM (docs/design.md §3.5, §5).

Each `lut.mma` (or `lut.packed_mma`) gets a `tile = #lut.tile<mM, nN, kK, strategy>` attribute
(dialects/tile_attr.py says what each field means) picked by the cost model of
passes/tile_cost.py: per-token tables (T-MAC) with a few register-resident table rows, and
from option `vec_lut_min_m` tokens on the Vec-LUT strategy, one table across the tokens of a
tile with 1 -> N lookups. The default is 0 = never: on the machines measured so far (2026-11) lutc's
per-token kernel beats its Vec-LUT kernel at every M (tile_cost.py has the numbers).

What the generated C does with it (compiler/emit_lut.py): the descriptor's `strategy` selects
the runtime kernel (per-token or Vec-LUT), `tile_m` / `tile_n` are the Vec-LUT kernel's token
tile and weight-row unit (the per-token kernel tiles internally: 1 x 4 blocks for a GEMV, 2 x 2
blocks in ~256 KiB super-blocks otherwise), `tile_k` is recorded. A GEMM of one weight tile
(n >= N: too small to amortize a thread hand-off) runs on one thread; any other on all of the
pool's threads, split by the runtime over weight blocks.

Options: `m`, `n`, `k` force tile sizes (the others come from the model); `strategy` forces
`per_token` or `vec_lut`; `vec_lut_min_m` turns Vec-LUT on from that many tokens;
`autotune=true` times the model's best candidates with the runtime and caches the winner
(passes/tile_autotune.py).

Before:
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> : !lut.table<1x64x8xi8, sg32>, ... -> tensor<1x64xf32>
After:
  %y = lut.mma %table, %sums, %planes, %s as <w2, g64, mirrored> {tile = #lut.tile<m1, n64, k256, per_token>} : ...
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.utils.exceptions import VerifyException

from xdsl.utils.exceptions import PassFailedException
from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.dialects.table_type import TableType
from lutc.dialects.tile_attr import STRATEGIES, TileAttr
from lutc.passes.tile_cost import (
    VEC_LUT_MIN_M,
    Gemm,
    Machine,
    Tile,
    choose_tile,
    host_machine,
    with_strategy,
)


def gemm_of(op: MmaOp | PackedMmaOp) -> Gemm:
    table = op.table.type
    assert isinstance(table, TableType)
    m, t, entries = table.shape
    n = op.result.type.get_shape()[1]
    return Gemm(m=m, n=n, k=4 * t, bits=op.format.nbits, entries=entries,
                entry_bytes=table.entry_bytes, group=op.format.group_size,
                scale_group=table.scale_group.data)


@dataclass
class TileGemms(RewritePattern):
    tile_pass: TilePass
    machine: Machine

    def tile_for(self, gemm: Gemm) -> Tile:
        p = self.tile_pass
        if p.autotune:
            from lutc.passes.tile_autotune import autotune

            best = with_strategy(autotune(gemm, self.machine), gemm, p.vec_lut_min_m)
        else:
            best = choose_tile(gemm, self.machine, p.vec_lut_min_m)
        return Tile(p.m or best.m, p.n or best.n, p.k or best.k, p.strategy or best.strategy)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MmaOp | PackedMmaOp, rewriter: PatternRewriter) -> None:
        if "tile" in op.attributes and not self.tile_pass.forces_anything:
            return
        tile = self.tile_for(gemm_of(op))
        try:
            attr = TileAttr.get(tile.m, tile.n, tile.k, tile.strategy)
        except VerifyException as err:
            raise PassFailedException(f"lut-tile: {err} (options m={self.tile_pass.m} "
                            f"n={self.tile_pass.n} k={self.tile_pass.k})") from None
        op.attributes["tile"] = attr
        rewriter.notify_op_modified(op)


@dataclass(frozen=True)
class TilePass(ModulePass):
    name = "lut-tile"

    m: int = 0  # 0: chosen by the cost model
    n: int = 0
    k: int = 0
    strategy: str = ""  # "", "per_token" or "vec_lut"
    autotune: bool = False
    vec_lut_min_m: int = VEC_LUT_MIN_M

    @property
    def forces_anything(self) -> bool:
        return bool(self.m or self.n or self.k or self.strategy)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.strategy and self.strategy not in STRATEGIES:
            raise PassFailedException(f"lut-tile: strategy must be one of {', '.join(STRATEGIES)}, "
                            f"got '{self.strategy}'")
        pattern = TileGemms(self, host_machine())
        PatternRewriteWalker(pattern, apply_recursively=False).rewrite_module(op)
