/* lmma_f32_avx2.c — lut.mma on f32 tables (the lossless mode) with AVX2 vpermps.
 *
 * `vpermps` (_mm256_permutevar8x32_ps) looks up 8 codes in an 8-entry f32 table held in a ymm,
 * reading only the low 3 bits of each index lane.
 *   Mirrored (8 entries): code c looks up -T8[c & 7] if c >= 8. The kernel keeps the table as
 *   T'[p] = bits(T8[p]) ^ (p << 28) and xors each lookup with (idx << 28), which holds exactly
 *   the code's 4 bits at 28..31: bits(T8[c & 7]) ^ ((c & 7) << 28) ^ (c << 28) =
 *   bits(T8[c & 7]) ^ ((c & 8) << 28) = +-T8[c & 7]. Two ops per 8 codes, exact.
 *   Plain (16 entries): two lookups (entries 0..7, 8..15) and vblendvps on code bit 3.
 *
 * Codes: the 16-byte halves of a plane pair (layout in lutrt_internal.h) widened by vpmovzxwd
 * give 8 dword lanes; lane i of half h holds (plane 2p row 8h+i, plane 2p row 16+8h+i,
 * plane 2p+1 row 8h+i, plane 2p+1 row 16+8h+i) at bits 0, 4, 8, 12. An odd last plane's 16
 * bytes hold rows (i, 8+i, 16+i, 24+i) in word i. Shifts by 4 give the index vectors.
 *
 * Arithmetic as lmma_f32_avx512.c: lutrt_mma_f32_ref's float operations in its order
 * (v = L(c_0), v = fma(L(c_b), 2^b, v), l += v; per weight group s * (l - z * sums) with
 * rounded products), so the results are bit-identical to it up to the sign of zero.
 */
#include <immintrin.h>
#include <string.h>

#include "lutrt_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

static int min_int(int a, int b) { return a < b ? a : b; }

/* Table j of one row: mirrored -> T' (above) in t[0]; plain -> entries 0..7, 8..15. */
ALWAYS_INLINE void load_table(const float *t, int mirrored, __m256 tab[2]) {
    if (mirrored) {
        const __m256i lane_bits = _mm256_setr_epi32(0 << 28, 1 << 28, 2 << 28, 3 << 28, 4 << 28,
                                                    5 << 28, 6 << 28, 7 << 28);
        tab[0] = _mm256_xor_ps(_mm256_loadu_ps(t), _mm256_castsi256_ps(lane_bits));
    } else {
        tab[0] = _mm256_loadu_ps(t);
        tab[1] = _mm256_loadu_ps(t + 8);
    }
}

/* The table entry of each index lane's code (low 4 bits). */
ALWAYS_INLINE __m256 lookup(const __m256 tab[2], __m256i idx, int mirrored) {
    const __m256 code_hi = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
    if (mirrored) return _mm256_xor_ps(_mm256_permutevar8x32_ps(tab[0], idx), code_hi);
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(tab[0], idx),
                            _mm256_permutevar8x32_ps(tab[1], idx), code_hi);
}

/* A product rounded to float before it is used: the weight-group flush rounds like lmma_ref.c
 * (compiled without FMA), and gcc would otherwise contract _mm256_mul_ps + _mm256_add_ps. */
ALWAYS_INLINE __m256 rounded(__m256 x) {
    __asm__("" : "+x"(x));
    return x;
}

#define LOOKUP(acc, idx, tab, coef) acc = _mm256_fmadd_ps(lookup(tab, idx, MIR), coef, acc)

