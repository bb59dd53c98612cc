"""lut-tile: the cost model's choices, forced tiles, autotuning, and that a tile never changes
results."""

import json

import numpy as np
import pytest
from xdsl.utils.arg_spec import parse_spec

from xdsl.utils.exceptions import PassFailedException
from lutc.compiler.interp.interpret import run_module
from lutc.dialects.lut_ops import MmaOp
from lutc.dialects.packed_ops import PackedMmaOp
from lutc.passes import tile_autotune
from lutc.passes.lower_mpgemm import LowerMpGemmPass
from lutc.passes.tile import TilePass, gemm_of
from lutc.passes.tile_cost import Gemm, Machine, candidates, choose_tile, host_machine
from test.ir_builders import quantized_linear, rel_max_err
from test.passes.compiled import compile_module, pipeline, store_of

TWO_CORES = Machine(l1=32 << 10, l2=512 << 10, l3=32 << 20, registers=16, cores=2)


def gemm(m, n=4096, k=4096, bits=2, group=64):
    return Gemm(m=m, n=n, k=k, bits=bits, entries=8, entry_bytes=1, group=group, scale_group=32)


def tiles_of(module):
    return [op.attributes["tile"] for op in module.walk() if isinstance(op, (MmaOp, PackedMmaOp))]


def test_strategy_follows_m():
    assert choose_tile(gemm(1), TWO_CORES).strategy == "per_token"
    assert choose_tile(gemm(1), TWO_CORES).m == 1
    small = choose_tile(gemm(4), TWO_CORES)
    assert small.strategy == "per_token" and 1 <= small.m <= 4
    assert choose_tile(gemm(31), TWO_CORES).strategy == "per_token"
    # no measured crossover: per-token at every M by default (tile_cost.VEC_LUT_MIN_M = 0)
    assert choose_tile(gemm(256), TWO_CORES).strategy == "per_token"
    assert choose_tile(gemm(31), TWO_CORES, vec_lut_min_m=32).strategy == "per_token"
    big = choose_tile(gemm(64), TWO_CORES, vec_lut_min_m=32)
    assert big.strategy == "vec_lut" and big.m == 64
    assert choose_tile(gemm(33), TWO_CORES, vec_lut_min_m=32).m == 48
    assert choose_tile(gemm(300), TWO_CORES, vec_lut_min_m=32).m == 64


def test_registers_bound_the_table_rows():
    """AVX2 (16 registers): at most 4 rows; AVX-512 (32): 8 rows fit."""
    assert max(t.m for t in candidates(gemm(16), TWO_CORES)) == 4
    wide = Machine(registers=32, cores=2)
    assert max(t.m for t in candidates(gemm(16), wide)) == 8


def test_threads_follow_the_work():
    """A large GEMV splits over both cores; a tiny GEMM stays on one thread."""
    assert choose_tile(gemm(1), TWO_CORES).threads(gemm(1), TWO_CORES) == 2
    tiny = gemm(1, n=64, k=256)
    assert choose_tile(tiny, TWO_CORES).threads(tiny, TWO_CORES) == 1


def test_k_step_is_whole_weight_groups_dividing_k():
    for g in (gemm(1), gemm(8, k=1536, group=128), gemm(2, n=64, k=256, group=32)):
        tile = choose_tile(g, TWO_CORES)
        assert tile.k % g.group == 0 and g.k % tile.k == 0


def test_weights_slab_fits_l2_when_reused_across_activation_tiles():
    g = gemm(16)
    tile = choose_tile(g, TWO_CORES)
    assert tile.n * g.k * g.bits / 8 <= TWO_CORES.l2 / 2


def test_host_machine_reads_the_caches():
    machine = host_machine()
    assert machine.l1 >= 8 << 10 and machine.l2 >= machine.l1 and machine.cores >= 1


def test_pass_sets_an_attribute_per_gemm_and_forced_options():
    module, _, _, _, _ = quantized_linear(1, 256, 64, "w2g64")
    LowerMpGemmPass().apply(None, module)
    TilePass().apply(None, module)
    (tile,) = tiles_of(module)
    assert tile.strategy_name == "per_token" and tile.m.data == 1
    forced = TilePass.from_pass_spec(parse_spec("lut-tile{m=2 n=32 k=64 strategy=vec_lut}"))
    forced.apply(None, module)
    module.verify()
    assert str(tiles_of(module)[0]) == "#lut.tile<m2, n32, k64, vec_lut>"


