/* lmma_avx2.c — lut.mma on int8 tables with AVX2 vpshufb (docs/design.md §3.4, §6).
 *
 * One vpshufb looks up 32 codes in a 16-entry int8 table held in both 128-bit lanes. The packed
 * layout (lutrt_internal.h) puts the two bit planes of a pair next to each other, so one
 * vpmaddubsw with constants (2^b, 2^(b+1)) combines the planes, sign-extends and widens to
 * int16: 16 weight rows per vector. Mirrored (8-entry) tables are widened in register to
 * [T8, -T8] with vpsignb, which is exactly the code convention "c >= 8 looks up -T8[c & 7]".
 *
 * int16 accumulation bound: within one table scale group (<= 64 activations = 16 tables)
 * |sum_j sum_b 2^b Lq| <= 16 * 15 * 127 = 30480 < 32767, and every vpmaddubsw pair is at most
 * (4 + 8) * 127 = 1524, so nothing saturates. Each scale group's integer sum I is then
 * converted to float and corrected by the zero point against the same rounded entries,
 * F += tscale * (I - z * S[m, t]) (lutrt.h; exact 0 for codes all equal to an integer z), and
 * each weight group adds s * F.
 * Wider codes (B = 5..8, e.g. GGUF Q8_0) would break that bound (16 * 255 * 127), so planes
 * 0..3 and planes 4..B-1 go to two int16 accumulators, each weighted 1, 2, 4, 8 within its
 * nibble (the same 30480 bound); the flush widens both and adds lo + 16 hi in int32. The
 * split is a compile-time constant, so B <= 4 code is unchanged.
 *
 * Memory: a GEMV is bound by streaming the weights, and one sequential stream per thread
 * stalls well below the bandwidth (§6); the M = 1 path therefore walks 4 weight blocks (4
 * independent streams, each contiguous over K) at once. On this design's Zen 3 test machine the
 * lookup loop runs at the speed of a hand-written asm loop of the same instructions (~3.4
 * cycles per 32 rows x 1 table x 2 planes); the per-scale-group float flush adds ~25%.
 */
#include <immintrin.h>
#include <string.h>

#include "lutrt_internal.h"

/* facc is written by the first scale group of each weight group before it is read; gcc cannot
 * see that through the js == j0 flag. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

static int min_int(int a, int b) { return a < b ? a : b; }

/* Table j of one row, broadcast to both lanes; mirrored tables become [T8, -T8]. */
ALWAYS_INLINE __m256i load_table(const int8_t *t, int mirrored, __m256i signs) {
    if (mirrored) {
        int64_t v;
        memcpy(&v, t, 8);
        return _mm256_sign_epi8(_mm256_set1_epi64x(v), signs);
    }
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t));
}

/* facc[0..15] (+)= ts * (acc - z * S) (16 int16 lanes = 16 consecutive weight rows, z their
 * zero points); the first scale group of a weight group stores, so facc never needs clearing. */
ALWAYS_INLINE void flush16(float *facc, __m256i acc, __m256 ts, __m256 S, const __m256 *z,
                           int first) {
    __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc)));
    __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc, 1)));
    lo = _mm256_fnmadd_ps(z[0], S, lo);
    hi = _mm256_fnmadd_ps(z[1], S, hi);
    if (first) {
        _mm256_store_ps(facc, _mm256_mul_ps(lo, ts));
        _mm256_store_ps(facc + 8, _mm256_mul_ps(hi, ts));
    } else {
        _mm256_store_ps(facc, _mm256_fmadd_ps(lo, ts, _mm256_load_ps(facc)));
        _mm256_store_ps(facc + 8, _mm256_fmadd_ps(hi, ts, _mm256_load_ps(facc + 8)));
    }
}

/* B > 4: the int32 sum lo + 16 hi of the two plane-nibble accumulators, as 16 int16 lanes'
 * worth of floats: facc[0..15] (+)= ts * (lo + 16 hi). */
ALWAYS_INLINE void flush16_wide(float *facc, __m256i lo, __m256i hi, __m256 ts, __m256 S,
                                const __m256 *z, int first) {
    const __m256i l0 = _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo)),
                                        _mm256_slli_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi)), 4));
    const __m256i l1 = _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1)),
                                        _mm256_slli_epi32(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi, 1)), 4));
    const __m256 f0 = _mm256_fnmadd_ps(z[0], S, _mm256_cvtepi32_ps(l0));
    const __m256 f1 = _mm256_fnmadd_ps(z[1], S, _mm256_cvtepi32_ps(l1));
    if (first) {
        _mm256_store_ps(facc, _mm256_mul_ps(f0, ts));
        _mm256_store_ps(facc + 8, _mm256_mul_ps(f1, ts));
    } else {
        _mm256_store_ps(facc, _mm256_fmadd_ps(f0, ts, _mm256_load_ps(facc)));
        _mm256_store_ps(facc + 8, _mm256_fmadd_ps(f1, ts, _mm256_load_ps(facc + 8)));
    }
}

