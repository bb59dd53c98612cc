/* lmma_f32_avx512.c — lut.mma on f32 tables (the lossless mode) with AVX-512 vpermps.
 *
 * A zmm holds one whole 16-entry f32 table, so `vpermps` (_mm512_permutexvar_ps) looks up 16
 * codes at once and reads only the low 4 bits of each index lane: no masking. Mirrored
 * (8-entry) tables are widened in register to [T8, -T8], which is exactly the code convention
 * "c >= 8 looks up -T8[c & 7]" (negation is exact), so both formats are one lookup per code.
 *
 * Codes: the 32 bytes of a plane pair (layout in lutrt_internal.h) widened by vpmovzxwd give 16
 * dword lanes; lane i holds the nibbles (plane 2p row i, plane 2p row 16+i, plane 2p+1 row i,
 * plane 2p+1 row 16+i) at bits 0, 4, 8, 12, so three shifts produce the four index vectors
 * in natural row order. An odd last plane (16 bytes: rows i, 8+i, 16+i, 24+i in word i) is
 * broadcast to both halves and shifted per lane (vpsrlvd) into rows 0..15 and 16..31.
 *
 * Arithmetic: exactly lutrt_mma_f32_ref's float operations in its order, so the results are
 * bit-identical to it (up to the sign of zero). Per (row, table) v = L(c_0), then
 * v = fma(L(c_b), 2^b, v) for b = 1..B-1 — the product is exact, so this is the reference's
 * v += 2^b L — and l += v; each weight group then adds s * (l - z * sums) with every product
 * rounded, as lmma_ref.c (compiled without FMA) does.
 *
 * Cost: 16 lookups = one vpermps (port 5) + one FMA; the widening is one more port-5 uop per
 * 64 codes. GEMM tiles share the index vectors of a block between 4 tokens. Compiled for real
 * only with -mavx512f -mavx512bw (build.py, "*_avx512.c"); otherwise lutrt_mma_f32_avx512_ptr
 * is NULL and dispatch.c keeps the AVX2 (or scalar) f32 kernel — also in SIMDe emulation
 * builds, which this file does not support.
 */
#include "lutrt_internal.h"

#if defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#define LUTRT_HAVE_AVX512 1
#endif

#ifdef LUTRT_HAVE_AVX512
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

static int min_int(int a, int b) { return a < b ? a : b; }

/* Table j of one row as 16 entries; mirrored tables become [T8, -T8]. AVX-512F only (the
 * f32x8 broadcast and float xor would need DQ). */
ALWAYS_INLINE __m512 load_table(const float *t, int mirrored) {
    if (mirrored) {
        const __m512i x = _mm512_castpd_si512(_mm512_broadcast_f64x4(_mm256_loadu_pd((const double *)t)));
        return _mm512_castsi512_ps(
            _mm512_mask_xor_epi32(x, (__mmask16)0xFF00, x, _mm512_set1_epi32((int)0x80000000u)));
    }
    return _mm512_loadu_ps(t);
}

/* The weight-group flush rounds each product like lmma_ref.c: the _round_ forms are builtins
 * that gcc never contracts into FMAs (plain _mm512_mul_ps + _mm512_add_ps may be). */
#define CUR _MM_FROUND_CUR_DIRECTION

#define LOOKUP(acc, idx, tab, coef) acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, tab), coef, acc)

/* Rows m0..m0+MT-1 of out for weight blocks blk0..blk0+NBK-1; MT, NBK, MIR and BITS are
 * constants in every instantiation, so the accumulators live in registers. */
