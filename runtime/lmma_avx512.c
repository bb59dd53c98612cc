/* lmma_avx512.c — lut.mma on int8 tables with AVX-512BW zmm vpshufb.
 *
 * Same packed layout and arithmetic as lmma_avx2.c (read its header for the int16 bound and
 * the two plane-nibble accumulators of B > 4): a
 * zmm holds the 32-byte chunks of two weight blocks side by side, so every instruction covers
 * 64 weight rows; the table of row m is broadcast to all four 128-bit lanes. Compiled for real
 * only with -mavx512f -mavx512bw (build.py); otherwise lutrt_mma_i8_avx512_ptr is NULL and
 * dispatch.c never offers the kernel. Test builds may define LUTRT_AVX512_SIMDE to run this
 * exact code through SIMDe's AVX-512 emulation on CPUs without AVX-512. lmma_avx512vnni.c
 * compiles this file again with -mavx512vnni (lutrt_mma_i8_avx512vnni_ptr), which the
 * "avx512" kernel uses on CPUs that have VNNI: per-table scales then sum with vpdpwssd.
 */
#include "lutrt_internal.h"

#if defined(LUTRT_LMMA_AVX512_VNNI) /* lmma_avx512vnni.c: this file again, with AVX512-VNNI */
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#define LUTRT_HAVE_AVX512 1
#endif
#define LMMA_AVX512_PTR lutrt_mma_i8_avx512vnni_ptr
#elif defined(LUTRT_AVX512_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define LUTRT_HAVE_AVX512 1
const int lutrt_avx512_emulated = 1;
/* the two conversions SIMDe 0.7 lacks, built from 256-bit halves */
static inline __m512i emu_cvtepi16_epi32(__m256i a) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a))),
                              _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)), 1);
}
static inline __m512 emu_cvtepi32_ps(__m512i a) {
    __m256 lo = _mm256_cvtepi32_ps(_mm512_castsi512_si256(a));
    __m256 hi = _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(a, 1));
    return _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(lo)),
                                                  _mm256_castps_si256(hi), 1));
}
#define _mm512_cvtepi16_epi32 emu_cvtepi16_epi32
#define _mm512_cvtepi32_ps emu_cvtepi32_ps
#define LMMA_AVX512_PTR lutrt_mma_i8_avx512_ptr
#elif defined(__AVX512BW__)
#include <immintrin.h>
#define LUTRT_HAVE_AVX512 1
const int lutrt_avx512_emulated = 0;
#define LMMA_AVX512_PTR lutrt_mma_i8_avx512_ptr
#else
const int lutrt_avx512_emulated = 0;
#define LMMA_AVX512_PTR lutrt_mma_i8_avx512_ptr
#endif

#ifdef LUTRT_HAVE_AVX512
#include <string.h>

#include "pt_zero_avx512.h"
#include "tile_io_avx512.h"

/* facc is written by the first scale group of each weight group before it is read; gcc cannot
 * see that through the js == j0 flag. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

static int min_int(int a, int b) { return a < b ? a : b; }

/* Table j of one row in all lanes; mirrored tables become [T8, -T8] per lane. */
ALWAYS_INLINE __m512i load_table(const int8_t *t, int mirrored) {
    if (mirrored) {
        int64_t v;
        memcpy(&v, t, 8);
        const __m512i x = _mm512_set1_epi64(v);
        /* bytes 8..15 of each 128-bit lane: -T8 (code c >= 8 looks up -T8[c & 7]) */
        return _mm512_mask_sub_epi8(x, (__mmask64)0xFF00FF00FF00FF00ull, _mm512_setzero_si512(), x);
    }
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t));
}

/* fa[0..15] (+)= ts * (acc[0..15] - za * S) (block a), fb[0..15] (+)= ts * (acc[16..31] -
 * zb * S) (block b); the first scale group of a weight group stores. */
