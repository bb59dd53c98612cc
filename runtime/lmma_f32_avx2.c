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
 * Arithmetic as lmma_f32_avx512.c (its header explains it): per plane pair an accumulator of
 * v = L(c_2p) + 2 L(c_2p+1), per token the sums S1, S3 of F_j and round(3 F_j), and per weight
 * group out += s * (h - C) with h = Q_0 + 4 Q_1 and C = Z[zi] + zf S1, so that the results
 * equal lutrt_mma_f32_ref's up to float32 rounding and W = 0 (codes equal to an integer zero
 * point) gives exactly 0. Z has 16 lanes for B = 4: two ymm, looked up like a plain table; zi
 * comes from vcvtps2dq & (2^B - 1) here.
 * Tiles (8 ymm of accumulators): GEMV 1 token x 2 blocks (B <= 2) or 1 x 1 (B = 3..4: two
 * accumulator sets), summing S1, S3 beside the lookups; GEMM 2 tokens x 1 block over L2-sized
 * super-blocks (B = 3..4: in two passes, one per half of the rows, so that the two tokens
 * share the index vectors), reading S1, S3 (as Z) from one zero_terms_pass per 4 tokens and
 * super-block.
 */
#include <immintrin.h>
#include <stdlib.h>
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

/* Z of lmma_f32_avx512.c (see zero_vector there) from s = [sum t[full], sum round(3 t[full])]:
 * lane l = coef * s[idx] for the plane pair (or single plane) in bits 0, 1 of l, plus 4 x that
 * of bits 2, 3 for B >= 3. zv[0] holds lanes 0..7, zv[1] lanes 8..15 (B = 4 only). */
static inline int zpart_idx(int mir, int pair, int q) {
    return pair ? (mir ? (q == 0 || q == 3) : q == 3) : 0;
}
static inline float zpart_coef(int mir, int pair, int q) {
    if (pair) return mir ? (q < 2 ? 1.0f : -1.0f) : (q == 3 ? 1.0f : (float)q);
    return mir ? (q ? -1.0f : 1.0f) : (float)q;
}
static inline int zidx(int mir, int bits, int hi, int l) {
    return hi ? zpart_idx(mir, bits == 4, (l >> 2) & 3) : zpart_idx(mir, bits >= 2, l & 3);
}
static inline float zcoef(int mir, int bits, int hi, int l) {
    return hi ? 4.0f * zpart_coef(mir, bits == 4, (l >> 2) & (bits == 4 ? 3 : 1))
              : zpart_coef(mir, bits >= 2, l & (bits >= 2 ? 3 : 1));
}
#define LANES8(f, o, ...)                                                                 \
    f(__VA_ARGS__, o + 0), f(__VA_ARGS__, o + 1), f(__VA_ARGS__, o + 2), f(__VA_ARGS__, o + 3), \
    f(__VA_ARGS__, o + 4), f(__VA_ARGS__, o + 5), f(__VA_ARGS__, o + 6), f(__VA_ARGS__, o + 7)
#define SETR_EPI32(...) _mm256_setr_epi32(__VA_ARGS__) /* (expands LANES8 first) */
#define SETR_PS(...) _mm256_setr_ps(__VA_ARGS__)
#define ZPART(s, MIR, BITS, HI, O)                                                                \
    _mm256_mul_ps(_mm256_permutevar8x32_ps(s, SETR_EPI32(LANES8(zidx, O, MIR, BITS, HI))), \
                  SETR_PS(LANES8(zcoef, O, MIR, BITS, HI)))

ALWAYS_INLINE void zero_vector(__m128 sums, const int MIR, const int BITS, __m256 zv[2]) {
    const __m256 s = _mm256_castps128_ps256(sums); /* lanes 2.. undefined, never indexed */
    zv[0] = ZPART(s, MIR, BITS, 0, 0);
    if (BITS >= 3) /* every product here is exact: the operation order is what matters */
        zv[0] = _mm256_add_ps(ZPART(s, MIR, BITS, 1, 0), zv[0]);
    if (BITS == 4) zv[1] = _mm256_add_ps(ZPART(s, MIR, BITS, 1, 8), ZPART(s, MIR, BITS, 0, 8));
}

/* Z[zi] per lane. */
ALWAYS_INLINE __m256 zero_lookup(const __m256 zv[2], __m256i zi, const int BITS) {
    if (BITS < 4) return _mm256_permutevar8x32_ps(zv[0], zi);
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(zv[0], zi), _mm256_permutevar8x32_ps(zv[1], zi),
                            _mm256_castsi256_ps(_mm256_slli_epi32(zi, 28)));
}