ALWAYS_INLINE void tile_f32(const lutrt_mma_args *a, int m0, int blk0, const int MT,
                            const int NBK, const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, npairs = BITS >> 1, odd = BITS & 1;
    const size_t chunk = a->chunk;
    /* odd B: rows 0..15 are words 0..7 >> (0, 4), rows 16..31 the same words >> (8, 12) */
    const __m512i sh_lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    const __m512i sh_hi = _mm512_setr_epi32(8, 8, 8, 8, 8, 8, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12);
    const __m512 wlast = _mm512_set1_ps((float)(1 << (BITS - 1)));

    const uint8_t *wb[4];
    const float *tb[4];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++)
        tb[r] = (const float *)((const uint8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes);

    float oacc[4][4][32] __attribute__((aligned(64)));
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++)
            UNROLL for (int q = 0; q < 32; q += 16) _mm512_store_ps(oacc[r][bi] + q, _mm512_setzero_ps());

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        __m512 acc[4][4][2]; /* rows 0..15 and 16..31 of each (token, block) */
        UNROLL for (int r = 0; r < MT; r++)
            UNROLL for (int bi = 0; bi < NBK; bi++) acc[r][bi][0] = acc[r][bi][1] = _mm512_setzero_ps();
        for (int j = j0; j < j1; j++) {
            __m512 tab[4];
            UNROLL for (int r = 0; r < MT; r++) tab[r] = load_table(tb[r] + (size_t)j * E, MIR);
            UNROLL for (int bi = 0; bi < NBK; bi++) {
                const uint8_t *p = wb[bi] + (size_t)j * chunk;
                /* v = sum_b 2^b L(c_b) of rows 0..15 / 16..31 in the reference's plane order */
                __m512 v[4][2];
                UNROLL for (int pp = 0; pp < npairs; pp++) {
                    const __m512i i0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 32 * pp)));
                    const __m512i i1 = _mm512_srli_epi32(i0, 4), i2 = _mm512_srli_epi32(i0, 8);
                    const __m512i i3 = _mm512_srli_epi32(i0, 12);
                    const __m512 c0 = _mm512_set1_ps((float)(1 << (2 * pp)));
                    const __m512 c1 = _mm512_set1_ps((float)(2 << (2 * pp)));
                    UNROLL for (int r = 0; r < MT; r++) {
                        if (pp == 0) {
                            v[r][0] = _mm512_permutexvar_ps(i0, tab[r]);
                            v[r][1] = _mm512_permutexvar_ps(i1, tab[r]);
                        } else {
                            LOOKUP(v[r][0], i0, tab[r], c0);
                            LOOKUP(v[r][1], i1, tab[r], c0);
                        }
                        LOOKUP(v[r][0], i2, tab[r], c1);
                        LOOKUP(v[r][1], i3, tab[r], c1);
                    }
                }
                if (odd) {
                    const __m512i w = _mm512_cvtepu16_epi32(
                        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 32 * npairs))));
                    const __m512i lo = _mm512_srlv_epi32(w, sh_lo), hi = _mm512_srlv_epi32(w, sh_hi);
                    UNROLL for (int r = 0; r < MT; r++) {
                        if (npairs == 0) {
                            v[r][0] = _mm512_permutexvar_ps(lo, tab[r]);
                            v[r][1] = _mm512_permutexvar_ps(hi, tab[r]);
                        } else {
                            LOOKUP(v[r][0], lo, tab[r], wlast);
                            LOOKUP(v[r][1], hi, tab[r], wlast);
                        }
                    }
                }
                UNROLL for (int r = 0; r < MT; r++) {
                    acc[r][bi][0] = _mm512_add_ps(acc[r][bi][0], v[r][0]);
                    acc[r][bi][1] = _mm512_add_ps(acc[r][bi][1], v[r][1]);
                }
            }
        }
        /* end of a weight group: out += s * (acc - z * sums) */
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
            UNROLL for (int r = 0; r < MT; r++) {
                const __m512 sm = _mm512_set1_ps(a->sums[(size_t)(m0 + r) * a->NG + g]);
                UNROLL for (int h = 0; h < 2; h++) {
                    const __m512 s = _mm512_loadu_ps(a->scales + si + 16 * h);
                    const __m512 z = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16 * h) : _mm512_set1_ps(a->zimp);
                    const __m512 f = _mm512_sub_round_ps(acc[r][bi][h], _mm512_mul_round_ps(z, sm, CUR), CUR);
                    _mm512_store_ps(oacc[r][bi] + 16 * h,
                                    _mm512_add_round_ps(_mm512_load_ps(oacc[r][bi] + 16 * h),
                                                        _mm512_mul_round_ps(s, f, CUR), CUR));
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

/* Shapes (tokens x blocks): 1x4, 1x2, 1x1 (GEMV and leftover tokens), 4x2, 4x1 (GEMM). */
#define TILE(MT, NBK, MIR, BITS)                                                     \
    static __attribute__((noinline)) void tile_##MT##x##NBK##_##MIR##_##BITS(       \
        const lutrt_mma_args *a, int m0, int blk0) {                                 \
        tile_f32(a, m0, blk0, MT, NBK, MIR, BITS);                                   \
    }
#define TILES(MIR, BITS)                                                             \
    TILE(1, 4, MIR, BITS) TILE(1, 2, MIR, BITS) TILE(1, 1, MIR, BITS)                \
    TILE(4, 2, MIR, BITS) TILE(4, 1, MIR, BITS)
#define SHAPES(MIR, BITS)                                                            \
    {tile_1x4_##MIR##_##BITS, tile_1x2_##MIR##_##BITS, tile_1x1_##MIR##_##BITS,      \
     tile_4x2_##MIR##_##BITS, tile_4x1_##MIR##_##BITS}
TILES(0, 1) TILES(0, 2) TILES(0, 3) TILES(0, 4)
TILES(1, 1) TILES(1, 2) TILES(1, 3) TILES(1, 4)
static const tile_fn tiles[2][4][5] = {
    {SHAPES(0, 1), SHAPES(0, 2), SHAPES(0, 3), SHAPES(0, 4)},
    {SHAPES(1, 1), SHAPES(1, 2), SHAPES(1, 3), SHAPES(1, 4)},
};

/* The blocks [b0, b1) of one thread, walked like lmma_avx2.c: GEMV 4 blocks (4 memory
 * streams) at a time; GEMM 4 tokens x 2 blocks over L2-sized super-blocks. Bit widths above
 * 4 (other packed layouts) go to the scalar kernel. */
static void mma_f32_avx512(const lutrt_mma_args *a, int b0, int b1) {
    if (a->bits < 1 || a->bits > 4) {
        lutrt_mma_f32_ref(a, b0, b1);
        return;
    }
    const tile_fn *t = tiles[a->mirrored][a->bits - 1];
    const tile_fn t1x4 = t[0], t1x2 = t[1], t1x1 = t[2], t4x2 = t[3], t4x1 = t[4];
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
        for (; m + 4 <= a->M; m += 4) {
            int blk = sb;
            for (; blk + 2 <= se; blk += 2) t4x2(a, m, blk);
            if (blk < se) t4x1(a, m, blk);
        }
        for (; m < a->M; m++) {
            int blk = sb;
            for (; blk + 2 <= se; blk += 2) t1x2(a, m, blk);
            if (blk < se) t1x1(a, m, blk);
        }
    }
}

const lutrt_mma_fn lutrt_mma_f32_avx512_ptr = mma_f32_avx512;
#else
const lutrt_mma_fn lutrt_mma_f32_avx512_ptr = 0;
#endif