@pytest.mark.parametrize("spec, message", [
    ("lut-tile{n=48}", "multiple of 32"),
    ("lut-tile{k=6}", "multiple of 4"),
    ("lut-tile{strategy=magic}", "strategy must be one of"),
])
def test_bad_options_are_user_errors(spec, message):
    module, _, _, _, _ = quantized_linear(1, 64, 32, "w2g64")
    LowerMpGemmPass().apply(None, module)
    with pytest.raises(PassFailedException, match=message):
        TilePass.from_pass_spec(parse_spec(spec)).apply(None, module)


def test_tiles_do_not_change_results(tmp_path, monkeypatch):
    """The tile is a schedule: interpreter and C results are the same whatever it is, and a
    GEMM of one weight tile runs on one thread, any other on the pool's. (At M = 5 >= lutrt_i8act_min_m the
    runtime multiplies int8 activations whatever the tile, except under vec_lut, which keeps
    the tables: that one is compared with the table kernels, LUTRT_I8ACT_MIN_M=0.)"""
    results, tables = [], {}
    for name, options in (("none", None), ("model", {}), ("n32", {"lut-tile": "{n=32}"}),
                          ("n96", {"lut-tile": "{n=96}"}),
                          ("vec", {"lut-tile": "{strategy=vec_lut m=16 n=64}"})):
        module, weights, x, _, _ = quantized_linear(5, 256, 96, "w4g64", seed=8)
        if options is None:
            pipeline(module, disabled=("lut-tile",))
        else:
            pipeline(module, pass_options=options)
        (expected,) = run_module(module, weights, [x])
        if name == "none":
            monkeypatch.setenv("LUTRT_I8ACT_MIN_M", "0")
            (tables["expected"],) = run_module(module, weights, [x])
            monkeypatch.delenv("LUTRT_I8ACT_MIN_M")
        model, source = compile_module(module, store_of(weights), tmp_path / name)
        (y,) = model(x)
        assert rel_max_err(y, expected) <= 1e-5
        results.append((expected, y))
        if name == "none":
            monkeypatch.setenv("LUTRT_I8ACT_MIN_M", "0")
            (tables["y"],) = model(x)
            monkeypatch.delenv("LUTRT_I8ACT_MIN_M")
        if name == "n32":
            assert ".num_threads = 0," in source  # 3 tiles: every thread of the pool
            assert ".strategy = LUTRT_STRATEGY_PER_TOKEN, .tile_m = " in source
            assert ".tile_n = 32, .tile_k = " in source
        if name == "n96":
            assert ".num_threads = 1," in source  # one tile: one thread
        if name == "none":
            assert ".strategy" not in source
        if name == "vec":  # the Vec-LUT kernel: same formula, another float summation order
            assert ".strategy = LUTRT_STRATEGY_VEC_LUT, .tile_m = 16, .tile_n = 64" in source
            assert rel_max_err(y, tables["y"]) <= 1e-5
            np.testing.assert_array_equal(expected, tables["expected"])
    for expected, y in results[1:3]:
        np.testing.assert_array_equal(expected, results[0][0])
    for expected, y in results[1:3]:
        np.testing.assert_array_equal(y, results[0][1])


def test_autotune_times_the_runtime_and_caches(tmp_path, monkeypatch):
    cache = tmp_path / "tiles.json"
    monkeypatch.setattr(tile_autotune, "cache_path", lambda: cache)
    module, _, _, _, _ = quantized_linear(1, 256, 64, "w2g64")
    pipeline(module, disabled=("lut-tile",))
    TilePass(autotune=True).apply(None, module)
    (tile,) = tiles_of(module)
    entries = json.loads(cache.read_text())
    (key,) = entries
    assert key.startswith("M1 N64 K256 w2 g64 8xi8 sg4 | ")
    assert entries[key]["n"] == tile.n.data and entries[key]["seconds"] > 0

    def no_timing(*args, **kwargs):
        raise AssertionError("a cached tile must not be timed again")

    monkeypatch.setattr(tile_autotune, "_time_gemm", no_timing)
    module2, _, _, _, _ = quantized_linear(1, 256, 64, "w2g64")
    pipeline(module2, disabled=("lut-tile",))
    TilePass(autotune=True).apply(None, module2)
    assert tiles_of(module2) == tiles_of(module)


def test_autotune_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("LUTC_CACHE", str(tmp_path))
    assert tile_autotune.cache_path() == tmp_path / "tiles.json"


def test_gemm_of_reads_the_ir():
    module, _, _, _, _ = quantized_linear(3, 256, 40, "w3g32")
    pipeline(module, disabled=("lut-tile",))
    (op,) = [op for op in module.walk() if isinstance(op, PackedMmaOp)]
    g = gemm_of(op)
    assert (g.m, g.n, g.k, g.bits, g.entries, g.entry_bytes, g.group, g.scale_group) == \
        (3, 40, 256, 3, 8, 1, 32, 4)
