/* lmma_vlut_avx2.c — Vec-LUT lut.mma for many tokens (docs/design.md §5), int8 tables.
 *
 * The per-token kernel (lmma_avx2.c) looks up 32 weight rows in one token's table per vpshufb.
 * With many tokens, Vec-LUT turns the lookup around: the tables of all tokens are rebuilt as
 *
 *     VT[j][c][m]  int16,  m in 0..Mpad-1 (Mpad = M rounded up to 16, padding tokens are 0)
 *
 * (c = the 4-bit code; mirrored 8-entry tables are expanded to 16 entries, VT[j][c] =
 * -T8[c & 7] for c >= 8, which is exactly the mirrored code convention), so one weight code is a
 * single 1 -> N lookup: a contiguous vector add of VT[j][c][m0 .. m0+mt) into int16 accumulators
 * over a tile of mt <= 64 tokens (vpaddw with a memory operand, 16 tokens per ymm).
 *
 * Bit planes use Horner's rule: planes are added from the highest down, the accumulator doubled
 * before each lower plane, so one accumulator set serves all planes. Within a table scale group
 * (<= 16 tables) every partial value is bounded by the final one, |sum| <= 16 * 15 * 127 = 30480,
 * so int16 never saturates (the same bound as lmma_avx2.c). At the end of a scale group the
 * int16 sums I are widened, the zero-point term taken off against the same rounded entries
 * (I - z[n, g] S[m, t]) and added to the f32 output rows with the factor s[n, g] * tscale[m, t].
 * That is the formula of
 * lutrt.h with the float operations in a different order.
 *
 * Work: threads split N in units of tile_n weight rows (default 8 blocks = 256 rows). A unit
 * walks token tiles; for each, all its rows pass over one table scale group's slice of VT (16
 * KiB for 64 tokens and 8 tables: L1-resident) before the next group, the rows' f32 outputs
 * staying in a thread buffer (rows x 64 floats). The codes of one (block, table) are unpacked
 * with two vector ops per plane pair into bytes and read back one per lookup; scale groups of 8
 * tables (scale_group 32) take a fully unrolled loop (2x faster than the generic one).
 *
 * Speed (2-core AVX2 Zen VM, K = N = 4096, w2/ternary): 0.6-0.9x of the per-token kernel at
 * M = 16..256. The inner loop is load-bound: one (table, 2 planes, row) x 32 tokens costs 4 ymm
 * loads + 2 code loads, ~2.2 cycles even in an isolated L1-resident microbenchmark, which is
 * what the per-token vpshufb kernel spends on the same work (32 rows x 2 planes x 1 token from
 * a table in a register). Hence LUTRT_VEC_LUT_MIN_M = 0: strategy AUTO never picks it. Tried
 * without gain: 64-bit transposed code words (shifts instead of byte loads), token tiles of 32,
 * weight units of 1..8 blocks.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

static int min_int(int a, int b) { return a < b ? a : b; }

/* ---- table rebuild: [M][J][E] int8 -> VT[J][16][Mpad] int16, tscale and tsum transposed -- */

typedef struct {
    const lutrt_mma_args *a;
    int Mpad;
    int tile_m;   /* token tile width (the last tile may be narrower) */
    int16_t *vt;  /* per token tile [m0 .. m0+w): [J][16][w] at vt + J*16*m0 */
    float *tsT;   /* [NS][Mpad] */
    float *tsumT; /* [NS][Mpad]: a->tsum transposed */
} vlut_prep;

static void rebuild_task(void *ctx, int j0, int j1) {
    const vlut_prep *p = (const vlut_prep *)ctx;
    const lutrt_mma_args *a = p->a;
    const int E = a->entries, M = a->M, Mpad = p->Mpad, J = a->J;
    for (int m0 = 0; m0 < Mpad; m0 += p->tile_m) {
        const int w = min_int(p->tile_m, Mpad - m0);
        int16_t *tile = p->vt + (size_t)J * 16 * m0; /* [J][16][w] */
        for (int j = j0; j < j1; j++) {
            int16_t *dst = tile + (size_t)j * 16 * w;
            for (int mi = 0; mi < w; mi++) {
                const int m = m0 + mi;
                if (m >= M) {
                    for (int c = 0; c < 16; c++) dst[c * w + mi] = 0;
                    continue;
                }
                const int8_t *t = (const int8_t *)a->tables + (size_t)m * a->row_bytes + (size_t)j * E;
                if (E == 16) {
                    for (int c = 0; c < 16; c++) dst[c * w + mi] = t[c];
                } else {
                    for (int c = 0; c < 8; c++) {
                        dst[c * w + mi] = t[c];
                        dst[(c + 8) * w + mi] = (int16_t)-t[c];
                    }
                }
            }
        }
    }
}