ALWAYS_INLINE void flush32(float *fa, float *fb, __m512i acc, __m512 ts, __m512 S, __m512 za,
                           __m512 zb, int first) {
    __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(acc)));
    __m512 b = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(acc, 1)));
    a = _mm512_fnmadd_ps(za, S, a); /* - z * S[m, t]: the zero point against the same entries */
    b = _mm512_fnmadd_ps(zb, S, b);
    if (first) {
        _mm512_store_ps(fa, _mm512_mul_ps(a, ts));
        _mm512_store_ps(fb, _mm512_mul_ps(b, ts));
    } else {
        _mm512_store_ps(fa, _mm512_fmadd_ps(a, ts, _mm512_load_ps(fa)));
        _mm512_store_ps(fb, _mm512_fmadd_ps(b, ts, _mm512_load_ps(fb)));
    }
}

/* B > 4: fa/fb (+)= ts * (lo + 16 hi), the two plane-nibble accumulators widened to int32. */
ALWAYS_INLINE void flush32_wide(float *fa, float *fb, __m512i lo, __m512i hi, __m512 ts, __m512 S,
                                __m512 za, __m512 zb, int first) {
    const __m512i la = _mm512_add_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(lo)),
                                        _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(hi)), 4));
    const __m512i lb = _mm512_add_epi32(_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(lo, 1)),
                                        _mm512_slli_epi32(_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(hi, 1)), 4));
    const __m512 a = _mm512_fnmadd_ps(za, S, _mm512_cvtepi32_ps(la));
    const __m512 b = _mm512_fnmadd_ps(zb, S, _mm512_cvtepi32_ps(lb));
    if (first) {
        _mm512_store_ps(fa, _mm512_mul_ps(a, ts));
        _mm512_store_ps(fb, _mm512_mul_ps(b, ts));
    } else {
        _mm512_store_ps(fa, _mm512_fmadd_ps(a, ts, _mm512_load_ps(fa)));
        _mm512_store_ps(fb, _mm512_fmadd_ps(b, ts, _mm512_load_ps(fb)));
    }
}

/* The odd last plane's 16-byte chunks of blocks a and b as vpshufb indices: lanes [a, a, b, b],
 * then low nibbles in lanes 0, 2 and high ones in 1, 3. */
ALWAYS_INLINE __m512i odd_plane_index(const uint8_t *pa, const uint8_t *pb, __m512i m0f) {
    const __m512i va = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)pa));
    const __m512i vb = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)pb));
    const __m512i v = _mm512_mask_blend_epi64(0xF0, va, vb);
    return _mm512_mask_blend_epi64(0xCC, _mm512_and_si512(v, m0f),
                                   _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f));
}

