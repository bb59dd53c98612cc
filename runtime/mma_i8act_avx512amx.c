/* mma_i8act_avx512amx.c — the int8-activation kernel with AMX-INT8 tiles (Sapphire Rapids and
 * later Xeons).
 *
 * The formula, the weight unpacking, the work split and the epilogue are those of
 * mma_i8act_avx512vnni.c, which this file compiles again with LUTRT_I8ACT_AMX: there every 16
 * token rows of a 32-row weight block go to amx_rows below, the rest (M mod 16 rows, and all
 * rows of a call whose activation group is not a multiple of 32, and a partial last group) to
 * the VNNI tiles. Per activation group t (32, 64 or 128 activations, lutrt_act_group) and 16
 * token rows, four tile sums
 *
 *   I_hi[m, n] = sum_{k in t} hi[m, k] q[n, k],   I_lo likewise with lo     (s8 x u8)
 *
 * for the block's two halves of 16 weight rows, one tdpbsud each per 32 or 64 activations: A
 * tiles are the rows' hi / lo bytes (16 rows x 32 or 64 bytes, packed once per call by
 * amx_pack), B tiles the unpacked block's codes, whose [J][2][16][4] layout is already AMX's B
 * layout (8 or 16 rows of 16 columns x 4 k per half, stride 128 bytes). The sums are exact
 * integers, so the outputs are bit-identical to the VNNI kernel's: the same per-row float
 * epilogue runs on them in the same order (two_pass_epilogue). One tdpbsud does 16 x 16 x 32 multiply-adds where vpdpbusd does 16 x 4;
 * the per-group epilogue (16 rows x 32 columns of int32 -> float) is what is left, which is why
 * activation groups are as large as the weight groups allow (up to 128).
 * The epilogue of group t runs while the tiles of group t + 1 compute (two int32 buffers).
 *
 * Linux hands out AMX tile state only to processes that ask (arch_prctl ARCH_REQ_XCOMP_PERM,
 * asked once by dispatch.c's cpu_has_amx, which also reads CPUID); each thread loads the tile
 * configuration when it starts a share of the work and releases the tiles when it ends it.
 * Compiled only with -mamx-tile -mamx-int8 (build.py); otherwise lutrt_mma_i8act_amx_ptr is
 * NULL and dispatch.c never picks it.
 */
#if defined(__AMX_INT8__) && defined(__AMX_TILE__) && defined(__AVX512VNNI__) && \
    !defined(LUTRT_AVX512_SIMDE)
#define LUTRT_I8ACT_AMX 1
#include "mma_i8act_avx512vnni.c"

/* Tile registers: 0-3 int32 sums (hi x half 0, hi x half 1, lo x half 0, lo x half 1),
 * 4-5 A (hi, lo: 16 rows x 4 KT bytes), 6-7 B (half 0, half 1: KT rows x 64 bytes), where KT
 * (amx_step_tables) is the tables one tdpbsud takes: 16 (64 activations, the most a tile
 * holds) when the activation group is a multiple of 64, else 8. An activation group of ja
 * tables is ja / KT tdpbsud steps per sum tile, accumulated in the tile. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) amx_config;

static int amx_step_tables(const lutrt_mma_args *a) { return a->ja % 16 == 0 ? 16 : 8; }

/* The A operand, packed once per call: for row tile i (rows 16 i..16 i + 15) and whole
 * activation group t < J / ja, hi then lo, each ja / KT steps of 16 rows x 4 KT bytes (one
 * tile load each, stride 4 KT), then the 16 rows' f32 ascale, S_hi, S_lo of the group (the
 * epilogue's scalars). Read in place from the table rows instead, each tile load touches 16
 * rows a table row (~6 bytes per activation) apart: measured 28% of the kernel's time in
 * those loads at M = 128, 4096^2. */
static size_t pack_group_bytes(const lutrt_mma_args *a) { return 128 * (size_t)a->ja + 3 * 64; }
static size_t amx_pack_offset(const lutrt_mma_args *a, int i, int t) {
    return ((size_t)i * (a->J / a->ja) + t) * pack_group_bytes(a);
}

/* copies the kb (32 or 64) bytes at src to dst */
ALWAYS_INLINE void copy_step(uint8_t *dst, const int8_t *src, int kb) {
    if (kb == 64)
        _mm512_storeu_si512(dst, _mm512_loadu_si512(src));
    else
        _mm256_storeu_si256((__m256i *)dst, _mm256_loadu_si256((const __m256i *)src));
}

