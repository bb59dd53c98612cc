"""Seeded torch modules whose linear weights are stored low-bit and dequantized in forward."""

from __future__ import annotations

import torch


class GroupDequantLinear(torch.nn.Module):
    """Codes (uint8 or int8, optionally packed 2 x 4-bit / 4 x 2-bit per byte along K, low bits
    first) with per-group scales and zeros: w = (q - z) * s, q unsigned."""

    def __init__(self, k: int, n: int, bits: int = 4, group: int = 32, pack: bool = False,
                 signed: bool = False, zeros: bool = True, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.bits, self.group, self.pack, self.signed = bits, group, pack, signed
        self.k, self.n = k, n
        q = torch.randint(0, 2**bits, (n, k), generator=g, dtype=torch.uint8)
        if pack:
            per = 8 // bits
            packed = torch.zeros((n, k // per), dtype=torch.uint8)
            for i in range(per):
                packed |= q[:, i::per] << (bits * i)
            self.register_buffer("qweight", packed)
        elif signed:  # int8 codes in [-2^(b-1), 2^(b-1)), symmetric: zero point implicit
            self.register_buffer("qweight", (q.to(torch.int16) - 2 ** (bits - 1)).to(torch.int8))
        else:
            self.register_buffer("qweight", q)
        ng = -(-k // group)
        self.register_buffer("scales", torch.rand((n, ng), generator=g) * 0.1 + 0.01)
        if zeros:
            self.register_buffer("zeros", torch.rand((n, ng), generator=g) * (2**bits - 1))
        else:
            self.zeros = None
        self.register_buffer("bias", torch.randn(n, generator=g))

    def codes(self) -> torch.Tensor:
        if self.pack:
            per = 8 // self.bits
            mask = 2**self.bits - 1
            parts = [(self.qweight >> (self.bits * i)) & mask for i in range(per)]
            return torch.stack(parts, dim=-1).reshape(self.n, self.k).float()
        return self.qweight.float()

    def weight(self) -> torch.Tensor:
        s = self.scales.repeat_interleave(self.group, dim=1)[:, : self.k]
        if self.signed:
            return self.codes() * s
        z = self.zeros.repeat_interleave(self.group, dim=1)[:, : self.k]
        return (self.codes() - z) * s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight(), self.bias)


class TernaryLinear(torch.nn.Module):
    """BitNet b1.58 weights stored as float values {-s, 0, +s}, one s per tensor."""

    def __init__(self, k: int, n: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn((n, k), generator=g)
        s = w.abs().mean()
        self.weight = torch.nn.Parameter((w / s).round().clamp(-1, 1) * s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight)


class QuantMLP(torch.nn.Module):
    """x -> low-bit linear -> relu -> low-bit linear, both layers of one format."""

    def __init__(self, make, k: int = 64, hidden: int = 96, n: int = 40):
        super().__init__()
        self.fc1 = make(k, hidden, 0)
        self.fc2 = make(hidden, n, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def bitnet_linear_mlp(k: int = 64, hidden: int = 96, n: int = 40, seed: int = 0):
    """transformers' BitNet BitLinear layers (uint8 [N/4, K] 2-bit codes, weight_scale)."""
    from transformers.integrations.bitnet import BitLinear

    g = torch.Generator().manual_seed(seed)

    def make(kk, nn_, i):
        layer = BitLinear(kk, nn_, bias=False, dtype=torch.float32)
        # four 2-bit codes per byte, each in {0, 1, 2} (ternary -1, 0, +1 after the -1)
        codes = torch.randint(0, 3, (4, *layer.weight.shape), generator=g, dtype=torch.uint8)
        packed = codes[0] | (codes[1] << 2) | (codes[2] << 4) | (codes[3] << 6)
        layer.weight.copy_(packed)
        layer.weight_scale.fill_(0.5 + i)
        return layer

    return QuantMLP(make, k, hidden, n)