/* Rows m0..m0+MT-1 for blocks blk0..blk0+2*NP-1; acc[r][pi][h][half] as in lmma_avx2.c. */
ALWAYS_INLINE void tile_i8(const lutrt_mma_args *a, int m0, int blk0, const int MT, const int NP,
                           const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, npairs = BITS >> 1, odd = BITS & 1;
    const int NBK = 2 * NP, NH = BITS > 4 ? 2 : 1, hlast = (BITS - 1) >> 2;
    const size_t chunk = a->chunk;
    const __m512i m0f = _mm512_set1_epi8(0x0f);
    const __m512i cpair0 = _mm512_set1_epi16(0x0201), cpair1 = _mm512_set1_epi16(0x0804);
    const int wlast = 1 << ((BITS - 1) & 3);
    const __m512i ceven = _mm512_set1_epi16((short)wlast), codd = _mm512_set1_epi16((short)(wlast << 8));

    const uint8_t *wb[4];
    const int8_t *tb[2];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++) tb[r] = (const int8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes;

    float facc[2][4][32] __attribute__((aligned(64)));
    float oacc[2][4][32] __attribute__((aligned(64)));
    lutrt_tile_zero(MT, NBK, oacc);

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        for (int js = j0, t = j0 / a->jt; js < j1; js += a->jt, t++) {
            const int je = min_int(j1, js + a->jt);
            __m512i acc[2][2][2][2];
            UNROLL for (int r = 0; r < MT; r++)
                UNROLL for (int pi = 0; pi < NP; pi++)
                    UNROLL for (int h = 0; h < NH; h++)
                        acc[r][pi][h][0] = acc[r][pi][h][1] = _mm512_setzero_si512();
            for (int j = js; j < je; j++) {
                __m512i tab[2];
                UNROLL for (int r = 0; r < MT; r++) tab[r] = load_table(tb[r] + (size_t)j * E, MIR);
                UNROLL for (int pi = 0; pi < NP; pi++) {
                    const uint8_t *pa = wb[2 * pi] + (size_t)j * chunk;
                    const uint8_t *pb = wb[2 * pi + 1] + (size_t)j * chunk;
                    if (MT == 1) {
                        lutrt_gemv_prefetch(pa, BITS * 16);
                        lutrt_gemv_prefetch(pb, BITS * 16);
                    }
                    UNROLL for (int pp = 0; pp < npairs; pp++) {
                        const __m512i v = _mm512_inserti64x4(
                            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(pa + 32 * pp))),
                            _mm256_loadu_si256((const __m256i *)(pb + 32 * pp)), 1);
                        const __m512i lo = _mm512_and_si512(v, m0f);
                        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
                        const __m512i c = (pp & 1) ? cpair1 : cpair0;
                        const int h = pp >> 1;
                        UNROLL for (int r = 0; r < MT; r++) {
                            acc[r][pi][h][0] = _mm512_add_epi16(
                                acc[r][pi][h][0], _mm512_maddubs_epi16(c, _mm512_shuffle_epi8(tab[r], lo)));
                            acc[r][pi][h][1] = _mm512_add_epi16(
                                acc[r][pi][h][1], _mm512_maddubs_epi16(c, _mm512_shuffle_epi8(tab[r], hi)));
                        }
                    }
                    if (odd) {
                        const __m512i idx = odd_plane_index(pa + 32 * npairs, pb + 32 * npairs, m0f);
                        UNROLL for (int r = 0; r < MT; r++) {
                            const __m512i x = _mm512_shuffle_epi8(tab[r], idx);
                            acc[r][pi][hlast][0] = _mm512_add_epi16(acc[r][pi][hlast][0], _mm512_maddubs_epi16(ceven, x));
                            acc[r][pi][hlast][1] = _mm512_add_epi16(acc[r][pi][hlast][1], _mm512_maddubs_epi16(codd, x));
                        }
                    }
                }
            }
            UNROLL for (int pi = 0; pi < NP; pi++) {
                __m512 z[2][2]; /* [block a / b][rows 0..15 / 16..31] */
                UNROLL for (int e = 0; e < 2; e++) {
                    const size_t si = ((size_t)(blk0 + 2 * pi + e) * a->NG + g) * LUTRT_BLOCK_N;
                    UNROLL for (int h = 0; h < 2; h++)
                        z[e][h] = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16 * h) : _mm512_set1_ps(a->zimp);
                }
                UNROLL for (int r = 0; r < MT; r++) {
                    const size_t mt = (size_t)(m0 + r) * a->NS + t;
                    const __m512 ts = _mm512_set1_ps(a->tscale[mt]), S = _mm512_set1_ps(a->tsum[mt]);
                    float *fa = facc[r][2 * pi], *fb = facc[r][2 * pi + 1];
                    if (NH == 2) {
                        flush32_wide(fa, fb, acc[r][pi][0][0], acc[r][pi][1][0], ts, S, z[0][0], z[1][0], js == j0);
                        flush32_wide(fa + 16, fb + 16, acc[r][pi][0][1], acc[r][pi][1][1], ts, S, z[0][1], z[1][1], js == j0);
                    } else {
                        flush32(fa, fb, acc[r][pi][0][0], ts, S, z[0][0], z[1][0], js == j0);
                        flush32(fa + 16, fb + 16, acc[r][pi][0][1], ts, S, z[0][1], z[1][1], js == j0);
                    }
                }
            }
        }
        lutrt_group_done(a, blk0, g, MT, NBK, facc, oacc);
    }
    lutrt_store_rows(a, m0, blk0, MT, NBK, oacc);
}