/* zi = the nearest integer zero point & (2^B - 1) (mirrored: of z = (z' + 2^B - 1) / 2) and the
 * rest zf = z - zi (mirrored: z' - (2 zi + 1 - 2^B)); an integer zero point in range gives
 * zf = 0, any other z (negative, too large, NaN: zi = 0) a larger zf. */
ALWAYS_INLINE void zero_point(__m256 z, const int MIR, const int BITS, __m256i *zi, __m256 *zf) {
    const __m256 u = MIR ? _mm256_add_ps(z, _mm256_set1_ps((float)((1 << BITS) - 1))) : z;
    const __m256 zh = MIR ? _mm256_mul_ps(u, _mm256_set1_ps(0.5f)) : z;
    *zi = _mm256_and_si256(_mm256_cvtps_epi32(zh), _mm256_set1_epi32((1 << BITS) - 1));
    const __m256 zif = _mm256_cvtepi32_ps(*zi);
    *zf = MIR ? _mm256_fnmadd_ps(zif, _mm256_set1_ps(2.0f), u) : _mm256_sub_ps(z, zif);
}

/* One step of a token's all-ones sums: sums += [F, round(3 F)] (raw entries t[full]). */
ALWAYS_INLINE __m128 sums_step(__m128 sums, const float *f, const int BITS) {
    __m128 e = _mm_broadcast_ss(f);
    if (BITS > 1) {
        e = _mm_mul_ps(e, _mm_setr_ps(1.0f, 3.0f, 0.0f, 0.0f));
        __asm__("" : "+x"(e)); /* round(3 F) before the add: no contraction into an FMA */
    }
    return _mm_add_ps(sums, e);
}

/* A token's zero-point terms of one weight group from its sums: zv = Z, or in zv[0] C itself
 * when one zero point (zimp: zi_imp, zf_imp) serves every row, and *s1 = S1 in every lane. */
ALWAYS_INLINE void zero_terms(const lutrt_mma_args *a, __m128 sums, __m256i zi_imp, __m256 zf_imp,
                              const int MIR, const int BITS, __m256 zv[2], __m256 *s1) {
    zero_vector(sums, MIR, BITS, zv);
    *s1 = _mm256_broadcastss_ps(sums);
    if (MIR) *s1 = _mm256_sub_ps(_mm256_setzero_ps(), *s1);
    if (!a->zeros) zv[0] = _mm256_fmadd_ps(zf_imp, *s1, zero_lookup(zv, zi_imp, BITS));
}

/* Where a tile gets each token's zero-point terms: it sums the all-ones entries beside its
 * lookups (S_OWN: GEMV, one tile per chunk of work), or reads what zero_terms_pass wrote for
 * the GEMM tiles of a super-block (S_LOAD) from zbuf: per token ZSTRIDE(NG) floats, the 16
 * lanes of Z (or C in lanes 0..7) of each group, then S1 of each group. */
enum { S_OWN, S_LOAD };
#define ZSTRIDE(NG) ((size_t)(NG) * 17)

/* Rows m0..m0+MT-1 of out for weight blocks blk0..blk0+NBK-1, row halves H0..H1 (half h: rows
 * 8h..8h+7 and 16+8h..16+8h+7, accumulator quads h and 2+h) over all weight groups. */