/* ---- the GEMM ------------------------------------------------------------------------------ */

typedef struct {
    const lutrt_mma_args *a;
    const vlut_prep *p;
    int tile_m;     /* tokens per tile, multiple of 16, <= 64 */
    int unit;       /* weight blocks per task */
} vlut_job;

/* Byte offset of (row r, plane b) in one table's unpacked codes (32 * B bytes): plane pair p
 * unpacks to 64 bytes (lo nibbles: rows 0..15, hi: rows 16..31, planes interleaved), an odd
 * last plane to 32 bytes (lo nibbles then hi nibbles of its 16 packed bytes). */
static int code_offset(int bits, int r, int b) {
    const int npairs = bits / 2;
    if (b < 2 * npairs) return 64 * (b / 2) + (r < 16 ? 0 : 32) + 2 * (r & 15) + (b & 1);
    const int base = 64 * npairs, q = r >> 3, i = r & 7;
    /* C_{2i} = row i, C_{2i+1} = row 16+i (lo); D_{2i} = row 8+i, D_{2i+1} = row 24+i (hi) */
    return base + ((q & 1) ? 16 : 0) + 2 * i + (q >> 1);
}

/* Unpacks the codes of tables [js, je) of one block: 32 * B bytes per table. */
ALWAYS_INLINE void unpack_codes(const uint8_t *w, int js, int je, int BITS, uint8_t *u) {
    const int npairs = BITS >> 1;
    const size_t chunk = 16u * BITS;
    const __m256i m0f = _mm256_set1_epi8(0x0f);
    for (int j = js; j < je; j++) {
        const uint8_t *p = w + (size_t)j * chunk;
        uint8_t *o = u + (size_t)(j - js) * 32 * BITS;
        for (int pp = 0; pp < npairs; pp++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * pp));
            const __m256i lo = _mm256_and_si256(v, m0f);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m0f);
            /* bytes 0..31 of lo are (row i, plane s) pairs for rows 0..15 */
            _mm256_storeu_si256((__m256i *)(o + 64 * pp), lo);
            _mm256_storeu_si256((__m256i *)(o + 64 * pp + 32), hi);
        }
        if (BITS & 1) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(p + 32 * npairs));
            const __m128i f = _mm_set1_epi8(0x0f);
            _mm_storeu_si128((__m128i *)(o + 64 * npairs), _mm_and_si128(v, f));
            _mm_storeu_si128((__m128i *)(o + 64 * npairs + 16),
                             _mm_and_si128(_mm_srli_epi16(v, 4), f));
        }
    }
}

/* One weight-row unit [blk0, blk1) x one token tile [m0, m0 + 16 MV): acc over rows into
 * oacc[rows][64] (f32), then written to out. MV and BITS are compile-time constants. */