/* Lookup sums of table j (int16 words, no accumulation across tables): P[r][pi][0] rows
 * 0..15 of blocks a | b, P[r][pi][1] rows 16..31 (the word layout of acc in tile_i8). All B
 * planes go into one word, sum_b 2^b L_b: |P| <= 255 * 127 = 32385 even for B = 8, because
 * the word holds one table only; vpmaddubsw's u8 plane weights go up to (64, 128). */
ALWAYS_INLINE void lookups_pt(const lutrt_mma_args *a, const uint8_t *const *wb, const __m512i *tab,
                              size_t j, const int MT, const int NP, const int BITS,
                              __m512i P[2][2][2]) {
    const int npairs = BITS >> 1, odd = BITS & 1;
    const size_t chunk = a->chunk;
    const __m512i m0f = _mm512_set1_epi8(0x0f);
    const int wlast = 1 << (BITS - 1);
    const __m512i ceven = _mm512_set1_epi16((short)wlast), codd = _mm512_set1_epi16((short)(wlast << 8));
    UNROLL for (int pi = 0; pi < NP; pi++) {
        const uint8_t *pa = wb[2 * pi] + j * chunk, *pb = wb[2 * pi + 1] + j * chunk;
        UNROLL for (int pp = 0; pp < npairs; pp++) {
            const __m512i c = _mm512_set1_epi16((short)((1 << (2 * pp)) | (2 << (2 * pp)) << 8));
            const __m512i v = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(pa + 32 * pp))),
                _mm256_loadu_si256((const __m256i *)(pb + 32 * pp)), 1);
            const __m512i lo = _mm512_and_si512(v, m0f);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
            UNROLL for (int r = 0; r < MT; r++) {
                const __m512i x0 = _mm512_maddubs_epi16(c, _mm512_shuffle_epi8(tab[r], lo));
                const __m512i x1 = _mm512_maddubs_epi16(c, _mm512_shuffle_epi8(tab[r], hi));
                P[r][pi][0] = pp ? _mm512_add_epi16(P[r][pi][0], x0) : x0;
                P[r][pi][1] = pp ? _mm512_add_epi16(P[r][pi][1], x1) : x1;
            }
        }
        if (odd) {
            const __m512i idx = odd_plane_index(pa + 32 * npairs, pb + 32 * npairs, m0f);
            UNROLL for (int r = 0; r < MT; r++) {
                const __m512i x = _mm512_shuffle_epi8(tab[r], idx);
                const __m512i x0 = _mm512_maddubs_epi16(ceven, x), x1 = _mm512_maddubs_epi16(codd, x);
                P[r][pi][0] = npairs ? _mm512_add_epi16(P[r][pi][0], x0) : x0;
                P[r][pi][1] = npairs ? _mm512_add_epi16(P[r][pi][1], x1) : x1;
            }
        }
    }
}

/* Plane pair pp of table j, unweighted: S[r][pi][0] = the lookup bytes (plane 2pp, 2pp+1) of
 * rows 0..15 of blocks a | b as words, S[r][pi][1] rows 16..31 (per-table tiles with byte
 * multipliers). */
ALWAYS_INLINE void lookups_pair(const lutrt_mma_args *a, const uint8_t *const *wb, const __m512i *tab,
                                size_t j, const int MT, const int NP, int pp, __m512i S[2][2][2]) {
    const __m512i m0f = _mm512_set1_epi8(0x0f);
    UNROLL for (int pi = 0; pi < NP; pi++) {
        const uint8_t *pa = wb[2 * pi] + j * a->chunk + 32 * pp, *pb = wb[2 * pi + 1] + j * a->chunk + 32 * pp;
        const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)pa)),
                                             _mm256_loadu_si256((const __m256i *)pb), 1);
        const __m512i lo = _mm512_and_si512(v, m0f);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m0f);
        UNROLL for (int r = 0; r < MT; r++) {
            S[r][pi][0] = _mm512_shuffle_epi8(tab[r], lo);
            S[r][pi][1] = _mm512_shuffle_epi8(tab[r], hi);
        }
    }
}