/* Rows m0..m0+MT-1 of out for weight blocks blk0..blk0+NBK-1. MT, NBK, MIR and BITS are
 * constants in every instantiation, so the accumulators live in registers. acc[..][h][half]:
 * h = 0 for planes 0..3, 1 for planes 4..7 (B > 4 only); half 0 / 1 = rows 0..15 / 16..31. */
ALWAYS_INLINE void tile_i8(const lutrt_mma_args *a, int m0, int blk0, const int MT,
                           const int NBK, const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, npairs = BITS >> 1, odd = BITS & 1;
    const int NH = BITS > 4 ? 2 : 1, hlast = (BITS - 1) >> 2;
    const size_t chunk = a->chunk;
    const __m256i m0f = _mm256_set1_epi8(0x0f);
    const __m256i signs = _mm256_setr_epi8(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    /* vpmaddubsw weights: plane pair p contributes 2^(2p) * even byte + 2^(2p+1) * odd byte
     * (relative to its nibble of planes: pairs 2, 3 reuse the weights of pairs 0, 1) */
    const __m256i cpair0 = _mm256_set1_epi16(0x0201), cpair1 = _mm256_set1_epi16(0x0804);
    /* odd B: the last plane alone; even bytes are rows 0..15, odd bytes rows 16..31 */
    const int wlast = 1 << ((BITS - 1) & 3);
    const __m256i ceven = _mm256_set1_epi16((short)wlast);
    const __m256i codd = _mm256_set1_epi16((short)(wlast << 8));

    const uint8_t *wb[4];
    const int8_t *tb[4];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++)
        tb[r] = (const int8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes;

    float facc[4][4][32] __attribute__((aligned(32))); /* current weight group, per row/block */
    float oacc[4][4][32] __attribute__((aligned(32))); /* output */
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++)
            UNROLL for (int q = 0; q < 32; q += 8) _mm256_store_ps(oacc[r][bi] + q, _mm256_setzero_ps());

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        for (int js = j0, t = j0 / a->jt; js < j1; js += a->jt, t++) {
            const int je = min_int(j1, js + a->jt);
            __m256i acc[4][4][2][2];
            UNROLL for (int r = 0; r < MT; r++)
                UNROLL for (int bi = 0; bi < NBK; bi++)
                    UNROLL for (int h = 0; h < NH; h++)
                        acc[r][bi][h][0] = acc[r][bi][h][1] = _mm256_setzero_si256();
            for (int j = js; j < je; j++) {
                __m256i tab[4];
                UNROLL for (int r = 0; r < MT; r++)
                    tab[r] = load_table(tb[r] + (size_t)j * E, MIR, signs);
                UNROLL for (int bi = 0; bi < NBK; bi++) {
                    const uint8_t *p = wb[bi] + (size_t)j * chunk;
                    UNROLL for (int pp = 0; pp < npairs; pp++) {
                        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * pp));
                        const __m256i lo = _mm256_and_si256(v, m0f);
                        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m0f);
                        const __m256i c = (pp & 1) ? cpair1 : cpair0;
                        const int h = pp >> 1;
                        UNROLL for (int r = 0; r < MT; r++) {
                            const __m256i x0 = _mm256_shuffle_epi8(tab[r], lo);
                            const __m256i x1 = _mm256_shuffle_epi8(tab[r], hi);
                            acc[r][bi][h][0] = _mm256_add_epi16(acc[r][bi][h][0], _mm256_maddubs_epi16(c, x0));
                            acc[r][bi][h][1] = _mm256_add_epi16(acc[r][bi][h][1], _mm256_maddubs_epi16(c, x1));
                        }
                    }
                    if (odd) { /* low nibbles in lane 0, high nibbles in lane 1 */
                        const __m256i v = _mm256_broadcastsi128_si256(
                            _mm_loadu_si128((const __m128i *)(p + 32 * npairs)));
                        const __m256i idx = _mm256_blend_epi32(
                            _mm256_and_si256(v, m0f), _mm256_and_si256(_mm256_srli_epi16(v, 4), m0f), 0xF0);
                        UNROLL for (int r = 0; r < MT; r++) {
                            const __m256i x = _mm256_shuffle_epi8(tab[r], idx);
                            acc[r][bi][hlast][0] = _mm256_add_epi16(acc[r][bi][hlast][0], _mm256_maddubs_epi16(ceven, x));
                            acc[r][bi][hlast][1] = _mm256_add_epi16(acc[r][bi][hlast][1], _mm256_maddubs_epi16(codd, x));
                        }
                    }
                }
            }
            /* end of a table scale group: int16 -> float, - z * S[m, t], times tscale[m, t] */
            UNROLL for (int bi = 0; bi < NBK; bi++) {
                __m256 z[4];
                const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
                UNROLL for (int q = 0; q < 4; q++)
                    z[q] = a->zeros ? _mm256_loadu_ps(a->zeros + si + 8 * q) : _mm256_set1_ps(a->zimp);
                UNROLL for (int r = 0; r < MT; r++) {
                    const size_t mt = (size_t)(m0 + r) * a->NS + t;
                    const __m256 ts = _mm256_set1_ps(a->tscale[mt]), S = _mm256_set1_ps(a->tsum[mt]);
                    if (NH == 2) {
                        flush16_wide(facc[r][bi], acc[r][bi][0][0], acc[r][bi][1][0], ts, S, z, js == j0);
                        flush16_wide(facc[r][bi] + 16, acc[r][bi][0][1], acc[r][bi][1][1], ts, S, z + 2, js == j0);
                    } else {
                        flush16(facc[r][bi], acc[r][bi][0][0], ts, S, z, js == j0);
                        flush16(facc[r][bi] + 16, acc[r][bi][0][1], ts, S, z + 2, js == j0);
                    }
                }
            }
        }
        /* end of a weight group: out += s * F */
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
            UNROLL for (int r = 0; r < MT; r++) {
                UNROLL for (int q = 0; q < 32; q += 8) {
                    const __m256 s = _mm256_loadu_ps(a->scales + si + q);
                    const __m256 f = _mm256_load_ps(facc[r][bi] + q);
                    _mm256_store_ps(oacc[r][bi] + q, _mm256_fmadd_ps(s, f, _mm256_load_ps(oacc[r][bi] + q)));
                }
            }
        }
    }
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const int n0 = (blk0 + bi) * LUTRT_BLOCK_N, rows = min_int(LUTRT_BLOCK_N, a->N - n0);
            memcpy(a->out + (size_t)(m0 + r) * a->N + n0, oacc[r][bi], (size_t)rows * sizeof(float));
        }
}

