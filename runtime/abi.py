"""The lutrt ABI as Python sees it: each fact of `runtime/lutrt.h` that Python code relies on,
defined once, here.

`lutrt.h` is the owner for C; this module mirrors it for everything written in Python (the
ctypes bindings, the dialect verifiers, the passes' cost model, the C emitter, `--stats`), and
`test/runtime/test_abi.py` parses `lutrt.h` and checks that the two agree. Change a fact in both
places or that test fails. What each fact means: docs/design.md §4.

No imports from the rest of lutc: every layer may depend on this one.
"""

from __future__ import annotations

# ---- constants (#define / enum in lutrt.h) -----------------------------------------------

BLOCK_N = 32  # LUTRT_BLOCK_N: weight rows per packed block (scales/zeros follow the blocks)
# LUTRT_MAX_BITS: the widest weight code, 8 bits (GGUF Q8_0: g32, implicit zero 128; Q6_K: 6
# bits, g16). The kernels run B bit planes bit-serially, so the table never grows with B (§2).
MAX_BITS = 8
ACTS_PER_TABLE = 4  # g: activations per table, K % 4 == 0, J = K / 4 tables per row
ENTRIES_PLAIN = 16  # 2^g entries of a plain table
ENTRIES_MIRRORED = 8  # 2^(g-1) entries of a symmetrized table (sign bit in the code)

# LUTRT_STRATEGY_*: the descriptor's `strategy` field (lut-tile's #lut.tile strategy word)
STRATEGY_CODES: dict[str, int] = {"auto": 0, "per_token": 1, "vec_lut": 2}
# lutrt_mma_desc.layout: LUTRT_LAYOUT_BIT_PLANES / LUTRT_LAYOUT_CODE_BYTES
LAYOUT_CODES: dict[str, int] = {"bit_planes": 0, "code_bytes": 1}
CODE_BYTES_CHUNK = 128  # bytes per (block, table) of the code-byte layout: 32 rows x 4 codes
# LUTRT_VEC_LUT_MIN_M: tokens from which strategy auto runs Vec-LUT; 0 = never (measured
# 2026-11-22 on the 2-core AVX2 EPYC: no crossover at M = 16..256; lutrt.h has the numbers)
VEC_LUT_MIN_M = 0
# LUTRT_I8ACT_MIN_M / _NARROW (B <= 2): tokens from which lut.mma on int8 tables runs the
# two-pass int8-activation kernel on AVX512-VNNI CPUs (lutrt.h has the measurements:
# bench/bench_large_m.py --sweep, it wins from 3 tokens on against per-table tables)
I8ACT_MIN_M = 3
I8ACT_MIN_M_NARROW = 3
# the same on AVX2 CPUs without AVX512-VNNI (mma_i8act_avx2.c): _NARROW for B <=
# LUTRT_I8ACT_AVX2_BYTES_MAX_BITS (its vpmaddubsw kernel), the other for wider codes
I8ACT_MIN_M_AVX2 = 6
I8ACT_MIN_M_AVX2_NARROW = 8
I8ACT_AVX2_BYTES_MAX_BITS = 4
# LUTRT_ONE_PASS_MAX_BITS: the widest readers (consumer_bits; lutrt.h) whose activation groups
# may round to one int8 pass (crest factor <= 3.5) once lutrt_set_one_pass_max_bits allows it
ONE_PASS_MAX_BITS = 4
# LUTRT_F32DQ_MIN_M: tokens from which lut.mma on f32 tables (the lossless mode) runs the
# dequantize-then-FMA kernel on AVX-512 CPUs (lutrt.h)
F32DQ_MIN_M = 8
F32DQ_MIN_M_NARROW = 32  # B <= 2
F32DQ_MIN_M_WIDE = 1  # B > 4

# ---- lutrt_mma_desc: field order and C types (lutrt.h documents each field) --------------