/* acc + (u8 x s8 products, four per dword): vpdpbusd, AVX512-VNNI builds only */
#if defined(__AVX512VNNI__) && !defined(LUTRT_AVX512_SIMDE)
#define PT_BYTE_MULT 1
/* (inline asm: with the intrinsic gcc 12 copies every accumulator out and back around each
 * vpdpbusd of the per-table loop, 16 extra moves a step) */
ALWAYS_INLINE __m512i dot_bytes(__m512i acc, __m512i u8, __m512i s8) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
    return acc;
}
#else
#define PT_BYTE_MULT 0
/* never called: BYTES tiles exist only in VNNI builds (PT_BYTE_MULT) */
ALWAYS_INLINE __m512i dot_bytes(__m512i acc, __m512i u8, __m512i s8) { (void)u8; (void)s8; return acc; }
#endif

/* acc + (pairs of int16 products summed): one vpdpwssd with AVX512-VNNI */
ALWAYS_INLINE __m512i dot_words(__m512i acc, __m512i x, __m512i m) {
#if defined(__AVX512VNNI__) && !defined(LUTRT_AVX512_SIMDE)
    return _mm512_dpwssd_epi32(acc, x, m);
#elif defined(LUTRT_AVX512_SIMDE) /* SIMDe 0.7's _mm512_madd_epi16 alias takes 4 arguments */
    return _mm512_add_epi32(acc, simde_mm512_madd_epi16(x, m));
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(x, m));
#endif
}

/* Per-table int8 scales (jt == 1; lutrt.h; on VBMI + VNNI CPUs the automatic kernel runs
 * lmma_avx512vbmi.c's per-table tiles for 1, 4 and 8 bits, dispatch.c): on the scale grid,
 * tscale[m, j] = unit[m, b] * mult[m, j] with integer mult < 2^7 (lutrt_grid_scales), so a block
 * of <= 8 tables needs no float work per table:
 *   VNNI builds, B = 2 and 4 (BYTES): the lookup bytes (L_2p, L_2p+1) of tables j and j+1 are
 *     interleaved per row (vpunpck{l,h}wd) and one vpdpbusd multiplies them by (mult_j,
 *     2 mult_j, mult_j+1, 2 mult_j+1) into int32, plane pair 1 into its own sums weighed 4.
 *   otherwise: vpmaddwd (vpdpwssd) multiplies the int16 lookup sums of tables j and j+1
 *     (interleaved per row) by (mult_j, mult_j+1) into int32.
 * The block is converted once: unit * (sum_j mult_j I_j - z sum_j mult_j S_j).
 *   |I_j| <= 255 * 127 (B = 8), so |sum_j mult_j I_j| <= 8 * 127 * 32385 < 2^25: one int32 sum;
 *   the zero-point term: pt_zero_avx512.h. The result is the per-table
 * formula's up to float32 rounding. The unpacked
 * dword order (per lane 4 words of unpacklo, then 4 of unpackhi) is undone by two vpermt2d. */
static const int32_t pt_idx_a[16] __attribute__((aligned(64))) = {
    0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23};
static const int32_t pt_idx_b[16] __attribute__((aligned(64))) = {
    8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};

