"""compiler/stats.py on the two-layer MLP and the Q/K/V block."""

from lutc.compiler.stats import collect_stats, format_stats
from test.passes.compiled import pipeline
from test.passes.models import mlp2, rmsnorm_qkv


def test_two_layer_mlp():
    module, weights, _, _ = mlp2(4, 128, 256)
    pipeline(module)
    stats = collect_stats(module, weights)
    assert stats["gemms"] == 2 and stats["precomputes"] == 2
    assert stats["fused_precomputes"] == 1 and stats["reuse"] == 1.0
    assert stats["tables_per_token"] == 128 // 4 + 256 // 4
    # 8-entry int8 tables plus one f32 scale per table (4 activations), per row, and the row's
    # two-pass int8 activations (hi, lo: 2 K bytes) with an f32 scale and two f32 sums per
    # activation group, sized for one group per table (the large-M path's, lutrt.h)
    assert stats["table_bytes_per_token"] == (32 * 8 + 32 * 4 + 2 * 128 + 32 * 12) + (64 * 8 + 64 * 4 + 2 * 256 + 64 * 12)
    assert stats["table_bytes"] == 4 * stats["table_bytes_per_token"]
    # packed 2-bit codes (N * K / 4 bytes) + packed scales and zeros (f32 per 32-row block)
    assert stats["weight_bytes"] == {"w2": (256 * 128 // 4 + 8 * 2 * 32 * 4 * 2)
                                     + (128 * 256 // 4 + 4 * 4 * 32 * 4 * 2)}
    assert stats["other_weight_bytes"] == 256 * 4  # the bias
    text = format_stats(stats)
    assert "table precomputes        2 (1 fused into their producer)" in text
    assert "GEMM weight bytes        w2: 24576" in text


def test_qkv_reuse():
    fused, weights, _, _ = rmsnorm_qkv(2, 128, 32, specs=("w2g64", "ternary", "w4g32sym"))
    pipeline(fused)
    stats = collect_stats(fused, weights)
    assert stats["gemms"] == 3
    # w4g32 needs sums per 32 activations: its own table; w2g64 and ternary (g128) differ too
    assert stats["precomputes"] == 3 and stats["fused_precomputes"] == 1
    assert set(stats["weight_bytes"]) == {"w2", "ternary", "w4"}

    shared, weights, _, _ = rmsnorm_qkv(2, 128, 32)
    pipeline(shared, disabled=("lut-fuse-siblings",))
    assert collect_stats(shared, weights)["reuse"] == 3.0

    merged, weights, _, _ = rmsnorm_qkv(2, 128, 32)  # lut-fuse-siblings: one GEMM, N = 96
    pipeline(merged)
    stats = collect_stats(merged, weights)
    assert stats["gemms"] == 1 and stats["reuse"] == 1.0 and stats["precomputes"] == 1

    separate, weights, _, _ = rmsnorm_qkv(2, 128, 32)
    pipeline(separate, disabled=("lut-fuse-precompute",))
    stats = collect_stats(separate, weights)
    assert stats["precomputes"] == 3 and stats["reuse"] == 1.0 and stats["fused_precomputes"] == 0
