"""The cost model `lut-tile` chooses elongated tiles with (docs/design.md §3.5, §5, §6).

A tile of a LUT mpGEMM out[M, N] is m activation rows x n weight rows x k activations:
- registers: the m rows' tables are held in SIMD registers (one 16-entry int8 table = one xmm,
  broadcast to a ymm), next to 2 accumulators (2 x 16 int16 lanes) per row and 32-row weight
  block of the register tile, and ~3 temporaries: m * (1 + 2 * blocks) + 3 <= registers
  (16 ymm with AVX2, 32 zmm with AVX-512). AVX2 gives m2 x 2 blocks (the paper's M2 N64) or
  m1 x 4 blocks (four weight streams for a GEMV, §6);
- weights stream once per activation tile: the weight slab n x K of a tile stays in L2
  (<= L2/2) while the ceil(M/m) activation tiles pass over it, so it is read from DRAM once and
  from L2 ceil(M/m) times; a slab that does not fit is re-read from DRAM per activation tile;
- tables are re-read once per weight tile (ceil(N/n) times); k is the largest step whose tables
  (m rows) and register-tile weights fit in half of L1;
- n is also the grain in which N is split across threads (a thread hand-off costs ~2 us), so
  small GEMMs stay on one thread and large ones use every core.
Modelled time = DRAM bytes / DRAM bandwidth + L2 bytes / L2 bandwidth + lookups / lookup rate,
divided over the threads the tile allows. Bandwidths and rates are per core, orders of magnitude
measured 2026-11 on the 2-core AVX2/AVX-512 EPYC VMs (§6), not calibrated per CPU: they rank
candidates.

The strategy: `vec_lut` (one table across the tokens, 1 -> N lookups, runtime/lmma_vlut_avx2.c)
from VEC_LUT_MIN_M tokens on, `per_token` below. Vec-LUT's published numbers (2.1-2.6x at
M = 32..256, docs/design.md §5) are against ggml's per-token kernel; against lutc's own vpshufb
per-token kernel, lutc's Vec-LUT kernel measured 0.55-0.9x (2026-11-22, 2-core AVX2 EPYC) (2-bit and ternary,
K = N = 4096, M = 16..256, 1 and 2 threads; bench/bench_kernels.py), so there is no crossover
and VEC_LUT_MIN_M is 0 = never (the same as the runtime's LUTRT_VEC_LUT_MIN_M). The pass option
`vec_lut_min_m` turns it on from a given M.

Cache sizes come from /sys/devices/system/cpu/cpu0/cache (fallback 32 KiB / 1 MiB / 32 MiB).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from lutc.runtime.abi import BLOCK_N, VEC_LUT_MIN_M, table_row_bytes

# measured 2026-11 on the 2-core EPYC VMs (orders of magnitude, see above):
DRAM_BW = 12e9  # bytes/s per core streaming several weight rows at once (§6)
L2_BW = 60e9  # bytes/s per core
LOOKUP_RATE = 3e9  # 32-lane vpshufb lookups/s per core
THREAD_HANDOFF_S = 2e-6  # one pool hand-off
VEC_LUT_TILE_M = 64  # tokens per Vec-LUT table tile (the runtime's maximum and default)


@dataclass(frozen=True)
class Machine:
    l1: int = 32 << 10
    l2: int = 1 << 20
    l3: int = 32 << 20
    registers: int = 16
    cores: int = 1
    model: str = "unknown"


def _size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


@functools.cache
def host_machine() -> Machine:
    """This CPU's data caches, SIMD register count, core count and model name."""
    sizes = {}
    cache = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(cache.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            if kind in ("Data", "Unified"):
                sizes[level] = _size((index / "size").read_text())
        except (OSError, ValueError):
            continue
    model, flags = "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    default = Machine()
    return Machine(
        l1=sizes.get(1, default.l1), l2=sizes.get(2, default.l2), l3=sizes.get(3, default.l3),
        registers=32 if " avx512bw" in flags else 16,
        cores=os.cpu_count() or 1, model=model,
    )


@dataclass(frozen=True)
class Gemm:
    """What the cost model knows of one `lut.mma`."""

    m: int
    n: int
    k: int
    bits: int
    entries: int  # 8 (mirrored) or 16
    entry_bytes: int  # 1 (int8 tables) or 4
    group: int  # weight scale group (>= k: one group)
    scale_group: int = 0  # int8 tables: activations per table scale

    @property
    def k_unit(self) -> int:
        """k steps are whole weight groups (or whole table-scale groups when one weight
        group spans K)."""
        if self.group < self.k:
            return self.group
        return self.scale_group or 4


@dataclass(frozen=True)
class Tile:
    m: int
    n: int
    k: int
    strategy: str
    seconds: float = 0.0  # modelled

    def threads(self, gemm: Gemm, machine: Machine) -> int:
        return max(1, min(machine.cores, -(-gemm.n // self.n)))


def _register_blocks(m: int, machine: Machine) -> int:
    """32-row weight blocks a register tile of m rows can accumulate (0: does not fit)."""
    blocks = (machine.registers - 3 - m) // (2 * m)
    return min(blocks, 4)


def _k_step(gemm: Gemm, m: int, blocks: int, machine: Machine) -> int:
    """Largest multiple of k_unit dividing K (or K) whose working set fits half of L1."""
    unit = min(gemm.k_unit, gemm.k)
    best = unit
    for k in range(unit, gemm.k + 1, unit):
        if gemm.k % k and k != gemm.k:
            continue
        tables = m * table_row_bytes(k, gemm.entries, gemm.entry_bytes == 1)
        weights = blocks * BLOCK_N * k * gemm.bits // 8
        if tables + weights <= machine.l1 // 2:
            best = k
    return best


def modelled_seconds(gemm: Gemm, m: int, n: int, blocks: int, machine: Machine) -> float:
    weight_bytes = gemm.n * gemm.k * gemm.bits / 8
    table_bytes = gemm.m * table_row_bytes(gemm.k, gemm.entries, gemm.entry_bytes == 1)
    act_tiles = -(-gemm.m // m)
    weight_tiles = -(-gemm.n // n)
    slab = n * gemm.k * gemm.bits / 8
    if slab <= machine.l2 / 2:
        dram, l2 = weight_bytes, weight_bytes * act_tiles
    else:
        dram, l2 = weight_bytes * act_tiles, 0.0
    l2 += table_bytes * weight_tiles
    if table_bytes > machine.l2 / 2:
        dram += table_bytes * weight_tiles
    # lookups (32 lanes each), plus weight unpacking amortized over m rows and table loads
    # amortized over the register tile's blocks
    lookups = gemm.m * gemm.n * (gemm.k // 4) * gemm.bits / BLOCK_N
    compute = lookups * (1 + 2 / m + 1 / (2 * blocks)) / LOOKUP_RATE
    threads = max(1, min(machine.cores, weight_tiles))
    handoff = THREAD_HANDOFF_S if threads > 1 else 0.0
    return (dram / DRAM_BW + l2 / L2_BW + compute) / threads + handoff


def candidates(gemm: Gemm, machine: Machine) -> list[Tile]:
    """Every feasible per-token tile with its modelled time, fastest first."""
    n_max = -(-gemm.n // BLOCK_N) * BLOCK_N
    ns = sorted({min(n_max, BLOCK_N << i) for i in range(8)} | {n_max})
    tiles = []
    for m in (1, 2, 4, 8):
        if m > gemm.m and m > 1:
            continue
        blocks = _register_blocks(m, machine)
        if blocks < 1:
            continue
        k = _k_step(gemm, m, blocks, machine)
        for n in ns:
            tiles.append(Tile(m, n, k, "per_token", modelled_seconds(gemm, m, n, blocks, machine)))
    # ties go to the larger n (fewer table re-reads), then the smaller m
    return sorted(tiles, key=lambda t: (round(t.seconds, 12), -t.n, t.m))


def with_strategy(best: Tile, gemm: Gemm, vec_lut_min_m: int = VEC_LUT_MIN_M) -> Tile:
    """From `vec_lut_min_m` tokens on (0: never): one table across a tile of up to 64 tokens
    (Vec-LUT; m is the token tile, rounded up to 16 as the runtime does); the weight tile and
    threads stay those of the best per-token tile."""
    if vec_lut_min_m > 0 and gemm.m >= vec_lut_min_m:
        m = min(-(-gemm.m // 16) * 16, VEC_LUT_TILE_M)
        return Tile(m, best.n, best.k, "vec_lut", best.seconds)
    return best


def choose_tile(gemm: Gemm, machine: Machine, vec_lut_min_m: int = VEC_LUT_MIN_M) -> Tile:
    return with_strategy(candidates(gemm, machine)[0], gemm, vec_lut_min_m)