/* packs (row tile, whole activation group) pairs u0..u1-1, u = i * (J / ja) + t */
static void pack_task(void *ctx, int u0, int u1) {
    const lutrt_mma_args *a = ((const i8act_call *)ctx)->a;
    uint8_t *apack = (uint8_t *)((const i8act_call *)ctx)->apack;
    const int full = a->J / a->ja, kb = 4 * amx_step_tables(a), gk = 4 * a->ja;
    for (int u = u0; u < u1;) {
        const int i = u / full, t0 = u % full, t1 = min_int(full, t0 + (u1 - u));
        for (int r = 0; r < 16; r++) {
            const act_row row = row_at(a, 16 * i + r);
            for (int t = t0; t < t1; t++) {
                uint8_t *g = apack + amx_pack_offset(a, i, t);
                const int8_t *hi = row.hi + (size_t)gk * t, *lo = row.lo + (size_t)gk * t;
                for (int k = 0; k < gk; k += kb) {
                    copy_step(g + 16 * k + kb * r, hi + k, kb);
                    copy_step(g + 16 * gk + 16 * k + kb * r, lo + k, kb);
                }
                float *f = (float *)(g + 32 * gk) + r;
                f[0] = row.ascale[t], f[16] = row.shi[t], f[32] = row.slo[t];
            }
        }
        u += t1 - t0;
    }
}

/* Calls of at most this many token rows pack the A operand in every thread that takes weight
 * blocks (amx_local_pack) instead of in a parallel loop of its own before the blocks' loop:
 * a few KiB per thread (16 rows x K x 2 bytes + scalars) cost less than the extra loop and
 * the blocks reading rows another core packed. SmolLM2's 16-token prefill on 2 threads: the
 * pack loops took 0.96 ms of thread time against 0.25 ms on 1 thread (120 loops, lutrt's loop
 * profile); interleaved A/B, medians of 3 x 300 calls, 2-core AMX VM, 2026-12-07: 14.62 ->
 * 14.16 ms on 2 threads, 1 thread unchanged. */
#define AMX_LOCAL_PACK_MAX_M 32

/* The packed A operand in the calling thread's scratch (slot 1), or NULL where AMX does not
 * apply: fewer than 16 token rows, activation groups not a multiple of 32, or no memory; or
 * NULL with *local = 1 where each thread packs it (AMX_LOCAL_PACK_MAX_M). */
static const uint8_t *amx_pack(const lutrt_mma_args *a, int *local) {
    *local = 0;
    if (a->ja % 8 || a->M < 16 || a->J < a->ja) return NULL;
    if (a->M <= AMX_LOCAL_PACK_MAX_M) {
        *local = 1;
        return NULL;
    }
    const int tiles = a->M / 16;
    i8act_call c = {a, lutrt_scratch(1, amx_pack_offset(a, tiles, 0)), 0, 0};
    /* by groups, not row tiles: a 16-token prefill has one row tile */
    if (c.apack) lutrt_parallel_for(a->d->num_threads, tiles * (a->J / a->ja), 8, pack_task, &c);
    return c.apack;
}

/* This thread's packed A operand of call number `call` (scratch slot 1), packed on its first
 * chunk of the call; NULL when out of memory. */
static const uint8_t *amx_local_pack(const lutrt_mma_args *a, unsigned call) {
    static _Thread_local unsigned packed_call;
    static _Thread_local const uint8_t *packed;
    if (packed_call == call && packed) return packed;
    const int tiles = a->M / 16;
    i8act_call c = {a, lutrt_scratch(1, amx_pack_offset(a, tiles, 0)), 0, call};
    if (c.apack) pack_task(&c, 0, tiles * (a->J / a->ja));
    packed_call = call;
    packed = c.apack;
    return packed;
}

static void amx_begin(const lutrt_mma_args *a) {
    const int kt = amx_step_tables(a);
    amx_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 4; i++) c.rows[i] = 16, c.colsb[i] = 64;
    for (int i = 4; i < 6; i++) c.rows[i] = 16, c.colsb[i] = (uint16_t)(4 * kt);
    for (int i = 6; i < 8; i++) c.rows[i] = (uint8_t)kt, c.colsb[i] = 64;
    _tile_loadconfig(&c);
}

static void amx_end(void) { _tile_release(); }

/* sums[4][16][16] of group t (tables ja t..ja t + ja - 1) of a row tile (its packed A: pa, the
 * group's): issued, not waited for */
ALWAYS_INLINE void amx_group(const lutrt_mma_args *a, const uint8_t *pa, const uint8_t *q, int t) {
    const int kt = amx_step_tables(a), kb = 4 * kt, gk = 4 * a->ja;
    const uint8_t *qg = q + (size_t)t * a->ja * 128;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < gk; k += kb) {
        _tile_loadd(4, pa + 16 * k, kb);
        _tile_loadd(5, pa + 16 * gk + 16 * k, kb);
        _tile_loadd(6, qg + (size_t)k * 32, 128);
        _tile_loadd(7, qg + (size_t)k * 32 + 64, 128);
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(1, 4, 7);
        _tile_dpbsud(2, 5, 6);
        _tile_dpbsud(3, 5, 7);
    }
}

