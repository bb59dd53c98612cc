"""The two ways runtime/unpack_avx512.h turns bit-plane weights into code bytes for the kernels
that multiply codes (mma_i8act_avx512vnni.c, mma_f32dq_avx512.c): the vpermd tables (any
AVX-512 CPU) and the GFNI bit-matrix transpose (CPUs with AVX512-VBMI and GFNI).

Both are exact, so lut.mma must give bit-identical outputs with the runtime as built (the GFNI
path on such a CPU) and with the runtime built with -DLUTRT_NO_GFNI_UNPACK=1 (the vpermd path),
for every code width 1..8 and ternary, mirrored or not, partial last blocks and tables, odd
planes (3, 5, 7 bits: the odd plane goes through vpermd on both), 1 and 2 threads. The kernels'
results themselves are checked against numpy in test_mma_i8act.py / test_mma_f32dq_avx512.py.
A third build, whose GFNI path skips the mirror map, shows that path is the one that runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lutc.runtime import build, kernels
from test_kernels import _bits, make_case, run_mma


def _cpu_flags() -> set[str]:
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return set()
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


pytestmark = pytest.mark.skipif(
    not {"avx512vbmi", "gfni", "avx512_vnni"} <= _cpu_flags(),
    reason="the GFNI unpack runs only on CPUs with AVX512-VBMI, GFNI (and VNNI for the i8act kernel)")


@pytest.fixture(scope="module")
def libraries():
    """(as built, vpermd-only) runtime library paths; the default is bound again afterwards."""
    default = build.runtime_library()
    vpermd = build.runtime_library(extra_cflags=("-DLUTRT_NO_GFNI_UNPACK=1",))
    # the GFNI path with the identity instead of the mirror map: wrong for mirrored codes only
    broken = build.runtime_library(extra_cflags=("-DLUTRT_GFNI_MIRROR=0x0102040810204080ULL",))
    yield default, vpermd, broken
    kernels.use_library(default)


def _outputs(lib, c, bits, group, mirrored, table_i8):
    kernels.use_library(lib)
    kernels.set_i8act_kernel("avx512vnni")
    kernels.set_i8act_min_m(1)
    kernels.set_f32dq_min_m(1)
    try:
        return [run_mma(c, bits, group, mirrored, table_i8, threads)[1] for threads in (1, 2)]
    finally:
        kernels.set_i8act_min_m(None)
        kernels.set_f32dq_min_m(None)
        kernels.set_i8act_kernel(None)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8, "ternary"])
@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("table_i8", [True, False], ids=["i8act", "f32dq"])
def test_gfni_unpack_equals_vpermd_unpack(libraries, bits, mirrored, table_i8):
    nbits, ternary = _bits(bits)
    rng = np.random.default_rng(nbits * 10 + mirrored + 2 * table_i8 + 100 * ternary)
    # N = 70: a partial last block of 32 rows; K = 692: a partial last table and group
    c = make_case(rng, 5, 70, 692, nbits, 32, mirrored, ternary, zeros=True)
    gfni, vpermd, broken = (_outputs(lib, c, nbits, 32, mirrored, table_i8) for lib in libraries)
    for a, b, wrong in zip(gfni, vpermd, broken):
        assert np.isfinite(a).all() and np.abs(a).max() > 0
        assert np.array_equal(a, b)
        # the GFNI path is the one that ran (1-bit codes have no plane pair: vpermd only)
        assert np.array_equal(a, wrong) == (not mirrored or nbits == 1)