ALWAYS_INLINE void tile_pass(const lutrt_mma_args *a, int m0, int blk0, const float *zbuf,
                             float oacc[2][2][32], const int MT, const int NBK, const int MIR,
                             const int BITS, const int SMODE, const int H0, const int H1) {
    const int J = a->J, NG = a->NG, E = MIR ? 8 : 16, full = MIR ? 0 : 15;
    const int npairs = BITS >> 1, odd = BITS & 1, NSET = npairs + odd;
    const size_t chunk = a->chunk;
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);

    const uint8_t *wb[2];
    const float *tb[2];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++)
        tb[r] = (const float *)((const uint8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes);

    __m256i zi_imp = _mm256_setzero_si256();
    __m256 zf_imp = _mm256_setzero_ps();
    if (!a->zeros) zero_point(_mm256_set1_ps(a->zimp), MIR, BITS, &zi_imp, &zf_imp);

    for (int g = 0; g < NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        __m256 acc[2][2][2][4]; /* [token][block][pair][rows 8q..8q+7] */
        __m128 sums[2];         /* [sum t[full], sum round(3 t[full])] per token */
        UNROLL for (int r = 0; r < MT; r++) {
            sums[r] = _mm_setzero_ps();
            UNROLL for (int bi = 0; bi < NBK; bi++)
                UNROLL for (int p = 0; p < NSET; p++)
                    UNROLL for (int h = H0; h <= H1; h++) acc[r][bi][p][h] = acc[r][bi][p][2 + h] = _mm256_setzero_ps();
        }
        for (int j = j0; j < j1; j++) {
            __m256 tab[2][2];
            UNROLL for (int r = 0; r < MT; r++) load_table(tb[r] + (size_t)j * E, MIR, tab[r]);
            if (SMODE == S_OWN)
                UNROLL for (int r = 0; r < MT; r++) sums[r] = sums_step(sums[r], tb[r] + (size_t)j * E + full, BITS);
            UNROLL for (int bi = 0; bi < NBK; bi++) {
                const uint8_t *p = wb[bi] + (size_t)j * chunk;
                __m256i wodd = _mm256_setzero_si256();
                if (odd) wodd = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 32 * npairs)));
                UNROLL for (int h = H0; h <= H1; h++) {
                    UNROLL for (int pp = 0; pp < npairs; pp++) {
                        const __m256i i0 = _mm256_cvtepu16_epi32(
                            _mm_loadu_si128((const __m128i *)(p + 32 * pp + 16 * h)));
                        const __m256i i1 = _mm256_srli_epi32(i0, 4), i2 = _mm256_srli_epi32(i0, 8);
                        const __m256i i3 = _mm256_srli_epi32(i0, 12);
                        UNROLL for (int r = 0; r < MT; r++) {
                            /* v = L(plane 2p) + 2 L(plane 2p+1): 2 L is exact, one rounding */
                            const __m256 v0 = _mm256_fmadd_ps(lookup(tab[r], i2, MIR), two, lookup(tab[r], i0, MIR));
                            const __m256 v1 = _mm256_fmadd_ps(lookup(tab[r], i3, MIR), two, lookup(tab[r], i1, MIR));
                            acc[r][bi][pp][h] = _mm256_add_ps(acc[r][bi][pp][h], v0);
                            acc[r][bi][pp][2 + h] = _mm256_add_ps(acc[r][bi][pp][2 + h], v1);
                        }
                    }
                    if (odd) {
                        const __m256i lo = _mm256_srli_epi32(wodd, 4 * h);
                        const __m256i hi = _mm256_srli_epi32(wodd, 8 + 4 * h);
                        UNROLL for (int r = 0; r < MT; r++) {
                            acc[r][bi][npairs][h] = _mm256_add_ps(acc[r][bi][npairs][h], lookup(tab[r], lo, MIR));
                            acc[r][bi][npairs][2 + h] =
                                _mm256_add_ps(acc[r][bi][npairs][2 + h], lookup(tab[r], hi, MIR));
                        }
                    }
                }
            }
        }
        /* end of a weight group: out += s * (h - C) */
        __m256 zv[2][2], s1[2];
        UNROLL for (int r = 0; r < MT; r++) {
            if (SMODE == S_OWN) {
                zero_terms(a, sums[r], zi_imp, zf_imp, MIR, BITS, zv[r], &s1[r]);
            } else {
                const float *zr = zbuf + (size_t)r * ZSTRIDE(NG);
                zv[r][0] = _mm256_loadu_ps(zr + (size_t)g * 16);
                if (BITS == 4) zv[r][1] = _mm256_loadu_ps(zr + (size_t)g * 16 + 8);
                s1[r] = _mm256_broadcast_ss(zr + (size_t)NG * 16 + g);
            }
        }
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const size_t si = ((size_t)(blk0 + bi) * NG + g) * LUTRT_BLOCK_N;
            UNROLL for (int h = H0; h <= H1; h++)
                UNROLL for (int q = h; q < 4; q += 2) {
                    const __m256 s = _mm256_loadu_ps(a->scales + si + 8 * q);
                    __m256i zi = zi_imp;
                    __m256 zf = zf_imp;
                    if (a->zeros) zero_point(_mm256_loadu_ps(a->zeros + si + 8 * q), MIR, BITS, &zi, &zf);
                    UNROLL for (int r = 0; r < MT; r++) {
                        const __m256 hs = NSET == 2 ? _mm256_fmadd_ps(acc[r][bi][1][q], four, acc[r][bi][0][q])
                                                    : acc[r][bi][0][q];
                        const __m256 c = a->zeros ? _mm256_fmadd_ps(zf, s1[r], zero_lookup(zv[r], zi, BITS))
                                                  : zv[r][0];
                        float *o = oacc[r][bi] + 8 * q;
                        _mm256_store_ps(o, _mm256_fmadd_ps(s, _mm256_sub_ps(hs, c), _mm256_load_ps(o)));
                    }
                }
        }
    }
}