ALWAYS_INLINE void amx_store(int32_t *sums) {
    _tile_stored(0, sums, 64);
    _tile_stored(1, sums + 256, 64);
    _tile_stored(2, sums + 512, 64);
    _tile_stored(3, sums + 768, 64);
}

/* acc (float [16][32]) += group t's sums, or the output rows = when t is the last group;
 * the float operations of mma_i8act_avx512vnni.c's tile, in its order */
ALWAYS_INLINE void amx_epilogue(const lutrt_mma_args *a, const float *scal, const int32_t *sums,
                                int blk, int m0, int t, float *acc) {
    __m512 z[2], s[2];
    lutrt_block_group_sz(a, blk, (t * a->ja) / a->jg, z, s);
    const int last = t == a->NA - 1;
    const int n0 = blk * LUTRT_BLOCK_N, rows_n = min_int(LUTRT_BLOCK_N, a->N - n0);
    for (int r = 0; r < 16; r++) {
        __m512 oacc[2];
        if (t == 0) {
            oacc[0] = oacc[1] = _mm512_setzero_ps();
        } else {
            oacc[0] = _mm512_load_ps(acc + 32 * r);
            oacc[1] = _mm512_load_ps(acc + 32 * r + 16);
        }
        const __m512i ih[2] = {_mm512_load_si512(sums + 16 * r), _mm512_load_si512(sums + 256 + 16 * r)};
        const float ascale = scal[r], shi = scal[16 + r], slo = scal[32 + r];
        if (!lutrt_act_no_low_pass(slo)) {
            const __m512i il[2] = {_mm512_load_si512(sums + 512 + 16 * r),
                                   _mm512_load_si512(sums + 768 + 16 * r)};
            two_pass_epilogue(ascale, shi, slo, z, s, ih, il, oacc);
        } else {
            one_pass_epilogue(ascale, shi, z, s, ih, oacc);
        }
        if (last) {
            lutrt_store_block_row(a->out + (size_t)(m0 + r) * a->N + n0, rows_n, oacc[0], oacc[1]);
        } else {
            _mm512_store_ps(acc + 32 * r, oacc[0]);
            _mm512_store_ps(acc + 32 * r + 16, oacc[1]);
        }
    }
}

/* Token rows m0..m0+15 against the unpacked blocks blk0..blk0 + nb - 1 (codes q[i]),
 * activation groups t0..t1-1; acc[i]: float [16][32], block i's partial sums of those rows
 * (the VNNI tile's layout). The (block, group) steps run as one pipeline: the tiles of the
 * next step compute while the epilogue of this one runs (two int32 buffers), across blocks
 * too, so a short chunk of groups per block keeps the overlap. A partial last group (K not a
 * multiple of 32) runs on the VNNI tiles, after the block's whole groups. `ahead` (may be
 * NULL): the next blocks' weights, scales and zeros, a slice of which each of block 0's
 * steps prefetches (lutrt_ahead). */
static void amx_rows(const lutrt_mma_args *a, const uint8_t *apack, const uint8_t *const *q,
                     int blk0, int nb, int m0, int t0, int t1, float *const *acc,
                     lutrt_ahead *ahead) {
    const int te = min_int(t1, a->J / a->ja); /* whole activation groups */
    const size_t gb = pack_group_bytes(a), sc = 128 * (size_t)a->ja; /* scalars' offset */
    const uint8_t *pa = apack + amx_pack_offset(a, m0 / 16, 0);
    int32_t sums[2][4 * 256] __attribute__((aligned(64)));
    if (t0 < te) { /* step u = (block i, group t), blocks outer; (i2, t2) the next step */
        amx_group(a, pa + t0 * gb, q[0], t0);
        amx_store(sums[0]);
        for (int u = 0, i = 0, t = t0; i < nb; u++) {
            int i2 = i, t2 = t + 1;
            if (t2 == te) {
                t2 = t0;
                i2++;
            }
            if (i2 < nb) amx_group(a, pa + t2 * gb, q[i2], t2); /* runs meanwhile */
            if (ahead && i == 0) lutrt_ahead_step(ahead);
            amx_epilogue(a, (const float *)(pa + t * gb + sc), sums[u & 1], blk0 + i, m0, t,
                         acc[i]);
            if (i2 < nb) amx_store(sums[(u + 1) & 1]);
            i = i2;
            t = t2;
        }
    }
    for (int i = 0; i < nb; i++)
        for (int t = te > t0 ? te : t0; t < t1; t++) /* the partial last group */
            for (int r = 0; r < 16; r += 4) tile_4(a, q[i], blk0 + i, m0 + r, t, t + 1, acc[i] + 32 * r);
}

#else
#include "lutrt_internal.h"
const lutrt_mma_call_fn lutrt_mma_i8act_amx_ptr = 0;
#endif