MMA_DESC_FIELDS: tuple[tuple[str, str], ...] = (
    ("M", "int32_t"),
    ("N", "int32_t"),
    ("K", "int32_t"),
    ("bits", "int32_t"),
    ("group", "int32_t"),
    ("mirrored", "int32_t"),
    ("table_i8", "int32_t"),
    ("scale_group", "int32_t"),
    ("zimp", "float"),
    ("num_threads", "int32_t"),
    ("strategy", "int32_t"),
    ("tile_m", "int32_t"),
    ("tile_n", "int32_t"),
    ("tile_k", "int32_t"),
    ("consumer_bits", "int32_t"),
    ("layout", "int32_t"),
)


# ---- sizes derived from a descriptor (lutrt_num_* / lutrt_*_bytes in desc.c) -------------

def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def num_tables(k: int) -> int:
    """lutrt_num_tables: J = K / 4."""
    return k // ACTS_PER_TABLE


def num_groups(k: int, group: int) -> int:
    """lutrt_num_groups: NG = ceil(K / G)."""
    return _cdiv(k, group)


def num_scale_groups(k: int, scale_group: int, table_i8: bool = True) -> int:
    """lutrt_num_scale_groups: NS = ceil(K / scale_group) int8 table scales per row (0 for
    f32 tables)."""
    return _cdiv(k, scale_group) if table_i8 else 0


def num_blocks(n: int) -> int:
    """lutrt_num_blocks: NB = ceil(N / 32)."""
    return _cdiv(n, BLOCK_N)


def table_entries(mirrored: bool) -> int:
    return ENTRIES_MIRRORED if mirrored else ENTRIES_PLAIN


def table_entry_bytes(table_i8: bool) -> int:
    """An int8 table entry is 1 byte, an f32 one 4."""
    return 1 if table_i8 else 4


def table_row_bytes(k: int, entries: int, table_i8: bool) -> int:
    """lutrt_table_row_bytes: one activation row of tables. f32: J * E * 4 bytes. int8: the
    J * E entries, then the row's two-pass int8 activations hi[K], lo[K] and, per activation
    group, f32 ascale, S_hi, S_lo (J floats each, sized for the finest group so the row size
    depends on K and E only), which the int8-activation kernel reads at large M (lutrt.h).
    The int8 tables' own f32 scales are a separate array of NS floats."""
    entries_bytes = num_tables(k) * entries * table_entry_bytes(table_i8)
    if not table_i8:
        return entries_bytes
    return entries_bytes + 2 * k + 3 * 4 * num_tables(k)


ACT_QMAX = 16256  # LUTRT_ACT_QMAX: xq = round(x / ascale) in [-16256, 16256] = 127 * 128


ACT_GROUP_MAX = 128  # LUTRT_ACT_GROUP_MAX


def act_group(k: int, group: int) -> int:
    """lutrt_act_group: activations per int8-activation scale (lutrt.h): the largest multiple
    of 4 that is <= 128 and divides the weight group G, or 128 when G >= K (one group)."""
    if group >= k:
        return ACT_GROUP_MAX
    return next(ag for ag in range(ACT_GROUP_MAX, 3, -4) if group % ag == 0)


def num_act_groups(k: int, group: int, table_i8: bool = True) -> int:
    """lutrt_num_act_groups: NA = ceil(K / act_group) activation scales per int8 table row
    (0 for f32 tables)."""
    return _cdiv(k, act_group(k, group)) if table_i8 else 0


def packed_weight_bytes(bits: int, n: int, k: int, layout: str = "bit_planes") -> int:
    """lutrt_packed_weight_bytes: NB * J * 16 * B; the code-byte layout NB * J * 128."""
    chunk = CODE_BYTES_CHUNK if layout == "code_bytes" else 16 * bits
    return num_blocks(n) * num_tables(k) * chunk


def packed_scale_count(n: int, k: int, group: int) -> int:
    """lutrt_packed_scale_count: NB * NG * 32 floats (scales, and zeros if any)."""
    return num_blocks(n) * num_groups(k, group) * BLOCK_N
