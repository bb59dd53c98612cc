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
 * Arithmetic (f32; lutrt_mma_f32_ref forms the same terms per table in double, so the two agree
 * up to float32 rounding, not bit for bit). Per (row, table) each plane pair p gives
 * v = L(c_2p) + 2 L(c_2p+1) (one FMA; an odd last plane: v = L(c_B-1)), and each pair keeps its
 * own accumulator Q_p = sum_j v over the tables of a weight group (B <= 2: one, B = 3..4: two).
 * Each token also sums its tables' all-ones entries F_j (lutrt.h: t[15], mirrored -t[0]) in
 * the same order: S1 = sum_j F_j and S3 = sum_j round(3 F_j). At the end of the group
 *   out += s * (h - C),   h = Q_0 + 4 Q_1,   C = Z[zi] + zf * S1,
 * zi the nearest integer zero point (mirrored: of z = (z' + 2^B - 1) / 2, z' the symmetrized
 * one; zero_point), zf the rest of z (mirrored: of z'), and Z[l] the h of W = 0 with zero point
 * l: when every code equals an integer zero point l, plane b of every table looks up entry 0
 * (= 0) or 15 (= F_j) (mirrored: -F_j or +F_j) by bit b of l, so each v is one of 0, F_j, 2 F_j,
 * round(3 F_j) (mirrored: +-F_j, +-round(3 F_j)), fixed by two bits of l, and Q_p is exactly
 * the matching one of 0, S1, 2 S1, S3 (mirrored +-S1, +-S3). Z (16 lanes per token and group,
 * zero_vector) applies the same float operations to those, so h == Z[zi], zf == 0 and the
 * output is exactly 0 (W = 0 gives 0, like every other kernel); in general C ~= z S1, the
 * zero-point term taken from the tables' own entries. A non-integer, negative or too large z
 * just leaves a larger zf. The precompute's group sums (`sums`) are not read.
 *
 * Cost: 16 lookups = one vpermps (port 5) + one FMA or add, as many as a B-plane Horner sum
 * per table; the widening is one more port-5 uop per 64 codes. Per table and token, S1 and S3
 * take one broadcast + mul + add (xmm): GEMV tiles sum them beside their lookups (a GEMV chunk
 * of work is one tile), GEMM tiles read them from one zero_terms_pass per 4 tokens and
 * super-block. Per weight group and 16 rows: zi and zf (3-4 ops, shared by the tile's tokens;
 * none with the scalar zimp), then per token vpermps + 2-3 FMA + sub; per token and group,
 * ~6 ops build Z. GEMV tiles take 4 blocks (16 accumulators at B = 3..4), GEMM tiles 4 tokens x
 * 2 blocks for B <= 2, 4 x 1 for B = 3..4 (16 accumulators; no spills in the table loop).
 * Against the former kernel (Horner sum per table, z * sums per group; N = K = 4096, 1 thread,
 * Xeon, medians of 60 interleaved calls, groups of 32 / 128, mirrored + zimp or plain +
 * explicit zeros): 4-bit GEMV +1..4%, 2-bit GEMV +0..6% (the S sums are a larger share of
 * fewer lookups), 4 tokens +3..11% (most with explicit zeros and groups of 32: zi, zf and Z
 * per group). Compiled for real only with -mavx512f -mavx512bw (build.py, "*_avx512.c");
 * otherwise lutrt_mma_f32_avx512_ptr is NULL and dispatch.c keeps the AVX2 (or scalar) f32
 * kernel — also in SIMDe emulation builds, which this file does not support.
 */
#include "lutrt_internal.h"

#if defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#define LUTRT_HAVE_AVX512 1
#endif

#ifdef LUTRT_HAVE_AVX512
#include <stdlib.h>
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

/* Z (see the header) from s = [sum t[full], sum round(3 t[full])] (raw entries: mirrored
 * t[0] = -F, so s = [-S1, -S3] there). Lane l: the low plane pair of l (bits 0, 1) gives
 * plain [0, S1, 2 S1, S3][q], mirrored [-S3, -S1, S1, S3][q] — pair(q) = coef * s[idx]; a single
 * plane (B = 1; the odd plane 2 of B = 3) plain [0, S1][q], mirrored [-S1, S1][q]; B >= 3 adds
 * 4 x the entry of bits 2, 3 (exactly what h = Q_0 + 4 Q_1 does with the accumulators). */
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
#define LANES16(f, ...)                                                                   \
    f(__VA_ARGS__, 0), f(__VA_ARGS__, 1), f(__VA_ARGS__, 2), f(__VA_ARGS__, 3),           \
    f(__VA_ARGS__, 4), f(__VA_ARGS__, 5), f(__VA_ARGS__, 6), f(__VA_ARGS__, 7),           \
    f(__VA_ARGS__, 8), f(__VA_ARGS__, 9), f(__VA_ARGS__, 10), f(__VA_ARGS__, 11),         \
    f(__VA_ARGS__, 12), f(__VA_ARGS__, 13), f(__VA_ARGS__, 14), f(__VA_ARGS__, 15)
#define SETR_EPI32(...) _mm512_setr_epi32(__VA_ARGS__) /* (expands LANES16 first) */
#define SETR_PS(...) _mm512_setr_ps(__VA_ARGS__)

ALWAYS_INLINE __m512 zero_vector(__m128 sums, const int MIR, const int BITS) {
    const __m512 s = _mm512_castps128_ps512(sums); /* lanes 2.. undefined, never indexed */
    __m512 z = _mm512_mul_ps(_mm512_permutexvar_ps(SETR_EPI32(LANES16(zidx, MIR, BITS, 0)), s),
                             SETR_PS(LANES16(zcoef, MIR, BITS, 0)));
    if (BITS >= 3) /* every product here is exact: the operation order is what matters */
        z = _mm512_fmadd_ps(_mm512_permutexvar_ps(SETR_EPI32(LANES16(zidx, MIR, BITS, 1)), s),
                            SETR_PS(LANES16(zcoef, MIR, BITS, 1)), z);
    return z;
}

/* The zero point's integer part as a lane index of Z and its rest: zi, whose low 4 bits (all
 * vpermps reads) are round(z) mod 16 (mirrored: of z = (z' + 2^B - 1) / 2), read as the bits of
 * z + 1.5 * 2^23 (round to nearest even; bits 0..3 of the mantissa are those of round(z) for
 * |z| < 2^22); l = lane zi of [0, 1, .., 2^B - 1, 0, 1, ..] (Z has the same period 2^B: it
 * depends on the low B bits of the lane only), and zf = z - l (mirrored: z' - (2 l + 1 - 2^B)).
 * An integer zero point in range gives l = z, zf = 0; any other z just a larger zf (NaN: NaN). */
static inline float zlane(int bits, int l) { return (float)(l & ((1 << bits) - 1)); }
ALWAYS_INLINE void zero_point(__m512 z, const int MIR, const int BITS, __m512i *zi, __m512 *zf) {
    const __m512 magic = _mm512_set1_ps(0x1.8p23f), lanes = SETR_PS(LANES16(zlane, BITS));
    if (MIR) {
        const __m512 u = _mm512_add_ps(z, _mm512_set1_ps((float)((1 << BITS) - 1))); /* 2z */
        *zi = _mm512_castps_si512(_mm512_fmadd_ps(u, _mm512_set1_ps(0.5f), magic));
        *zf = _mm512_fnmadd_ps(_mm512_permutexvar_ps(*zi, lanes), _mm512_set1_ps(2.0f), u);
    } else {
        *zi = _mm512_castps_si512(_mm512_add_ps(z, magic));
        *zf = _mm512_sub_ps(z, _mm512_permutexvar_ps(*zi, lanes));
    }
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

/* A token's zero-point terms of one weight group from its sums: *zv = Z, or C itself when one
 * zero point (zimp: zi_imp, zf_imp) serves every row, and *s1 = S1 in every lane. */
ALWAYS_INLINE void zero_terms(const lutrt_mma_args *a, __m128 sums, __m512i zi_imp, __m512 zf_imp,
                              const int MIR, const int BITS, __m512 *zv, __m512 *s1) {
    *zv = zero_vector(sums, MIR, BITS);
    *s1 = _mm512_broadcastss_ps(sums);
    if (MIR) *s1 = _mm512_sub_ps(_mm512_setzero_ps(), *s1);
    if (!a->zeros) *zv = _mm512_fmadd_ps(zf_imp, *s1, _mm512_permutexvar_ps(zi_imp, *zv));
}

/* Where a tile gets each token's zero-point terms: it sums the all-ones entries beside its
 * lookups (S_OWN: GEMV, one tile per chunk of work), or reads what zero_terms_pass wrote for
 * the GEMM tiles of a super-block (S_LOAD) from zbuf: per token ZSTRIDE(NG) floats, the 16
 * lanes of Z (or C) of each group, then S1 of each group. */
enum { S_OWN, S_LOAD };
#define ZSTRIDE(NG) ((size_t)(NG) * 17)

/* Rows m0..m0+MT-1 of out for weight blocks blk0..blk0+NBK-1; MT, NBK, MIR, BITS and SMODE are
 * constants in every instantiation, so the accumulators live in registers. */
ALWAYS_INLINE void tile_f32(const lutrt_mma_args *a, int m0, int blk0, const float *zbuf, const int MT,
                            const int NBK, const int MIR, const int BITS, const int SMODE) {
    const int J = a->J, NG = a->NG, E = MIR ? 8 : 16, full = MIR ? 0 : 15;
    const int npairs = BITS >> 1, odd = BITS & 1, NSET = npairs + odd;
    const size_t chunk = a->chunk;
    /* odd B: rows 0..15 are words 0..7 >> (0, 4), rows 16..31 the same words >> (8, 12) */
    const __m512i sh_lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    const __m512i sh_hi = _mm512_setr_epi32(8, 8, 8, 8, 8, 8, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12);
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f);

    const uint8_t *wb[4];
    const float *tb[4];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++)
        tb[r] = (const float *)((const uint8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes);

    float oacc[4][4][32] __attribute__((aligned(64)));
    UNROLL for (int r = 0; r < MT; r++)
        UNROLL for (int bi = 0; bi < NBK; bi++)
            UNROLL for (int q = 0; q < 32; q += 16) _mm512_store_ps(oacc[r][bi] + q, _mm512_setzero_ps());

    __m512i zi_imp = _mm512_setzero_si512();
    __m512 zf_imp = _mm512_setzero_ps();
    if (!a->zeros) zero_point(_mm512_set1_ps(a->zimp), MIR, BITS, &zi_imp, &zf_imp);

    for (int g = 0; g < NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        __m512 acc[4][4][2][2]; /* [token][block][pair][rows 0..15, 16..31] */
        __m128 sums[4];         /* [sum t[full], sum round(3 t[full])] per token */
        UNROLL for (int r = 0; r < MT; r++) {
            sums[r] = _mm_setzero_ps();
            UNROLL for (int bi = 0; bi < NBK; bi++)
                UNROLL for (int p = 0; p < NSET; p++) acc[r][bi][p][0] = acc[r][bi][p][1] = _mm512_setzero_ps();
        }
        for (int j = j0; j < j1; j++) {
            __m512 tab[4];
            UNROLL for (int r = 0; r < MT; r++) tab[r] = load_table(tb[r] + (size_t)j * E, MIR);
            if (SMODE == S_OWN)
                UNROLL for (int r = 0; r < MT; r++) sums[r] = sums_step(sums[r], tb[r] + (size_t)j * E + full, BITS);
            UNROLL for (int bi = 0; bi < NBK; bi++) {
                const uint8_t *p = wb[bi] + (size_t)j * chunk;
                UNROLL for (int pp = 0; pp < npairs; pp++) {
                    const __m512i i0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 32 * pp)));
                    const __m512i i1 = _mm512_srli_epi32(i0, 4), i2 = _mm512_srli_epi32(i0, 8);
                    const __m512i i3 = _mm512_srli_epi32(i0, 12);
                    UNROLL for (int r = 0; r < MT; r++) {
                        /* v = L(plane 2p) + 2 L(plane 2p+1): 2 L is exact, one rounding */
                        const __m512 v0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i2, tab[r]), two,
                                                          _mm512_permutexvar_ps(i0, tab[r]));
                        const __m512 v1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i3, tab[r]), two,
                                                          _mm512_permutexvar_ps(i1, tab[r]));
                        acc[r][bi][pp][0] = _mm512_add_ps(acc[r][bi][pp][0], v0);
                        acc[r][bi][pp][1] = _mm512_add_ps(acc[r][bi][pp][1], v1);
                    }
                }
                if (odd) {
                    const __m512i w = _mm512_cvtepu16_epi32(
                        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 32 * npairs))));
                    const __m512i lo = _mm512_srlv_epi32(w, sh_lo), hi = _mm512_srlv_epi32(w, sh_hi);
                    UNROLL for (int r = 0; r < MT; r++) {
                        acc[r][bi][npairs][0] = _mm512_add_ps(acc[r][bi][npairs][0], _mm512_permutexvar_ps(lo, tab[r]));
                        acc[r][bi][npairs][1] = _mm512_add_ps(acc[r][bi][npairs][1], _mm512_permutexvar_ps(hi, tab[r]));
                    }
                }
            }
        }
        /* end of a weight group: out += s * (h - C) (header) */
        __m512 zv[4], s1[4];
        UNROLL for (int r = 0; r < MT; r++) {
            if (SMODE == S_OWN) {
                zero_terms(a, sums[r], zi_imp, zf_imp, MIR, BITS, &zv[r], &s1[r]);
            } else {
                const float *zr = zbuf + (size_t)r * ZSTRIDE(NG);
                zv[r] = _mm512_loadu_ps(zr + (size_t)g * 16);
                s1[r] = _mm512_set1_ps(zr[(size_t)NG * 16 + g]);
            }
        }
        UNROLL for (int bi = 0; bi < NBK; bi++) {
            const size_t si = ((size_t)(blk0 + bi) * NG + g) * LUTRT_BLOCK_N;
            UNROLL for (int h = 0; h < 2; h++) {
                const __m512 s = _mm512_loadu_ps(a->scales + si + 16 * h);
                __m512i zi = zi_imp;
                __m512 zf = zf_imp;
                if (a->zeros) zero_point(_mm512_loadu_ps(a->zeros + si + 16 * h), MIR, BITS, &zi, &zf);
                UNROLL for (int r = 0; r < MT; r++) {
                    const __m512 hs = NSET == 2 ? _mm512_fmadd_ps(acc[r][bi][1][h], four, acc[r][bi][0][h])
                                                : acc[r][bi][0][h];
                    const __m512 c = a->zeros ? _mm512_fmadd_ps(zf, s1[r], _mm512_permutexvar_ps(zi, zv[r]))
                                              : zv[r];
                    float *o = oacc[r][bi] + 16 * h;
                    _mm512_store_ps(o, _mm512_fmadd_ps(s, _mm512_sub_ps(hs, c), _mm512_load_ps(o)));
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

/* The zero-point terms of tokens m0..m0+3 for every weight group into zbuf (S_LOAD above):
 * the same sums, in the same order, as an S_OWN tile forms beside its lookups, the four tokens'
 * chains interleaved. */
ALWAYS_INLINE void zero_terms_pass(const lutrt_mma_args *a, int m0, float *zbuf, const int MIR,
                                   const int BITS) {
    const int NG = a->NG, E = MIR ? 8 : 16, full = MIR ? 0 : 15;
    const float *tb[4];
    UNROLL for (int r = 0; r < 4; r++)
        tb[r] = (const float *)((const uint8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes) + full;
    __m512i zi_imp = _mm512_setzero_si512();
    __m512 zf_imp = _mm512_setzero_ps();
    if (!a->zeros) zero_point(_mm512_set1_ps(a->zimp), MIR, BITS, &zi_imp, &zf_imp);
    for (int g = 0; g < NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
        __m128 sums[4];
        UNROLL for (int r = 0; r < 4; r++) sums[r] = _mm_setzero_ps();
        for (int j = j0; j < j1; j++)
            UNROLL for (int r = 0; r < 4; r++) sums[r] = sums_step(sums[r], tb[r] + (size_t)j * E, BITS);
        UNROLL for (int r = 0; r < 4; r++) {
            __m512 zv, s1;
            zero_terms(a, sums[r], zi_imp, zf_imp, MIR, BITS, &zv, &s1);
            float *zr = zbuf + (size_t)r * ZSTRIDE(NG);
            _mm512_storeu_ps(zr + (size_t)g * 16, zv);
            zr[(size_t)NG * 16 + g] = _mm_cvtss_f32(_mm512_castps512_ps128(s1));
        }
    }
}

typedef void (*tile_fn)(const lutrt_mma_args *, int, int, const float *);
typedef void (*pass_fn)(const lutrt_mma_args *, int, float *);

/* Shapes (tokens x blocks): 1x4, 1x2, 1x1 summing their own S (GEMV and leftover tokens), and
 * the GEMM tiles 4xW, 4x1 reading them; W = 2 for B <= 2, 1 for B = 3..4 (two accumulator
 * sets: 16 zmm at 4 x 1). */
#define TILE(MT, NBK, SM, MIR, BITS)                                                 \
    static __attribute__((noinline)) void tile_##MT##x##NBK##_##SM##_##MIR##_##BITS( \
        const lutrt_mma_args *a, int m0, int blk0, const float *zbuf) {              \
        tile_f32(a, m0, blk0, zbuf, MT, NBK, MIR, BITS, SM);                         \
    }
#define TILES1(MIR, BITS)                                                            \
    TILE(1, 4, S_OWN, MIR, BITS) TILE(1, 2, S_OWN, MIR, BITS) TILE(1, 1, S_OWN, MIR, BITS) \
    TILE(4, 1, S_LOAD, MIR, BITS)                                                    \
    static __attribute__((noinline)) void pass_##MIR##_##BITS(const lutrt_mma_args *a, int m0, \
                                                              float *zbuf) {         \
        zero_terms_pass(a, m0, zbuf, MIR, BITS);                                     \
    }
#define TILES2(MIR, BITS) TILE(4, 2, S_LOAD, MIR, BITS)
#define SHAPES(MIR, BITS, W)                                                                   \
    {tile_1x4_S_OWN_##MIR##_##BITS, tile_1x2_S_OWN_##MIR##_##BITS, tile_1x1_S_OWN_##MIR##_##BITS, \
     tile_4x##W##_S_LOAD_##MIR##_##BITS, tile_4x1_S_LOAD_##MIR##_##BITS}
TILES1(0, 1) TILES1(0, 2) TILES1(0, 3) TILES1(0, 4) TILES2(0, 1) TILES2(0, 2)
TILES1(1, 1) TILES1(1, 2) TILES1(1, 3) TILES1(1, 4) TILES2(1, 1) TILES2(1, 2)
static const tile_fn tiles[2][4][5] = {
    {SHAPES(0, 1, 2), SHAPES(0, 2, 2), SHAPES(0, 3, 1), SHAPES(0, 4, 1)},
    {SHAPES(1, 1, 2), SHAPES(1, 2, 2), SHAPES(1, 3, 1), SHAPES(1, 4, 1)},
};
static const pass_fn passes[2][4] = {{pass_0_1, pass_0_2, pass_0_3, pass_0_4},
                                     {pass_1_1, pass_1_2, pass_1_3, pass_1_4}};

/* The blocks [b0, b1) of one thread, walked like lmma_avx2.c: GEMV 4 blocks (4 memory
 * streams) at a time; GEMM 4 tokens x W blocks over L2-sized super-blocks, after one
 * zero_terms_pass per 4 tokens and super-block. Bit widths above 4 (other packed layouts) go
 * to the scalar kernel. */
static void mma_f32_avx512(const lutrt_mma_args *a, int b0, int b1) {
    if (a->bits < 1 || a->bits > 4) {
        lutrt_mma_f32_ref(a, b0, b1);
        return;
    }
    const tile_fn *t = tiles[a->mirrored][a->bits - 1];
    const tile_fn t1x4 = t[0], t1x2 = t[1], t1x1 = t[2], t4xw = t[3], t4x1 = t[4];
    const pass_fn pass = passes[a->mirrored][a->bits - 1];
    const int W = a->bits <= 2 ? 2 : 1;
    if (a->M == 1) {
        int blk = b0;
        for (; blk + 4 <= b1; blk += 4) t1x4(a, 0, blk, NULL);
        for (; blk + 2 <= b1; blk += 2) t1x2(a, 0, blk, NULL);
        for (; blk < b1; blk++) t1x1(a, 0, blk, NULL);
        return;
    }
    float zstack[4096], *zbuf = zstack;
    if (a->M >= 4 && 4 * ZSTRIDE(a->NG) > sizeof zstack / sizeof *zstack) {
        zbuf = malloc(4 * ZSTRIDE(a->NG) * sizeof(float));
        if (!zbuf) {
            lutrt_mma_f32_ref(a, b0, b1);
            return;
        }
    }
    const int super = lutrt_super_blocks(a);
    for (int sb = b0; sb < b1; sb += super) {
        const int se = min_int(b1, sb + super);
        int m = 0;
        for (; m + 4 <= a->M; m += 4) {
            pass(a, m, zbuf);
            int blk = sb;
            for (; blk + W <= se; blk += W) t4xw(a, m, blk, zbuf);
            if (blk < se) t4x1(a, m, blk, zbuf);
        }
        for (; m < a->M; m++) {
            int blk = sb;
            for (; blk + 2 <= se; blk += 2) t1x2(a, m, blk, NULL);
            if (blk < se) t1x1(a, m, blk, NULL);
        }
    }
    if (zbuf != zstack) free(zbuf);
}

const lutrt_mma_fn lutrt_mma_f32_avx512_ptr = mma_f32_avx512;
#else
const lutrt_mma_fn lutrt_mma_f32_avx512_ptr = 0;
#endif
