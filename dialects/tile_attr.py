"""`#lut.tile`: the elongated tile `lut-tile` chose for one LUT mpGEMM (docs/design.md §3.5).

    #lut.tile<m2, n256, k512, per_token>

- `m`: per_token: activation rows whose tables are held in registers at once (one table per
  row and step; an int8 16-entry table is one xmm, broadcast to a ymm/zmm); vec_lut: tokens of
  one table tile (the runtime rounds up to 16 and caps at 64);
- `n`: weight rows one unit of work streams (a multiple of the runtime's 32-row block); the
  weight slab n x K stays in L2 while the activation tiles pass over it, and it is the
  grain in which N is split across threads;
- `k`: reduction length per cache step (tables of m rows for k activations stay in L1);
- strategy `per_token` (T-MAC: one table per token, each token looks up every weight index)
  or `vec_lut` (Vec-LUT, §5: one table across the tokens of a tile, a 1 -> m lookup per
  weight index). C emission passes both to the runtime descriptor (strategy, tile_m, tile_n,
  tile_k in runtime/lutrt.h).
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntAttr, StringAttr
from xdsl.ir import ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition, param_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from lutc.runtime.abi import BLOCK_N, STRATEGY_CODES

# the strategies a tile names (the runtime's `auto` is the absence of a tile)
STRATEGIES = tuple(name for name in STRATEGY_CODES if name != "auto")


@irdl_attr_definition
class TileAttr(ParametrizedAttribute):
    name = "lut.tile"

    m: IntAttr = param_def()
    n: IntAttr = param_def()
    k: IntAttr = param_def()
    strategy: StringAttr = param_def()

    @staticmethod
    def get(m: int, n: int, k: int, strategy: str = "per_token") -> TileAttr:
        return TileAttr(IntAttr(m), IntAttr(n), IntAttr(k), StringAttr(strategy))

    @property
    def sizes(self) -> tuple[int, int, int]:
        return (self.m.data, self.n.data, self.k.data)

    @property
    def strategy_name(self) -> str:
        return self.strategy.data

    @classmethod
    def parse_parameters(cls, parser: AttrParser):
        with parser.in_angle_brackets():
            words = parser.parse_comma_separated_list(
                parser.Delimiter.NONE, parser.parse_identifier
            )
        sizes: dict[str, int] = {}
        strategy = "per_token"
        for word in words:
            if word in STRATEGIES:
                strategy = word
            elif word[:1] in ("m", "n", "k") and word[1:].isdigit():
                sizes[word[0]] = int(word[1:])
            else:
                parser.raise_error(
                    f"unknown tile word '{word}' (expected mN, nN, kN, per_token or vec_lut)"
                )
        if set(sizes) != {"m", "n", "k"}:
            parser.raise_error("a tile needs all of mN, nN and kN")
        return [IntAttr(sizes["m"]), IntAttr(sizes["n"]), IntAttr(sizes["k"]),
                StringAttr(strategy)]

    def print_parameters(self, printer: Printer) -> None:
        m, n, k = self.sizes
        printer.print_string(f"<m{m}, n{n}, k{k}, {self.strategy_name}>")

    def verify(self) -> None:
        m, n, k = self.sizes
        if m < 1:
            raise VerifyException(f"a tile needs m >= 1 activation rows, got {m}")
        if n < BLOCK_N or n % BLOCK_N:
            raise VerifyException(
                f"a tile's n must be a positive multiple of {BLOCK_N} weight rows (the runtime's "
                f"block), got {n}")
        if k < 4 or k % 4:
            raise VerifyException(f"a tile's k must be a positive multiple of 4, got {k}")
        if self.strategy_name not in STRATEGIES:
            raise VerifyException(
                f"tile strategy must be one of {', '.join(STRATEGIES)}, got '{self.strategy_name}'")
