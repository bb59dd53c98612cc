"""`#lut.wfmt`: how a low-bit weight matrix is encoded.

A weight W[N, K] is stored as unsigned codes q in [0, 2^bits - 1] (bits 1..8), a scale per group of
`group` consecutive weights along K and a zero point per group:
    w[n, k] = s[n, k / G] * (q[n, k] - z[n, k / G])            (docs/design.md §1)
Zero points are either an explicit tensor (`zp`) or implicit: 2^(bits-1) for plain
symmetric weights, 1 for ternary ({0, 1, 2} - 1 = {-1, 0, 1}).
`mirrored` marks weights re-encoded by `lut-symmetrize` (q' = 2q - (2^W - 1), s' = s/2,
z' = 2z + 1 - 2^W) whose codes index 8-entry tables with a sign bit.

Syntax: `#lut.wfmt<w2, g64, zp>`, `#lut.wfmt<w4, g32>`, `#lut.wfmt<ternary, g256, mirrored>`,
`#lut.wfmt<w8, g32>` (GGUF Q8_0), `#lut.wfmt<w6, g16>` (Q6_K's codes).
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntAttr
from xdsl.ir import ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition, param_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from lutc.runtime.abi import MAX_BITS  # the widest weight code (8 bits: GGUF Q8_0)


@irdl_attr_definition
class WeightFormatAttr(ParametrizedAttribute):
    name = "lut.wfmt"

    bits: IntAttr = param_def()
    group: IntAttr = param_def()
    has_zero: IntAttr = param_def()
    ternary: IntAttr = param_def()
    mirrored: IntAttr = param_def()

    @staticmethod
    def get(
        bits: int,
        group: int,
        has_zero: bool = False,
        ternary: bool = False,
        mirrored: bool = False,
    ) -> WeightFormatAttr:
        return WeightFormatAttr(
            IntAttr(bits),
            IntAttr(group),
            IntAttr(int(has_zero)),
            IntAttr(int(ternary)),
            IntAttr(int(mirrored)),
        )

    # -- derived facts, so passes never re-derive them ------------------------
    @property
    def nbits(self) -> int:
        return self.bits.data

    @property
    def group_size(self) -> int:
        return self.group.data

    @property
    def is_ternary(self) -> bool:
        return bool(self.ternary.data)

    @property
    def is_mirrored(self) -> bool:
        return bool(self.mirrored.data)

    @property
    def has_zero_point(self) -> bool:
        return bool(self.has_zero.data)

    @property
    def table_entries(self) -> int:
        return 8 if self.is_mirrored else 16

    def implicit_zero(self) -> float:
        """Zero point used when no zero tensor is given (after re-encoding if mirrored)."""
        z = 1.0 if self.is_ternary else float(2 ** (self.nbits - 1))
        return 2 * z + 1 - 2**self.nbits if self.is_mirrored else z

    def with_mirrored(self) -> WeightFormatAttr:
        return WeightFormatAttr.get(
            self.nbits, self.group_size, self.has_zero_point, self.is_ternary, True
        )

    def num_groups(self, k: int) -> int:
        return -(-k // self.group_size)

    # -- syntax ---------------------------------------------------------------
    @classmethod
    def parse_parameters(cls, parser: AttrParser):
        with parser.in_angle_brackets():
            words = parser.parse_comma_separated_list(
                parser.Delimiter.NONE, parser.parse_identifier
            )
        bits = group = None
        ternary = has_zero = mirrored = False
        for word in words:
            if word == "ternary":
                ternary, bits = True, 2
            elif word == "zp":
                has_zero = True
            elif word == "mirrored":
                mirrored = True
            elif word[:1] == "w" and word[1:].isdigit():
                bits = int(word[1:])
            elif word[:1] == "g" and word[1:].isdigit():
                group = int(word[1:])
            else:
                parser.raise_error(
                    f"unknown weight-format word '{word}' (expected wN, ternary, gN, zp, mirrored)"
                )
        if bits is None or group is None:
            parser.raise_error("a weight format needs a bit width (wN or ternary) and a group (gN)")
        return [IntAttr(bits), IntAttr(group), IntAttr(int(has_zero)), IntAttr(int(ternary)),
                IntAttr(int(mirrored))]

    def print_parameters(self, printer: Printer) -> None:
        words = ["ternary" if self.is_ternary else f"w{self.nbits}", f"g{self.group_size}"]
        if self.has_zero_point:
            words.append("zp")
        if self.is_mirrored:
            words.append("mirrored")
        printer.print_string("<" + ", ".join(words) + ">")

    def verify(self) -> None:
        if not 1 <= self.nbits <= MAX_BITS:
            raise VerifyException(f"weight bit width must be 1..{MAX_BITS}, got {self.nbits}")
        if self.is_ternary and self.nbits != 2:
            raise VerifyException("ternary weights are encoded on 2 bits")
        if self.is_ternary and self.has_zero_point:
            raise VerifyException("ternary weights have an implicit zero point of 1")
        if self.group_size < 4 or self.group_size % 4:
            raise VerifyException(
                f"weight group size must be a positive multiple of 4, got {self.group_size}"
            )
