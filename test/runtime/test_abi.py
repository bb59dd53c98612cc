"""runtime/abi.py (the Python mirror of the runtime ABI) agrees with runtime/lutrt.h.

The header is parsed, not trusted: change a #define, an enum value or the descriptor's fields
on one side only and these tests fail. The size functions are checked against the built
library's lutrt_num_* / lutrt_*_bytes on a sweep of descriptors.
"""

from __future__ import annotations

import ctypes
import itertools
import re
from pathlib import Path

import pytest

from lutc.runtime import abi

HEADER = Path(abi.__file__).with_name("lutrt.h")


def _header() -> str:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments may mention old values
    return re.sub(r"//[^\n]*", " ", text)


def _define(name: str) -> int:
    m = re.search(rf"^\s*#define\s+{name}\s+(-?\d+)\b", _header(), re.M)
    assert m, f"lutrt.h defines no {name}"
    return int(m.group(1))


def test_constants_match_the_header():
    assert abi.BLOCK_N == _define("LUTRT_BLOCK_N")
    assert abi.MAX_BITS == _define("LUTRT_MAX_BITS")
    assert abi.VEC_LUT_MIN_M == _define("LUTRT_VEC_LUT_MIN_M")
    assert abi.I8ACT_MIN_M == _define("LUTRT_I8ACT_MIN_M")
    assert abi.I8ACT_MIN_M_NARROW == _define("LUTRT_I8ACT_MIN_M_NARROW")
    assert abi.I8ACT_MIN_M_AVX2 == _define("LUTRT_I8ACT_MIN_M_AVX2")
    assert abi.I8ACT_MIN_M_AVX2_NARROW == _define("LUTRT_I8ACT_MIN_M_AVX2_NARROW")
    assert abi.I8ACT_AVX2_BYTES_MAX_BITS == _define("LUTRT_I8ACT_AVX2_BYTES_MAX_BITS")
    assert abi.ONE_PASS_MAX_BITS == _define("LUTRT_ONE_PASS_MAX_BITS")
    assert abi.F32DQ_MIN_M == _define("LUTRT_F32DQ_MIN_M")
    assert abi.F32DQ_MIN_M_NARROW == _define("LUTRT_F32DQ_MIN_M_NARROW")
    assert abi.F32DQ_MIN_M_WIDE == _define("LUTRT_F32DQ_MIN_M_WIDE")


def test_strategy_codes_match_the_header_enum():
    header = dict((name.lower(), int(value)) for name, value in
                  re.findall(r"\bLUTRT_STRATEGY_(\w+)\s*=\s*(\d+)", _header()))
    assert header == abi.STRATEGY_CODES


def test_descriptor_fields_match_the_header_struct():
    m = re.search(r"typedef\s+struct\s+lutrt_mma_desc\s*\{(.*?)\}\s*lutrt_mma_desc\s*;",
                  _header(), re.S)
    assert m, "lutrt.h has no lutrt_mma_desc struct"
    fields = tuple((name, c_type) for c_type, name in
                   re.findall(r"\b(int32_t|float|int|uint32_t|double)\s+(\w+)\s*;", m.group(1)))
    assert fields == abi.MMA_DESC_FIELDS


def test_ctypes_descriptor_follows_abi():
    from lutc.runtime.kernels import Desc

    assert [f[0] for f in Desc._fields_] == [name for name, _ in abi.MMA_DESC_FIELDS]
    assert ctypes.sizeof(Desc) == 4 * len(abi.MMA_DESC_FIELDS)


@pytest.fixture(scope="module")
def lib():
    from lutc.runtime import kernels

    lib = kernels.library()
    for name in ("lutrt_table_row_bytes", "lutrt_packed_weight_bytes",
                 "lutrt_packed_scale_count"):
        getattr(lib, name).restype = ctypes.c_size_t
    return lib


def test_sizes_match_the_library(lib):
    from lutc.runtime.kernels import Desc

    for n, k, bits, group, mirrored, table_i8, sg in itertools.product(
            (1, 31, 32, 33, 100), (4, 64, 260, 2048), (1, 2, 3, 4, 8),
            (4, 8, 16, 24, 32, 44, 64, 96, 128, 192, 256, 384, 1024, 4096),
            (0, 1), (0, 1), (4, 32)):
        d = Desc(M=2, N=n, K=k, bits=bits, group=group, mirrored=mirrored, table_i8=table_i8,
                 scale_group=sg if table_i8 else 0)
        p = ctypes.byref(d)
        entries = abi.table_entries(bool(mirrored))
        assert lib.lutrt_num_tables(p) == abi.num_tables(k)
        assert lib.lutrt_num_groups(p) == abi.num_groups(k, group)
        assert lib.lutrt_num_scale_groups(p) == abi.num_scale_groups(k, sg, bool(table_i8))
        assert lib.lutrt_num_blocks(p) == abi.num_blocks(n)
        assert lib.lutrt_table_row_bytes(p) == abi.table_row_bytes(k, entries, bool(table_i8))
        assert lib.lutrt_num_act_groups(p) == abi.num_act_groups(k, group, bool(table_i8))
        assert lib.lutrt_packed_weight_bytes(p) == abi.packed_weight_bytes(bits, n, k)
        assert lib.lutrt_packed_scale_count(p) == abi.packed_scale_count(n, k, group)