ALWAYS_INLINE void vlut_tile(const vlut_job *job, int blk0, int blk1, int m0, float *oacc,
                             uint8_t *ubuf, const int MV, const int BITS) {
    const lutrt_mma_args *a = job->a;
    const vlut_prep *p = job->p;
    const int Mpad = p->Mpad, J = a->J, nblk = blk1 - blk0;
    const size_t cstride = 32 * MV; /* bytes between codes in this tile's VT */
    const size_t jstride = 16 * cstride;
    int off[32][4];
    for (int r = 0; r < 32; r++)
        for (int b = 0; b < BITS; b++) off[r][b] = code_offset(BITS, r, b);

    for (int i = 0; i < nblk * 32 * 64; i += 8) _mm256_store_ps(oacc + i, _mm256_setzero_ps());

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        for (int js = j0, t = j0 / a->jt; js < j1; js += a->jt, t++) {
            const int je = min_int(j1, js + a->jt), nj = je - js;
            const uint8_t *tbase =
                (const uint8_t *)(p->vt + (size_t)J * 16 * m0) + (size_t)js * jstride;
            __m256 ts[8], S[8];
            UNROLL for (int v = 0; v < 2 * MV; v++) {
                ts[v] = _mm256_loadu_ps(p->tsT + (size_t)t * Mpad + m0 + 8 * v);
                S[v] = _mm256_loadu_ps(p->tsumT + (size_t)t * Mpad + m0 + 8 * v);
            }
            for (int bi = 0; bi < nblk; bi++) {
                const int blk = blk0 + bi;
                unpack_codes(a->w + (size_t)blk * J * a->chunk, js, je, BITS, ubuf);
                const size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N;
                const float *sc = a->scales + si;
                for (int r = 0; r < 32; r++) {
                    __m256i acc[4];
                    UNROLL for (int v = 0; v < MV; v++) acc[v] = _mm256_setzero_si256();
                    UNROLL for (int b = BITS - 1; b >= 0; b--) {
                        if (b != BITS - 1)
                            UNROLL for (int v = 0; v < MV; v++) acc[v] = _mm256_add_epi16(acc[v], acc[v]);
                        const uint8_t *u = ubuf + off[r][b];
                        const uint8_t *tb = tbase;
                        if (nj == 8) { /* scale group 32: fully unrolled */
                            UNROLL for (int jl = 0; jl < 8; jl++) {
                                const __m256i *e = (const __m256i *)(
                                    tb + jl * jstride + (size_t)u[jl * 32 * BITS] * cstride);
                                UNROLL for (int v = 0; v < MV; v++)
                                    acc[v] = _mm256_add_epi16(acc[v], _mm256_load_si256(e + v));
                            }
                        } else {
                            for (int jl = 0; jl < nj; jl++, u += 32 * BITS, tb += jstride) {
                                const __m256i *e = (const __m256i *)(tb + (size_t)*u * cstride);
                                UNROLL for (int v = 0; v < MV; v++)
                                    acc[v] = _mm256_add_epi16(acc[v], _mm256_load_si256(e + v));
                            }
                        }
                    }
                    /* scale-group flush: oacc[row] += (s * tscale) * (acc - z * S) */
                    const __m256 s = _mm256_set1_ps(sc[r]);
                    const __m256 z = _mm256_set1_ps(a->zeros ? a->zeros[si + r] : a->zimp);
                    float *o = oacc + (size_t)(bi * 32 + r) * 64;
                    UNROLL for (int v = 0; v < MV; v++) {
                        const __m256 lo = _mm256_fnmadd_ps(z, S[2 * v], _mm256_cvtepi32_ps(
                            _mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc[v]))));
                        const __m256 hi = _mm256_fnmadd_ps(z, S[2 * v + 1], _mm256_cvtepi32_ps(
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc[v], 1))));
                        _mm256_store_ps(o + 16 * v,
                                        _mm256_fmadd_ps(lo, _mm256_mul_ps(s, ts[2 * v]),
                                                        _mm256_load_ps(o + 16 * v)));
                        _mm256_store_ps(o + 16 * v + 8,
                                        _mm256_fmadd_ps(hi, _mm256_mul_ps(s, ts[2 * v + 1]),
                                                        _mm256_load_ps(o + 16 * v + 8)));
                    }
                }
            }
        }
    }
    /* out[m, n] = oacc[n][m] */
    const int mt = min_int(16 * MV, a->M - m0);
    for (int bi = 0; bi < nblk; bi++) {
        const int n0 = (blk0 + bi) * LUTRT_BLOCK_N, rows = min_int(LUTRT_BLOCK_N, a->N - n0);
        for (int m = 0; m < mt; m++) {
            float *dst = a->out + (size_t)(m0 + m) * a->N + n0;
            for (int r = 0; r < rows; r++) dst[r] = oacc[(size_t)(bi * 32 + r) * 64 + m];
        }
    }
}

typedef void (*vtile_fn)(const vlut_job *, int, int, int, float *, uint8_t *);
#define VT_FN(MV, BITS)                                                                      \
    static __attribute__((noinline)) void vtile_##MV##_##BITS(const vlut_job *j, int b0,    \
                                                              int b1, int m0, float *o,     \
                                                              uint8_t *u) {                 \
        vlut_tile(j, b0, b1, m0, o, u, MV, BITS);                                            \
    }