/* Rows m0..m0+MT-1 of out for weight blocks blk0..blk0+NBK-1 (MT * NBK <= 2: 16 ymm). */
ALWAYS_INLINE void tile_f32(const lutrt_mma_args *a, int m0, int blk0, const int MT,
                            const int NBK, const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, npairs = BITS >> 1, odd = BITS & 1;
    const size_t chunk = a->chunk;
    const __m256 wlast = _mm256_set1_ps((float)(1 << (BITS - 1)));

    const uint8_t *wb[2];
    const float *tb[2];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++)
        tb[r] = (const float *)((const uint8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes);

    float oacc[2][2][32] __attribute__((aligned(32)));
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++)
            UNROLL for (int q = 0; q < 32; q += 8) _mm256_store_ps(oacc[r][bi] + q, _mm256_setzero_ps());

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        __m256 acc[2][2][4]; /* rows 8q..8q+7 of each (token, block) */
        UNROLL for (int r = 0; r < MT; r++)
            UNROLL for (int bi = 0; bi < NBK; bi++)
                UNROLL for (int q = 0; q < 4; q++) acc[r][bi][q] = _mm256_setzero_ps();
        for (int j = j0; j < j1; j++) {
            __m256 tab[2][2];
            UNROLL for (int r = 0; r < MT; r++) load_table(tb[r] + (size_t)j * E, MIR, tab[r]);
            UNROLL for (int bi = 0; bi < NBK; bi++) {
                const uint8_t *p = wb[bi] + (size_t)j * chunk;
                __m256i wodd = _mm256_setzero_si256();
                if (odd) wodd = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 32 * npairs)));
                /* half h: rows 8h..8h+7 and 16+8h..16+8h+7 (quads h and 2+h) */
                UNROLL for (int h = 0; h < 2; h++) {
                    /* v = sum_b 2^b L(c_b) in the reference's plane order */
                    __m256 v[2][2];
                    UNROLL for (int pp = 0; pp < npairs; pp++) {
                        const __m256 c0 = _mm256_set1_ps((float)(1 << (2 * pp)));
                        const __m256 c1 = _mm256_set1_ps((float)(2 << (2 * pp)));
                        const __m256i i0 = _mm256_cvtepu16_epi32(
                            _mm_loadu_si128((const __m128i *)(p + 32 * pp + 16 * h)));
                        const __m256i i1 = _mm256_srli_epi32(i0, 4), i2 = _mm256_srli_epi32(i0, 8);
                        const __m256i i3 = _mm256_srli_epi32(i0, 12);
                        UNROLL for (int r = 0; r < MT; r++) {
                            if (pp == 0) {
                                v[r][0] = lookup(tab[r], i0, MIR);
                                v[r][1] = lookup(tab[r], i1, MIR);
                            } else {
                                LOOKUP(v[r][0], i0, tab[r], c0);
                                LOOKUP(v[r][1], i1, tab[r], c0);
                            }
                            LOOKUP(v[r][0], i2, tab[r], c1);
                            LOOKUP(v[r][1], i3, tab[r], c1);
                        }
                    }
                    if (odd) {
                        const __m256i lo = _mm256_srli_epi32(wodd, 4 * h);
                        const __m256i hi = _mm256_srli_epi32(wodd, 8 + 4 * h);
                        UNROLL for (int r = 0; r < MT; r++) {
                            if (npairs == 0) {
                                v[r][0] = lookup(tab[r], lo, MIR);
                                v[r][1] = lookup(tab[r], hi, MIR);
                            } else {
                                LOOKUP(v[r][0], lo, tab[r], wlast);
                                LOOKUP(v[r][1], hi, tab[r], wlast);
                            }
                        }
                    }
                    UNROLL for (int r = 0; r < MT; r++) {
                        acc[r][bi][h] = _mm256_add_ps(acc[r][bi][h], v[r][0]);
                        acc[r][bi][2 + h] = _mm256_add_ps(acc[r][bi][2 + h], v[r][1]);
                    }
                }
            }
        }
        /* end of a weight group: out += s * (acc - z * sums) */
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
            UNROLL for (int r = 0; r < MT; r++) {
                const __m256 sm = _mm256_set1_ps(a->sums[(size_t)(m0 + r) * a->NG + g]);
                UNROLL for (int q = 0; q < 4; q++) {
                    const __m256 s = _mm256_loadu_ps(a->scales + si + 8 * q);
                    const __m256 z = a->zeros ? _mm256_loadu_ps(a->zeros + si + 8 * q) : _mm256_set1_ps(a->zimp);
                    const __m256 f = _mm256_sub_ps(acc[r][bi][q], rounded(_mm256_mul_ps(z, sm)));
                    _mm256_store_ps(oacc[r][bi] + 8 * q,
                                    _mm256_add_ps(_mm256_load_ps(oacc[r][bi] + 8 * q),
                                                  rounded(_mm256_mul_ps(s, f))));
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

/* Shapes (tokens x blocks): 1x2, 1x1, 2x1. */
#define TILE(MT, NBK, MIR, BITS)                                                     \
    static __attribute__((noinline)) void tile_##MT##x##NBK##_##MIR##_##BITS(       \
        const lutrt_mma_args *a, int m0, int blk0) {                                 \
        tile_f32(a, m0, blk0, MT, NBK, MIR, BITS);                                   \
    }
#define TILES(MIR, BITS) TILE(1, 2, MIR, BITS) TILE(1, 1, MIR, BITS) TILE(2, 1, MIR, BITS)
#define SHAPES(MIR, BITS) \
    {tile_1x2_##MIR##_##BITS, tile_1x1_##MIR##_##BITS, tile_2x1_##MIR##_##BITS}
TILES(0, 1) TILES(0, 2) TILES(0, 3) TILES(0, 4)
TILES(1, 1) TILES(1, 2) TILES(1, 3) TILES(1, 4)
static const tile_fn tiles[2][4][3] = {
    {SHAPES(0, 1), SHAPES(0, 2), SHAPES(0, 3), SHAPES(0, 4)},
    {SHAPES(1, 1), SHAPES(1, 2), SHAPES(1, 3), SHAPES(1, 4)},
};

/* The blocks [b0, b1) of one thread: GEMV 2 blocks at a time; GEMM 2 tokens x 1 block over
 * L2-sized super-blocks. Bit widths above 4 (other packed layouts) go to the scalar kernel. */
void lutrt_mma_f32_avx2(const lutrt_mma_args *a, int b0, int b1) {
    if (a->bits < 1 || a->bits > 4) {
        lutrt_mma_f32_ref(a, b0, b1);
        return;
    }
    const tile_fn *t = tiles[a->mirrored][a->bits - 1];
    const tile_fn t1x2 = t[0], t1x1 = t[1], t2x1 = t[2];
    if (a->M == 1) {
        int blk = b0;
        for (; blk + 2 <= b1; blk += 2) t1x2(a, 0, blk);
        if (blk < b1) t1x1(a, 0, blk);
        return;
    }
    const int super = lutrt_super_blocks(a);
    for (int sb = b0; sb < b1; sb += super) {
        const int se = min_int(b1, sb + super);
        int m = 0;
        for (; m + 2 <= a->M; m += 2)
            for (int blk = sb; blk < se; blk++) t2x1(a, m, blk);
        for (; m < a->M; m++) {
            int blk = sb;
            for (; blk + 2 <= se; blk += 2) t1x2(a, m, blk);
            if (blk < se) t1x1(a, m, blk);
        }
    }
}