ALWAYS_INLINE void tile_pt(const lutrt_mma_args *a, int m0, int blk0, const int MT, const int NP,
                           const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, NBK = 2 * NP, BYTES = PT_BYTE_MULT && (BITS == 2 || BITS == 4);
    const int nub = (J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    const __m512i ia = _mm512_load_si512(pt_idx_a), ib = _mm512_load_si512(pt_idx_b);
    const uint8_t *wb[4];
    const int8_t *tb[2];
    const int16_t *mb[2];
    lutrt_tile_inputs(a, m0, blk0, MT, NBK, wb, tb, mb);

    float facc[2][4][32] __attribute__((aligned(64)));
    float oacc[2][4][32] __attribute__((aligned(64)));
    lutrt_tile_zero(MT, NBK, oacc);

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        /* a weight group inside one grid block (groups of <= 32 activations, the common case)
         * skips facc: its scale s[n, g] multiplies the block's unit once */
        const int whole_group = j1 <= (j0 / LUTRT_GRID_TABLES + 1) * LUTRT_GRID_TABLES;
        for (int js = j0; js < j1;) {
            const int ub = js / LUTRT_GRID_TABLES, je = min_int(j1, (ub + 1) * LUTRT_GRID_TABLES);
            /* [r][pi][half][unpacklo / unpackhi]; I4: plane pair 1 of BYTES B = 4, weighed 4 */
            __m512i I[2][2][2][2], I4[2][2][2][2];
            UNROLL for (int r = 0; r < MT; r++)
                UNROLL for (int pi = 0; pi < NP; pi++)
                    UNROLL for (int h = 0; h < 2; h++)
                        UNROLL for (int u = 0; u < 2; u++) I[r][pi][h][u] = I4[r][pi][h][u] = _mm512_setzero_si512();
/* tables j, j+1 (TWO; else j alone) of every row into I (and I4); TWO is a constant: the
 * whole-pair loop below has no per-step test, and a lone last table is one step after it */
#define PT_STEP(TWO)                                                                             \
    do {                                                                                         \
        __m512i tab[2][2], P0[2][2][2], P1[2][2][2], mm[2];                                      \
        UNROLL for (int r = 0; r < MT; r++) {                                                    \
            tab[0][r] = load_table(tb[r] + (size_t)j * E, MIR);                                  \
            tab[1][r] = (TWO) ? load_table(tb[r] + (size_t)(j + 1) * E, MIR) : _mm512_setzero_si512(); \
            const uint32_t m0 = (uint16_t)mb[r][j], m1 = (TWO) ? (uint16_t)mb[r][j + 1] : 0u;     \
            mm[r] = BYTES ? _mm512_set1_epi32((int)(m0 | m0 << 9 | m1 << 16 | m1 << 25))         \
                          : _mm512_set1_epi32((int)(m0 | m1 << 16));                             \
        }                                                                                        \
        if (BYTES) { /* bytes (L_2pp, L_2pp+1) of tables j, j+1 per row: one vpdpbusd */          \
            UNROLL for (int pp = 0; pp < (BITS >> 1); pp++) {                                    \
                __m512i S0[2][2][2], S1[2][2][2];                                                \
                lookups_pair(a, wb, tab[0], (size_t)j, MT, NP, pp, S0);                          \
                lookups_pair(a, wb, tab[1], (size_t)((TWO) ? j + 1 : j), MT, NP, pp, S1);        \
                UNROLL for (int r = 0; r < MT; r++)                                              \
                    UNROLL for (int pi = 0; pi < NP; pi++)                                       \
                        UNROLL for (int h = 0; h < 2; h++) {                                     \
                            const __m512i lo = _mm512_unpacklo_epi16(S0[r][pi][h], S1[r][pi][h]); \
                            const __m512i hi = _mm512_unpackhi_epi16(S0[r][pi][h], S1[r][pi][h]); \
                            __m512i *acc = pp ? I4[r][pi][h] : I[r][pi][h];                      \
                            acc[0] = dot_bytes(acc[0], mm[r], lo);                               \
                            acc[1] = dot_bytes(acc[1], mm[r], hi);                               \
                        }                                                                        \
            }                                                                                    \
        } else {                                                                                 \
            lookups_pt(a, wb, tab[0], (size_t)j, MT, NP, BITS, P0);                              \
            lookups_pt(a, wb, tab[1], (size_t)((TWO) ? j + 1 : j), MT, NP, BITS, P1);            \
            UNROLL for (int r = 0; r < MT; r++)                                                  \
                UNROLL for (int pi = 0; pi < NP; pi++)                                           \
                    UNROLL for (int h = 0; h < 2; h++) {                                         \
                        const __m512i lo = _mm512_unpacklo_epi16(P0[r][pi][h], P1[r][pi][h]);    \
                        const __m512i hi = _mm512_unpackhi_epi16(P0[r][pi][h], P1[r][pi][h]);    \
                        I[r][pi][h][0] = dot_words(I[r][pi][h][0], lo, mm[r]);                   \
                        I[r][pi][h][1] = dot_words(I[r][pi][h][1], hi, mm[r]);                   \
                    }                                                                            \
        }                                                                                        \
    } while (0)
            int j = js;
            for (; j + 2 <= je; j += 2) {
                if (MT == 1)
                    UNROLL for (int bi = 0; bi < NBK; bi++)
                        lutrt_gemv_prefetch(wb[bi] + (size_t)j * a->chunk, 2 * BITS * 16);
                PT_STEP(1);
            }
            if (j < je) PT_STEP(0);
#undef PT_STEP
            UNROLL for (int r = 0; r < MT; r++) {
                const size_t m = (size_t)(m0 + r);
                const int zs = lutrt_pt_zs(a, m, js, je); /* sum_j mult_j S_j */
                const __m512 U = _mm512_set1_ps(a->tunit[m * nub + ub]);
                const __m512 Z = _mm512_set1_ps((float)zs);
                const __m512i Zi = _mm512_set1_epi32(zs);
                UNROLL for (int pi = 0; pi < NP; pi++) {
                    UNROLL for (int h = 0; h < 2; h++) {
                        UNROLL for (int e = 0; e < 2; e++) { /* block a / b */
                            const size_t si = ((size_t)(blk0 + 2 * pi + e) * a->NG + g) * LUTRT_BLOCK_N + 16 * h;
                            const __m512 z = a->zeros ? _mm512_loadu_ps(a->zeros + si) : _mm512_set1_ps(a->zimp);
                            __m512i Ib = _mm512_permutex2var_epi32(I[r][pi][h][0], e ? ib : ia, I[r][pi][h][1]);
                            if (BYTES && BITS == 4)
                                Ib = _mm512_add_epi32(Ib, _mm512_slli_epi32(_mm512_permutex2var_epi32(
                                    I4[r][pi][h][0], e ? ib : ia, I4[r][pi][h][1]), 2));
                            const __m512 v = lutrt_pt_zero_point(Ib, z, Zi, Z, BITS);
                            if (whole_group) { /* straight into oacc */
                                float *o = oacc[r][2 * pi + e] + 16 * h;
                                const __m512 w = _mm512_mul_ps(_mm512_loadu_ps(a->scales + si), U);
                                _mm512_store_ps(o, _mm512_fmadd_ps(v, w, _mm512_load_ps(o)));
                                continue;
                            }
                            float *f = facc[r][2 * pi + e] + 16 * h;
                            _mm512_store_ps(f, js == j0 ? _mm512_mul_ps(v, U)
                                                        : _mm512_fmadd_ps(v, U, _mm512_load_ps(f)));
                        }
                    }
                }
            }
            js = je;
        }
        if (!whole_group) lutrt_group_done(a, blk0, g, MT, NBK, facc, oacc);
    }
    lutrt_store_rows(a, m0, blk0, MT, NBK, oacc);
}