/* Rows m0..m0+MT-1 of out for weight blocks blk0..blk0+NBK-1; SPLIT: one pass per row half,
 * so that two tokens' two accumulator sets (B = 3..4) fit in 8 ymm. */
ALWAYS_INLINE void tile_f32(const lutrt_mma_args *a, int m0, int blk0, const float *zbuf, const int MT,
                            const int NBK, const int MIR, const int BITS, const int SMODE,
                            const int SPLIT) {
    float oacc[2][2][32] __attribute__((aligned(32)));
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++)
            UNROLL for (int q = 0; q < 32; q += 8) _mm256_store_ps(oacc[r][bi] + q, _mm256_setzero_ps());
    if (SPLIT) {
        tile_pass(a, m0, blk0, zbuf, oacc, MT, NBK, MIR, BITS, SMODE, 0, 0);
        tile_pass(a, m0, blk0, zbuf, oacc, MT, NBK, MIR, BITS, SMODE, 1, 1);
    } else {
        tile_pass(a, m0, blk0, zbuf, oacc, MT, NBK, MIR, BITS, SMODE, 0, 1);
    }
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const int n0 = (blk0 + bi) * LUTRT_BLOCK_N, rows = min_int(LUTRT_BLOCK_N, a->N - n0);
            memcpy(a->out + (size_t)(m0 + r) * a->N + n0, oacc[r][bi], (size_t)rows * sizeof(float));
        }
}

/* The zero-point terms of tokens m0..m0+mt-1 (mt <= 4) for every weight group into zbuf
 * (S_LOAD above): the same sums, in the same order, as an S_OWN tile forms beside its lookups,
 * the tokens' chains interleaved. */
ALWAYS_INLINE void zero_terms_pass(const lutrt_mma_args *a, int m0, int mt, float *zbuf,
                                   const int MIR, const int BITS) {
    const int NG = a->NG, E = MIR ? 8 : 16, full = MIR ? 0 : 15;
    const float *tb[4];
    UNROLL for (int r = 0; r < 4; r++) /* rows past mt repeat the last one (not stored) */
        tb[r] = (const float *)((const uint8_t *)a->tables + (size_t)(m0 + min_int(r, mt - 1)) * a->row_bytes) + full;
    __m256i zi_imp = _mm256_setzero_si256();
    __m256 zf_imp = _mm256_setzero_ps();
    if (!a->zeros) zero_point(_mm256_set1_ps(a->zimp), MIR, BITS, &zi_imp, &zf_imp);
    for (int g = 0; g < NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
        __m128 sums[4];
        UNROLL for (int r = 0; r < 4; r++) sums[r] = _mm_setzero_ps();
        for (int j = j0; j < j1; j++)
            UNROLL for (int r = 0; r < 4; r++) sums[r] = sums_step(sums[r], tb[r] + (size_t)j * E, BITS);
        UNROLL for (int r = 0; r < 4; r++) {
            if (r >= mt) break;
            __m256 zv[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, s1;
            zero_terms(a, sums[r], zi_imp, zf_imp, MIR, BITS, zv, &s1);
            float *zr = zbuf + (size_t)r * ZSTRIDE(NG);
            _mm256_storeu_ps(zr + (size_t)g * 16, zv[0]);
            _mm256_storeu_ps(zr + (size_t)g * 16 + 8, zv[1]);
            zr[(size_t)NG * 16 + g] = _mm_cvtss_f32(_mm256_castps256_ps128(s1));
        }
    }
}

typedef void (*tile_fn)(const lutrt_mma_args *, int, int, const float *);
typedef void (*pass_fn)(const lutrt_mma_args *, int, int, float *);

/* Shapes (tokens x blocks): GEMV 1xV and 1x1 summing their own S (V = 2 for B <= 2, 1 for
 * B = 3..4: two accumulator sets), GEMM 2x1 and 1x1 reading them (2x1 in two half passes for
 * B = 3..4). */
#define TILE(MT, NBK, SM, SPLIT, MIR, BITS)                                          \
    static __attribute__((noinline)) void tile_##MT##x##NBK##_##SM##_##MIR##_##BITS( \
        const lutrt_mma_args *a, int m0, int blk0, const float *zbuf) {              \
        tile_f32(a, m0, blk0, zbuf, MT, NBK, MIR, BITS, SM, SPLIT);                  \
    }
