"""A low-bit weight matrix as integer codes plus per-group scales and zero points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantizedWeight:
    """w[n, k] = scales[n, k // group] * (codes[n, k] - zero[n, k // group])

    `zeros=None` means the implicit zero point: 2**(bits-1) for plain formats, 1 for ternary
    (codes {0, 1, 2} stand for {-1, 0, +1}).
    """
    codes: np.ndarray           # uint8 [N, K], values in [0, 2**bits - 1]
    scales: np.ndarray          # float32 [N, ceil(K / group)]
    zeros: np.ndarray | None    # float32 [N, ceil(K / group)] or None
    bits: int
    group: int
    ternary: bool = False
    source_type: str = ""

    def __post_init__(self):
        n, k = self.codes.shape
        groups = -(-k // self.group)
        assert self.codes.dtype == np.uint8, self.codes.dtype
        assert 1 <= self.bits <= 8, self.bits
        assert self.scales.shape == (n, groups) and self.scales.dtype == np.float32
        assert self.zeros is None or (self.zeros.shape == (n, groups)
                                      and self.zeros.dtype == np.float32)
        assert not self.ternary or self.bits == 2

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    @property
    def implicit_zero(self) -> int:
        return 1 if self.ternary else 1 << (self.bits - 1)

    def dequantize(self) -> np.ndarray:
        """float32 [N, K]."""
        n, k = self.codes.shape
        groups = self.scales.shape[1]
        pad = groups * self.group - k
        codes = self.codes if pad == 0 else np.pad(self.codes, ((0, 0), (0, pad)))
        q = codes.reshape(n, groups, self.group).astype(np.float32)
        zero = (np.float32(self.implicit_zero) if self.zeros is None
                else self.zeros[:, :, None])
        w = self.scales[:, :, None] * (q - zero)
        return w.reshape(n, groups * self.group)[:, :k]

    def take_rows(self, rows) -> "QuantizedWeight":
        """The same weight restricted to (or permuted by) `rows`: exact, codes and all."""
        return QuantizedWeight(
            codes=np.ascontiguousarray(self.codes[rows]),
            scales=np.ascontiguousarray(self.scales[rows]),
            zeros=None if self.zeros is None else np.ascontiguousarray(self.zeros[rows]),
            bits=self.bits, group=self.group, ternary=self.ternary, source_type=self.source_type)