typedef void (*tile_fn)(const lutrt_mma_args *, int, int);

/* Shapes (rows x block pairs): 1x2, 1x1, 2x1; one instantiation per (shape, mirrored, bits). */
#define TILE(MT, NP, MIR, BITS)                                                      \
    static __attribute__((noinline)) void tile_##MT##x##NP##_##MIR##_##BITS(        \
        const lutrt_mma_args *a, int m0, int blk0) {                                 \
        tile_i8(a, m0, blk0, MT, NP, MIR, BITS);                                     \
    }
#define TILES(MIR, BITS) TILE(1, 2, MIR, BITS) TILE(1, 1, MIR, BITS) TILE(2, 1, MIR, BITS)
#define SHAPES(MIR, BITS) \
    {tile_1x2_##MIR##_##BITS, tile_1x1_##MIR##_##BITS, tile_2x1_##MIR##_##BITS}
TILES(0, 1) TILES(0, 2) TILES(0, 3) TILES(0, 4) TILES(0, 5) TILES(0, 6) TILES(0, 7) TILES(0, 8)
TILES(1, 1) TILES(1, 2) TILES(1, 3) TILES(1, 4) TILES(1, 5) TILES(1, 6) TILES(1, 7) TILES(1, 8)
static const tile_fn tiles[2][LUTRT_MAX_BITS][3] = {
    {SHAPES(0, 1), SHAPES(0, 2), SHAPES(0, 3), SHAPES(0, 4),
     SHAPES(0, 5), SHAPES(0, 6), SHAPES(0, 7), SHAPES(0, 8)},
    {SHAPES(1, 1), SHAPES(1, 2), SHAPES(1, 3), SHAPES(1, 4),
     SHAPES(1, 5), SHAPES(1, 6), SHAPES(1, 7), SHAPES(1, 8)},
};

/* Per-table tiles. */
#define TILE_PT(MT, NP, MIR, BITS)                                                   \
    static __attribute__((noinline)) void pt_##MT##x##NP##_##MIR##_##BITS(          \
        const lutrt_mma_args *a, int m0, int blk0) {                                 \
        tile_pt(a, m0, blk0, MT, NP, MIR, BITS);                                     \
    }