#define VT_BITS(MV) VT_FN(MV, 1) VT_FN(MV, 2) VT_FN(MV, 3) VT_FN(MV, 4)
VT_BITS(1) VT_BITS(2) VT_BITS(3) VT_BITS(4)
#define VT_ROW(MV) {vtile_##MV##_1, vtile_##MV##_2, vtile_##MV##_3, vtile_##MV##_4}
static const vtile_fn vtiles[4][4] = {VT_ROW(1), VT_ROW(2), VT_ROW(3), VT_ROW(4)};

static void vlut_task(void *ctx, int u0, int u1) {
    const vlut_job *job = (const vlut_job *)ctx;
    const lutrt_mma_args *a = job->a;
    const int unit = job->unit;
    float *oacc = aligned_alloc(32, (size_t)unit * 32 * 64 * sizeof(float));
    uint8_t *ubuf = aligned_alloc(32, 16 * 32 * 4);
    if (!oacc || !ubuf) abort();
    for (int u = u0; u < u1; u++) {
        const int b0 = u * unit, b1 = min_int(a->NB, b0 + unit);
        for (int m0 = 0; m0 < a->M; m0 += job->tile_m) {
            const int rem = a->M - m0;
            const int mv = min_int(job->tile_m, (rem + 15) & ~15) / 16;
            vtiles[mv - 1][a->bits - 1](job, b0, b1, m0, oacc, ubuf);
        }
    }
    free(oacc);
    free(ubuf);
}

/* The rebuilt tables of the last call on this thread: kept (grow-only) so that back-to-back
 * GEMMs do not page-fault a fresh multi-MiB buffer each time. */
static _Thread_local struct {
    void *p;
    size_t bytes;
} vt_cache;

static void *vt_buffer(size_t bytes) {
    if (vt_cache.bytes < bytes) {
        lutrt_pool_on_shutdown(lutrt_vlut_release); /* the pool frees it, knowing no kernel */
        free(vt_cache.p);
        vt_cache.p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        vt_cache.bytes = vt_cache.p ? bytes : 0;
    }
    return vt_cache.p;
}

void lutrt_vlut_release(void) {
    free(vt_cache.p);
    vt_cache.p = NULL;
    vt_cache.bytes = 0;
}

int lutrt_mma_i8_vlut_avx2(const lutrt_mma_args *a) {
    const lutrt_mma_desc *d = a->d;
    const int Mpad = (a->M + 15) & ~15;
    vlut_prep p = {.a = a, .Mpad = Mpad};
    const size_t vt_bytes = (size_t)a->J * 16 * Mpad * sizeof(int16_t);
    const size_t ts_floats = (size_t)a->NS * Mpad;
    uint8_t *buf = vt_buffer(vt_bytes + 2 * ts_floats * sizeof(float));
    if (!buf) return lutrt_fail("lutrt_mma: out of memory for Vec-LUT tables");
    p.vt = (int16_t *)buf;
    p.tsT = (float *)(buf + vt_bytes);
    p.tsumT = p.tsT + ts_floats;
    for (int m = a->M; m < Mpad; m++) /* padding tokens */
        for (int t = 0; t < a->NS; t++) p.tsT[(size_t)t * Mpad + m] = p.tsumT[(size_t)t * Mpad + m] = 0.0f;
    for (int m = 0; m < a->M; m++)
        for (int t = 0; t < a->NS; t++) {
            p.tsT[(size_t)t * Mpad + m] = a->tscale[(size_t)m * a->NS + t];
            p.tsumT[(size_t)t * Mpad + m] = a->tsum[(size_t)m * a->NS + t];
        }
    int tile_m = d->tile_m > 0 ? (d->tile_m + 15) & ~15 : 64;
    if (tile_m > 64) tile_m = 64;
    p.tile_m = tile_m;
    lutrt_parallel_for(d->num_threads, a->J, 64, rebuild_task, &p);

    int unit;
    if (d->tile_n > 0) {
        unit = (d->tile_n + LUTRT_BLOCK_N - 1) / LUTRT_BLOCK_N;
    } else { /* 8 blocks, fewer when that would leave a thread without 2 units */
        const int threads = lutrt_threads_for(d->num_threads);
        unit = a->NB / (2 * threads);
        unit = unit < 1 ? 1 : unit > 8 ? 8 : unit;
    }
    if (unit > 64) unit = 64;
    vlut_job job = {.a = a, .p = &p, .tile_m = tile_m, .unit = unit};
    lutrt_parallel_for(d->num_threads, (a->NB + unit - 1) / unit, 1, vlut_task, &job);
    return LUTRT_OK;
}