typedef void (*tile_fn)(const lutrt_mma_args *, int, int);

/* One instantiation per (shape, mirrored, bits): everything the inner loop branches on is a
 * compile-time constant. Shapes: 1x4, 1x2, 1x1, 2x2, 2x1 (rows x blocks). */
#define TILE(MT, NBK, MIR, BITS)                                                     \
    static __attribute__((noinline)) void tile_##MT##x##NBK##_##MIR##_##BITS(       \
        const lutrt_mma_args *a, int m0, int blk0) {                                 \
        tile_i8(a, m0, blk0, MT, NBK, MIR, BITS);                                    \
    }
#define TILES(MIR, BITS)                                                             \
    TILE(1, 4, MIR, BITS) TILE(1, 2, MIR, BITS) TILE(1, 1, MIR, BITS)                \
    TILE(2, 2, MIR, BITS) TILE(2, 1, MIR, BITS)
#define SHAPES(MIR, BITS)                                                            \
    {tile_1x4_##MIR##_##BITS, tile_1x2_##MIR##_##BITS, tile_1x1_##MIR##_##BITS,      \
     tile_2x2_##MIR##_##BITS, tile_2x1_##MIR##_##BITS}
TILES(0, 1) TILES(0, 2) TILES(0, 3) TILES(0, 4) TILES(0, 5) TILES(0, 6) TILES(0, 7) TILES(0, 8)
TILES(1, 1) TILES(1, 2) TILES(1, 3) TILES(1, 4) TILES(1, 5) TILES(1, 6) TILES(1, 7) TILES(1, 8)
static const tile_fn tiles[2][LUTRT_MAX_BITS][5] = {
    {SHAPES(0, 1), SHAPES(0, 2), SHAPES(0, 3), SHAPES(0, 4),
     SHAPES(0, 5), SHAPES(0, 6), SHAPES(0, 7), SHAPES(0, 8)},
    {SHAPES(1, 1), SHAPES(1, 2), SHAPES(1, 3), SHAPES(1, 4),
     SHAPES(1, 5), SHAPES(1, 6), SHAPES(1, 7), SHAPES(1, 8)},
};

/* The blocks [b0, b1) of one thread. GEMV walks 4 blocks (4 memory streams) at a time. GEMM
 * walks 2 rows x 2 blocks tiles over a super-block of blocks small enough to stay in L2 while
 * all rows pass over it. */
void lutrt_mma_i8_avx2(const lutrt_mma_args *a, int b0, int b1) {
    const tile_fn *t = tiles[a->mirrored][a->bits - 1];
    const tile_fn t1x4 = t[0], t1x2 = t[1], t1x1 = t[2], t2x2 = t[3], t2x1 = t[4];
    if (a->M == 1) {
        int blk = b0;
        for (; blk + 4 <= b1; blk += 4) t1x4(a, 0, blk);
        for (; blk + 2 <= b1; blk += 2) t1x2(a, 0, blk);
        for (; blk < b1; blk++) t1x1(a, 0, blk);
        return;
    }
    const int super = lutrt_super_blocks(a);
    for (int sb = b0; sb < b1; sb += super) {
        const int se = min_int(b1, sb + super);
        int m = 0;
        for (; m + 2 <= a->M; m += 2) {
            int blk = sb;
            for (; blk + 2 <= se; blk += 2) t2x2(a, m, blk);
            if (blk < se) t2x1(a, m, blk);
        }
        for (; m < a->M; m++) {
            int blk = sb;
            for (; blk + 2 <= se; blk += 2) t1x2(a, m, blk);
            if (blk < se) t1x1(a, m, blk);
        }
    }
}