#define TILES_PT(MIR, BITS) TILE_PT(1, 2, MIR, BITS) TILE_PT(1, 1, MIR, BITS) TILE_PT(2, 1, MIR, BITS)
#define SHAPES_PT(MIR, BITS) {pt_1x2_##MIR##_##BITS, pt_1x1_##MIR##_##BITS, pt_2x1_##MIR##_##BITS}
TILES_PT(0, 1) TILES_PT(0, 2) TILES_PT(0, 3) TILES_PT(0, 4)
TILES_PT(0, 5) TILES_PT(0, 6) TILES_PT(0, 7) TILES_PT(0, 8)
TILES_PT(1, 1) TILES_PT(1, 2) TILES_PT(1, 3) TILES_PT(1, 4)
TILES_PT(1, 5) TILES_PT(1, 6) TILES_PT(1, 7) TILES_PT(1, 8)
static const tile_fn tiles_pt[2][LUTRT_MAX_BITS][3] = {
    {SHAPES_PT(0, 1), SHAPES_PT(0, 2), SHAPES_PT(0, 3), SHAPES_PT(0, 4),
     SHAPES_PT(0, 5), SHAPES_PT(0, 6), SHAPES_PT(0, 7), SHAPES_PT(0, 8)},
    {SHAPES_PT(1, 1), SHAPES_PT(1, 2), SHAPES_PT(1, 3), SHAPES_PT(1, 4),
     SHAPES_PT(1, 5), SHAPES_PT(1, 6), SHAPES_PT(1, 7), SHAPES_PT(1, 8)},
};

/* Same walk as lmma_avx2.c with block pairs; an odd last block goes to the AVX2 kernel. */
static void mma_i8_avx512(const lutrt_mma_args *a, int b0, int b1) {
    const tile_fn *t = a->tmult ? tiles_pt[a->mirrored][a->bits - 1] : tiles[a->mirrored][a->bits - 1];
    const tile_fn t1x2 = t[0], t1x1 = t[1], t2x1 = t[2];
    const int even_end = b0 + ((b1 - b0) & ~1);
    if (a->M == 1) {
        int blk = b0;
        for (; blk + 4 <= even_end; blk += 4) t1x2(a, 0, blk);
        for (; blk < even_end; blk += 2) t1x1(a, 0, blk);
    } else {
        const int super = lutrt_super_blocks(a);
        for (int sb = b0; sb < even_end; sb += super) {
            const int se = min_int(even_end, sb + super);
            int m = 0;
            for (; m + 2 <= a->M; m += 2)
                for (int blk = sb; blk < se; blk += 2) t2x1(a, m, blk);
            for (; m < a->M; m++)
                for (int blk = sb; blk < se; blk += 2) t1x1(a, m, blk);
        }
    }
    if (even_end < b1) lutrt_mma_i8_avx2(a, even_end, b1);
}

const lutrt_mma_fn LMMA_AVX512_PTR = mma_i8_avx512;
#else
const lutrt_mma_fn LMMA_AVX512_PTR = 0;
#endif