#define TILES(MIR, BITS, V)                                                          \
    TILE(1, V, S_OWN, 0, MIR, BITS) TILE(2, 1, S_LOAD, (BITS > 2), MIR, BITS)        \
    TILE(1, 1, S_LOAD, 0, MIR, BITS)                                                 \
    static __attribute__((noinline)) void pass_##MIR##_##BITS(const lutrt_mma_args *a, int m0, \
                                                              int mt, float *zbuf) { \
        zero_terms_pass(a, m0, mt, zbuf, MIR, BITS);                                 \
    }
#define SHAPES(MIR, BITS, V)                                                         \
    {tile_1x##V##_S_OWN_##MIR##_##BITS, tile_1x1_S_OWN_##MIR##_##BITS,                \
     tile_2x1_S_LOAD_##MIR##_##BITS, tile_1x1_S_LOAD_##MIR##_##BITS}
TILES(0, 1, 2) TILES(0, 2, 2) TILES(0, 3, 1) TILES(0, 4, 1)
TILES(1, 1, 2) TILES(1, 2, 2) TILES(1, 3, 1) TILES(1, 4, 1)
TILE(1, 1, S_OWN, 0, 0, 1) TILE(1, 1, S_OWN, 0, 0, 2) TILE(1, 1, S_OWN, 0, 1, 1) TILE(1, 1, S_OWN, 0, 1, 2)
static const tile_fn tiles[2][4][4] = {
    {SHAPES(0, 1, 2), SHAPES(0, 2, 2), SHAPES(0, 3, 1), SHAPES(0, 4, 1)},
    {SHAPES(1, 1, 2), SHAPES(1, 2, 2), SHAPES(1, 3, 1), SHAPES(1, 4, 1)},
};
static const pass_fn passes[2][4] = {{pass_0_1, pass_0_2, pass_0_3, pass_0_4},
                                     {pass_1_1, pass_1_2, pass_1_3, pass_1_4}};

/* The blocks [b0, b1) of one thread: GEMV V blocks at a time; GEMM 2 tokens x 1 block over
 * L2-sized super-blocks, after one zero_terms_pass per 4 tokens and super-block. Bit widths
 * above 4 (other packed layouts) go to the scalar kernel. */
void lutrt_mma_f32_avx2(const lutrt_mma_args *a, int b0, int b1) {
    if (a->bits < 1 || a->bits > 4) {
        lutrt_mma_f32_ref(a, b0, b1);
        return;
    }
    const tile_fn *t = tiles[a->mirrored][a->bits - 1];
    const tile_fn t1xv = t[0], t1x1 = t[1], t2x1 = t[2], t1x1_load = t[3];
    const pass_fn pass = passes[a->mirrored][a->bits - 1];
    const int V = a->bits <= 2 ? 2 : 1;
    if (a->M == 1) {
        int blk = b0;
        for (; blk + V <= b1; blk += V) t1xv(a, 0, blk, NULL);
        if (blk < b1) t1x1(a, 0, blk, NULL);
        return;
    }
    float zstack[4096], *zbuf = zstack;
    if (4 * ZSTRIDE(a->NG) > sizeof zstack / sizeof *zstack) {
        zbuf = malloc(4 * ZSTRIDE(a->NG) * sizeof(float));
        if (!zbuf) {
            lutrt_mma_f32_ref(a, b0, b1);
            return;
        }
    }
    const int super = lutrt_super_blocks(a);
    for (int sb = b0; sb < b1; sb += super) {
        const int se = min_int(b1, sb + super);
        for (int m0 = 0; m0 < a->M; m0 += 4) {
            const int mt = min_int(4, a->M - m0);
            pass(a, m0, mt, zbuf);
            int r = 0;
            for (; r + 2 <= mt; r += 2)
                for (int blk = sb; blk < se; blk++) t2x1(a, m0 + r, blk, zbuf + r * ZSTRIDE(a->NG));
            if (r < mt)
                for (int blk = sb; blk < se; blk++) t1x1_load(a, m0 + r, blk, zbuf + r * ZSTRIDE(a->NG));
        }
    }
    if (zbuf != zstack) free(zbuf);
}
