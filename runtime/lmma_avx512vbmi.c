/* lmma_avx512vbmi.c — lut.mma on int8 tables with AVX-512 VBMI vpermb + VNNI vpdpbusd
 * (docs/design.md §6). Selectable as kernel "avx512vbmi"; never the automatic default.
 *
 * Same packed layout (lutrt_internal.h), tables and results as lmma_avx512.c / lmma_avx2.c:
 * the integer sum of every (row, weight row, table scale group) is exact in both, and the float
 * flush (int -> float, - z * S, * tscale, per weight group s * F) is done in the same order.
 *
 * Lookups: one zmm holds four consecutive tables j..j+3 of a row, table j+l in bytes
 * 16l..16l+15 (plain: one 64-byte load; mirrored: [T8, -T8] per 128-bit lane). An index byte
 * 16l + code selects table l, so one vpermb looks up 64 codes spread over four tables.
 *
 * Accumulation: vpdpbusd(acc, mult_u8, lookups_s8) adds four adjacent lookup bytes, each
 * times its plane weight 2^b, into an int32 lane. The indices are therefore arranged so that
 * the four bytes of a dword belong to one weight row:
 *   plane pairs: X = [table a, pair pp | table b, pair pp], Y = the same for tables c, d
 *     (32 bytes each; with 2 bits the four chunks are contiguous, with 4 bits X/Y are whole
 *     chunks of tables a/b holding both pairs). Ze = (X & 0xffff) | (Y << 16) per dword puts
 *     word 2q of X and of Y in dword q: bytes (plane 2pp, 2pp+1) of one row for two tables.
 *     Zo = (X >> 16) | (Y & 0xffff0000) does the same for words 2q+1. The low nibbles of Ze are
 *     rows 2q, of Zo rows 2q+1, the high nibbles rows 16+2q / 17+2q; dwords q and q+8 hold the
 *     same row (other tables or pair), so four int32 accumulators cover 32 rows twice.
 *   odd last plane: the four tables' 16-byte chunks in one zmm are regrouped by one vpermb so
 *     that dword k holds byte k of each table (one row per nibble); two more accumulators.
 * Tables past the end of a scale group are zero in the table register (their codes point at a
 * valid chunk and look up 0). At each scale-group flush vpermt2d restores the row order.
 * int32 accumulators cannot overflow (|sum| <= 16 * (2^B - 1) * 127 per scale group, B <= 8).
 *
 * Measured against lmma_avx512.c on a 16-core AVX-512 Xeon (K = N = 4096, 2 and 4 bits, M = 1
 * and 128, 1 and 16 threads): 0.89-1.13x, i.e. no clear win; both kernels issue about the
 * same number of port-5 shuffles (vpermb here, vpshufb there), and the per-scale-group flush
 * here spends 4 vpermt2d per 32 rows.
 *
 * Compiled for real only with -mavx512f -mavx512bw -mavx512vbmi -mavx512vnni (build.py);
 * otherwise lutrt_mma_i8_avx512vbmi_ptr is NULL. LUTRT_AVX512_SIMDE (tests only) runs this
 * code through SIMDe's emulation on CPUs without AVX-512.
 */
#include "lutrt_internal.h"

#if defined(LUTRT_AVX512_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define LUTRT_HAVE_VBMI 1
const int lutrt_avx512vbmi_emulated = 1;
static inline __m512 emu_cvtepi32_ps(__m512i a) {
    __m256 lo = _mm256_cvtepi32_ps(_mm512_castsi512_si256(a));
    __m256 hi = _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(a, 1));
    return _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(lo)),
                                                  _mm256_castps_si256(hi), 1));
}
#define _mm512_cvtepi32_ps emu_cvtepi32_ps
#elif defined(__AVX512BW__) && defined(__AVX512VBMI__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define LUTRT_HAVE_VBMI 1
const int lutrt_avx512vbmi_emulated = 0;
#else
const int lutrt_avx512vbmi_emulated = 0;
#endif

#ifdef LUTRT_HAVE_VBMI
#include <string.h>

#include "pt_zero_avx512.h"
#include "tile_io_avx512.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

static int min_int(int a, int b) { return a < b ? a : b; }

/* constants (static data: no code runs before the dispatcher has checked the CPU) */
/* X = tables (0 | 1), Y = (2 | 3): lanes 0-1 (0,0,32,32), lanes 2-3 (16,16,48,48) */
static const int8_t off_pair[64] __attribute__((aligned(64))) = {
    0, 0, 32, 32, 0, 0, 32, 32, 0, 0, 32, 32, 0, 0, 32, 32,
    0, 0, 32, 32, 0, 0, 32, 32, 0, 0, 32, 32, 0, 0, 32, 32,
    16, 16, 48, 48, 16, 16, 48, 48, 16, 16, 48, 48, 16, 16, 48, 48,
    16, 16, 48, 48, 16, 16, 48, 48, 16, 16, 48, 48, 16, 16, 48, 48};
/* 4 bits, whole chunks X = table 0, Y = table 1: (0,0,16,16) */
static const int8_t off_01[64] __attribute__((aligned(64))) = {
    0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16,
    0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16,
    0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16,
    0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16};
/* 4 bits, X = table 2, Y = table 3: (32,32,48,48) */
static const int8_t off_23[64] __attribute__((aligned(64))) = {
    32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48,
    32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48,
    32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48,
    32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48, 32, 32, 48, 48};
/* 4 bits, whole chunks: lanes 0-1 (1,2,1,2), lanes 2-3 (4,8,4,8) */
static const int8_t mult_q4[64] __attribute__((aligned(64))) = {
    1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2,
    1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2,
    4, 8, 4, 8, 4, 8, 4, 8, 4, 8, 4, 8, 4, 8, 4, 8,
    4, 8, 4, 8, 4, 8, 4, 8, 4, 8, 4, 8, 4, 8, 4, 8};
/* odd plane regrouping: byte 4k+l <- byte 16l+k */
static const int8_t perm_odd[64] __attribute__((aligned(64))) = {
    0, 16, 32, 48, 1, 17, 33, 49, 2, 18, 34, 50, 3, 19, 35, 51,
    4, 20, 36, 52, 5, 21, 37, 53, 6, 22, 38, 54, 7, 23, 39, 55,
    8, 24, 40, 56, 9, 25, 41, 57, 10, 26, 42, 58, 11, 27, 43, 59,
    12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};
/* odd plane: byte 4k+l selects table l */
static const int8_t off_odd[64] __attribute__((aligned(64))) = {
    0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48,
    0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48,
    0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48,
    0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48};
/* flush (vpermt2d): rows 2q <- even acc dword q, rows 2q+1 <- odd acc dword q */
static const int32_t fl_a[16] __attribute__((aligned(64))) = {
    0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
/* ... the same from dwords q+8 */
static const int32_t fl_b[16] __attribute__((aligned(64))) = {
    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
/* odd plane flush, rows 0..15 (low nibbles: even dwords; high: 8 + ...) */
static const int32_t fl_c[16] __attribute__((aligned(64))) = {
    0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
/* odd plane flush, rows 16..31 */
static const int32_t fl_d[16] __attribute__((aligned(64))) = {
    1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};

ALWAYS_INLINE __m512i ld64(const void *p) { return _mm512_loadu_si512(p); }

/* vpdpbusd multipliers of plane pair pp: bytes (2^(2pp), 2^(2pp+1)) twice per dword; u8, so
 * up to (64, 128) for B = 8 planes */
ALWAYS_INLINE int pair_mult(int pp) {
    const unsigned lo = 1u << (2 * pp), hi = 2u << (2 * pp);
    return (int)(lo | hi << 8 | lo << 16 | hi << 24);
}

/* (z & 0x0f) | off: a vpermb index (bits 6-7 are ignored by vpermb) */
ALWAYS_INLINE __m512i nib(__m512i z, __m512i m0f, __m512i off) {
    return _mm512_ternarylogic_epi32(z, m0f, off, 0xEA);
}

/* Tables j..j+3 of one row (nt < 4: the rest zero). */
ALWAYS_INLINE __m512i load_tables(const int8_t *t, const int MIR, const int FULL, int nt) {
    int8_t buf[64] __attribute__((aligned(64)));
    if (!FULL) {
        memset(buf, 0, sizeof buf);
        memcpy(buf, t, (size_t)nt * (MIR ? 8 : 16));
        t = buf;
    }
    if (MIR) {
        __m512i x = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)t));
        x = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0), x);
        return _mm512_mask_sub_epi8(x, (__mmask64)0xFF00FF00FF00FF00ull, _mm512_setzero_si512(), x);
    }
    return ld64(t);
}

ALWAYS_INLINE __m512i join256(const uint8_t *a, const uint8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* Rows m0..m0+MT-1 for blocks blk0..blk0+NBK-1. */
ALWAYS_INLINE void tile_i8(const lutrt_mma_args *a, int m0, int blk0, const int MT, const int NBK,
                           const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, npairs = BITS >> 1, odd = BITS & 1;
    const size_t chunk = a->chunk;
    const __m512i m0f = _mm512_set1_epi8(0x0f), m16 = _mm512_set1_epi32(0xFFFF);
    const __m512i offp = ld64(off_pair), o01 = ld64(off_01), o23 = ld64(off_23);
    const __m512i mq4 = ld64(mult_q4), permo = ld64(perm_odd), offo = ld64(off_odd);
    const __m512i multo = _mm512_set1_epi8((char)(1 << (BITS - 1)));

    const uint8_t *wb[4];
    const int8_t *tb[2];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * chunk;
    UNROLL for (int r = 0; r < MT; r++) tb[r] = (const int8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes;

    float facc[2][4][32] __attribute__((aligned(64)));
    float oacc[2][4][32] __attribute__((aligned(64)));
    lutrt_tile_zero(MT, NBK, oacc);

/* one (X, Y) pair combination into the four pair accumulators of block bi */
#define PAIR_STEP(X, Y, OFF, MULT)                                                               \
    do {                                                                                         \
        const __m512i ze = _mm512_ternarylogic_epi32((X), _mm512_slli_epi32((Y), 16), m16, 0xEC); \
        const __m512i zo = _mm512_ternarylogic_epi32((Y), _mm512_srli_epi32((X), 16), m16, 0xDC); \
        const __m512i iel = nib(ze, m0f, (OFF)), ieh = nib(_mm512_srli_epi16(ze, 4), m0f, (OFF)); \
        const __m512i iol = nib(zo, m0f, (OFF)), ioh = nib(_mm512_srli_epi16(zo, 4), m0f, (OFF)); \
        UNROLL for (int r = 0; r < MT; r++) {                                                    \
            acc[r][bi][0] = _mm512_dpbusd_epi32(acc[r][bi][0], (MULT), _mm512_permutexvar_epi8(iel, tab[r])); \
            acc[r][bi][1] = _mm512_dpbusd_epi32(acc[r][bi][1], (MULT), _mm512_permutexvar_epi8(iol, tab[r])); \
            acc[r][bi][2] = _mm512_dpbusd_epi32(acc[r][bi][2], (MULT), _mm512_permutexvar_epi8(ieh, tab[r])); \
            acc[r][bi][3] = _mm512_dpbusd_epi32(acc[r][bi][3], (MULT), _mm512_permutexvar_epi8(ioh, tab[r])); \
        }                                                                                        \
    } while (0)

/* tables j..j+nt-1 (nt = 4 when FULL) for all rows and blocks */
#define STEP(FULL, NT)                                                                           \
    do {                                                                                         \
        __m512i tab[2];                                                                          \
        UNROLL for (int r = 0; r < MT; r++) tab[r] = load_tables(tb[r] + (size_t)j * E, MIR, FULL, NT); \
        UNROLL for (int bi = 0; bi < NBK; bi++) {                                                \
            const uint8_t *p0 = wb[bi] + (size_t)j * chunk;                                       \
            const uint8_t *p[4];                                                                 \
            UNROLL for (int l = 0; l < 4; l++) p[l] = (FULL || l < (NT)) ? p0 + l * chunk : p0;   \
            if (FULL && BITS == 2) {                                                             \
                PAIR_STEP(ld64(p0), ld64(p0 + 64), offp, _mm512_set1_epi32(0x02010201));         \
            } else if (FULL && BITS == 4) {                                                      \
                PAIR_STEP(ld64(p0), ld64(p0 + 64), o01, mq4);                                    \
                PAIR_STEP(ld64(p0 + 128), ld64(p0 + 192), o23, mq4);                             \
            } else {                                                                             \
                UNROLL for (int pp = 0; pp < npairs; pp++) {                                     \
                    const __m512i X = join256(p[0] + 32 * pp, p[1] + 32 * pp);                   \
                    const __m512i Y = join256(p[2] + 32 * pp, p[3] + 32 * pp);                   \
                    PAIR_STEP(X, Y, offp, _mm512_set1_epi32(pair_mult(pp)));                     \
                }                                                                                \
            }                                                                                    \
            if (odd) {                                                                           \
                __m512i R;                                                                       \
                if (FULL && BITS == 1) {                                                         \
                    R = ld64(p0);                                                                \
                } else {                                                                         \
                    const size_t o = 32 * (size_t)npairs;                                        \
                    R = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p[0] + o)));     \
                    R = _mm512_inserti32x4(R, _mm_loadu_si128((const __m128i *)(p[1] + o)), 1);  \
                    R = _mm512_inserti32x4(R, _mm_loadu_si128((const __m128i *)(p[2] + o)), 2);  \
                    R = _mm512_inserti32x4(R, _mm_loadu_si128((const __m128i *)(p[3] + o)), 3);  \
                }                                                                                \
                R = _mm512_permutexvar_epi8(permo, R);                                           \
                const __m512i il = nib(R, m0f, offo), ih = nib(_mm512_srli_epi16(R, 4), m0f, offo); \
                UNROLL for (int r = 0; r < MT; r++) {                                            \
                    acc[r][bi][4] = _mm512_dpbusd_epi32(acc[r][bi][4], multo, _mm512_permutexvar_epi8(il, tab[r])); \
                    acc[r][bi][5] = _mm512_dpbusd_epi32(acc[r][bi][5], multo, _mm512_permutexvar_epi8(ih, tab[r])); \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    } while (0)

    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        for (int js = j0, t = j0 / a->jt; js < j1; js += a->jt, t++) {
            const int je = min_int(j1, js + a->jt);
            __m512i acc[2][4][6];
            UNROLL for (int r = 0; r < MT; r++)
                UNROLL for (int bi = 0; bi < NBK; bi++)
                    UNROLL for (int q = 0; q < 6; q++) acc[r][bi][q] = _mm512_setzero_si512();
            int j = js;
            for (; j + 4 <= je; j += 4) STEP(1, 4);
            if (j < je) {
                const int nt = je - j;
                STEP(0, nt);
            }
            UNROLL for (int r = 0; r < MT; r++) {
                const size_t mt = (size_t)(m0 + r) * a->NS + t;
                const __m512 ts = _mm512_set1_ps(a->tscale[mt]), S = _mm512_set1_ps(a->tsum[mt]);
                UNROLL for (int bi = 0; bi < NBK; bi++) {
                    const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
                    const __m512 zlo = a->zeros ? _mm512_loadu_ps(a->zeros + si) : _mm512_set1_ps(a->zimp);
                    const __m512 zhi = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16) : _mm512_set1_ps(a->zimp);
                    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
                    if (npairs) {
                        const __m512i A = ld64(fl_a), B = ld64(fl_b);
                        lo = _mm512_add_epi32(_mm512_permutex2var_epi32(acc[r][bi][0], A, acc[r][bi][1]),
                                              _mm512_permutex2var_epi32(acc[r][bi][0], B, acc[r][bi][1]));
                        hi = _mm512_add_epi32(_mm512_permutex2var_epi32(acc[r][bi][2], A, acc[r][bi][3]),
                                              _mm512_permutex2var_epi32(acc[r][bi][2], B, acc[r][bi][3]));
                    }
                    if (odd) {
                        lo = _mm512_add_epi32(lo, _mm512_permutex2var_epi32(acc[r][bi][4], ld64(fl_c), acc[r][bi][5]));
                        hi = _mm512_add_epi32(hi, _mm512_permutex2var_epi32(acc[r][bi][4], ld64(fl_d), acc[r][bi][5]));
                    }
                    /* - z * S[m, t]: the zero point against the same rounded entries */
                    const __m512 flo = _mm512_fnmadd_ps(zlo, S, _mm512_cvtepi32_ps(lo));
                    const __m512 fhi = _mm512_fnmadd_ps(zhi, S, _mm512_cvtepi32_ps(hi));
                    float *f = facc[r][bi];
                    if (js == j0) {
                        _mm512_store_ps(f, _mm512_mul_ps(flo, ts));
                        _mm512_store_ps(f + 16, _mm512_mul_ps(fhi, ts));
                    } else {
                        _mm512_store_ps(f, _mm512_fmadd_ps(flo, ts, _mm512_load_ps(f)));
                        _mm512_store_ps(f + 16, _mm512_fmadd_ps(fhi, ts, _mm512_load_ps(f + 16)));
                    }
                }
            }
        }
        lutrt_group_done(a, blk0, g, MT, NBK, facc, oacc); /* end of a weight group */
    }
#undef STEP
#undef PAIR_STEP
    lutrt_store_rows(a, m0, blk0, MT, NBK, oacc);
}

/* ---- per-table scales (jt == 1) ----------------------------------------------------------
 * On the scale grid (lutrt_grid_scales) tscale[m, j] = unit[m, b] * mult[m, j] with integer
 * mult < 2^7, constant over each aligned block b of LUTRT_GRID_TABLES tables. The tiles above
 * already multiply every lookup byte by a u8 plane weight in vpdpbusd; here that weight is
 * mult_j * (1, 2) for the two planes of a pair (<= 254), so a table's scale costs nothing per
 * lookup and I = sum_j mult_j sum_b 2^b L_b is summed exactly in int32 over a grid block:
 *   pairs (B = 2): X = tables (j | j+1), Y = (j+2 | j+3) as in PAIR_STEP, dword lanes 0-1 hold
 *     tables (j, j+2), lanes 2-3 (j+1, j+3): multipliers (m_j, 2m_j, m_j+2, 2m_j+2) | (m_j+1, ..).
 *   B = 4: X = table j's whole chunk (pairs 0 | 1), Y = table j+1's: lanes 0-1 hold plane pair 0
 *     and lanes 2-3 pair 1 of tables (j, j+1), both with multipliers (m_j, 2m_j, m_j+1, 2m_j+1);
 *     the flush weighs lanes 2-3 by 4. B = 8 does the same for pairs 2 | 3 into four more
 *     accumulators weighed by 16.
 *   B = 1: the odd-plane regrouping (dword k = byte k of tables j..j+3), multipliers m_j..m_j+3.
 * Bounds: one vpdpbusd adds <= 2 * 381 * 128 < 2^17 to a dword, a grid block 4 of them, times
 * <= 64 (B = 8, pair 3) after weighting, and in all |I| < 2^25 (the bound of pt_zero_avx512.h,
 * which takes the zero-point term). The result equals lmma_avx512.c's tile_pt up to float32
 * rounding. These tiles need whole steps of four tables:
 * J and the weight group a multiple of 4 tables, and B in {1, 2, 4, 8} (lutrt_pt_vbmi_applies;
 * the rest runs tile_i8 with one flush per table). */
/* vpshufb selectors of the multiplier bytes from 8 bytes = mult[j..j+3] (int16, low bytes 0,
 * 2, 4, 6); the odd bytes of each pair are doubled afterwards */
static const int8_t pt_sel_pair[64] __attribute__((aligned(64))) = {
    0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4,
    2, 2, 6, 6, 2, 2, 6, 6, 2, 2, 6, 6, 2, 2, 6, 6, 2, 2, 6, 6, 2, 2, 6, 6, 2, 2, 6, 6, 2, 2, 6, 6};
static const int8_t pt_sel_odd[64] __attribute__((aligned(64))) = {
    0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6,
    0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6};

/* multipliers of tables j..j+3 of one row through selector sel; pairs: (m, 2m) */
ALWAYS_INLINE __m512i pt_mults(const int16_t *mult, __m512i sel, const int PAIRS) {
    int64_t v;
    memcpy(&v, mult, 8);
    const __m512i m = _mm512_shuffle_epi8(_mm512_set1_epi64(v), sel);
    return PAIRS ? _mm512_mask_add_epi8(m, (__mmask64)0xAAAAAAAAAAAAAAAAull, m, m) : m;
}

/* Rows m0..m0+MT-1 for blocks blk0..blk0+NBK-1, per-table scales. */
ALWAYS_INLINE void tile_pt(const lutrt_mma_args *a, int m0, int blk0, const int MT, const int NBK,
                           const int MIR, const int BITS) {
    const int J = a->J, E = MIR ? 8 : 16, NQ = BITS == 8 ? 8 : 4;
    const int nub = (J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    const size_t chunk = a->chunk;
    const __m512i m0f = _mm512_set1_epi8(0x0f), m16 = _mm512_set1_epi32(0xFFFF);

    const uint8_t *wb[4];
    const int8_t *tb[2];
    const int16_t *mb[2];
    lutrt_tile_inputs(a, m0, blk0, MT, NBK, wb, tb, mb);

    float facc[2][4][32] __attribute__((aligned(64)));
    float oacc[2][4][32] __attribute__((aligned(64)));
    lutrt_tile_zero(MT, NBK, oacc);

/* tables X, Y of block bi into accumulators Q..Q+3 with multipliers MULT[r] */
#define PT_PAIR(X, Y, OFF, MULT, Q)                                                              \
    do {                                                                                         \
        const __m512i ze = _mm512_ternarylogic_epi32((X), _mm512_slli_epi32((Y), 16), m16, 0xEC); \
        const __m512i zo = _mm512_ternarylogic_epi32((Y), _mm512_srli_epi32((X), 16), m16, 0xDC); \
        const __m512i iel = nib(ze, m0f, (OFF)), ieh = nib(_mm512_srli_epi16(ze, 4), m0f, (OFF)); \
        const __m512i iol = nib(zo, m0f, (OFF)), ioh = nib(_mm512_srli_epi16(zo, 4), m0f, (OFF)); \
        UNROLL for (int r = 0; r < MT; r++) {                                                    \
            acc[r][bi][(Q)] = _mm512_dpbusd_epi32(acc[r][bi][(Q)], MULT[r], _mm512_permutexvar_epi8(iel, tab[r])); \
            acc[r][bi][(Q) + 1] = _mm512_dpbusd_epi32(acc[r][bi][(Q) + 1], MULT[r], _mm512_permutexvar_epi8(iol, tab[r])); \
            acc[r][bi][(Q) + 2] = _mm512_dpbusd_epi32(acc[r][bi][(Q) + 2], MULT[r], _mm512_permutexvar_epi8(ieh, tab[r])); \
            acc[r][bi][(Q) + 3] = _mm512_dpbusd_epi32(acc[r][bi][(Q) + 3], MULT[r], _mm512_permutexvar_epi8(ioh, tab[r])); \
        }                                                                                        \
    } while (0)

    const __m512i offp = ld64(off_pair), o01 = ld64(off_01), o23 = ld64(off_23);
    const __m512i permo = ld64(perm_odd), offo = ld64(off_odd);
    const __m512i sp = ld64(pt_sel_pair), so = ld64(pt_sel_odd);
    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        const int whole_group = j1 <= (j0 / LUTRT_GRID_TABLES + 1) * LUTRT_GRID_TABLES;
        for (int js = j0; js < j1;) {
            const int ub = js / LUTRT_GRID_TABLES, je = min_int(j1, (ub + 1) * LUTRT_GRID_TABLES);
            __m512i acc[2][4][8];
            UNROLL for (int r = 0; r < MT; r++)
                UNROLL for (int bi = 0; bi < NBK; bi++)
                    UNROLL for (int q = 0; q < NQ; q++) acc[r][bi][q] = _mm512_setzero_si512();
            for (int j = js; j < je; j += 4) {
                __m512i tab[2], mA[2], mB[2];
                UNROLL for (int r = 0; r < MT; r++) {
                    tab[r] = load_tables(tb[r] + (size_t)j * E, MIR, 1, 4);
                    if (BITS == 1) {
                        mA[r] = pt_mults(mb[r] + j, so, 0);
                    } else if (BITS == 2) {
                        mA[r] = pt_mults(mb[r] + j, sp, 1);
                    } else {
                        /* (m_j, 2m_j, m_j+1, 2m_j+1) | (m_j+2, ..): the int16 multipliers
                         * (< 2^7) with each one also shifted into its high byte, doubled */
                        uint64_t d;
                        memcpy(&d, mb[r] + j, 8);
                        d |= d << 9;
                        mA[r] = _mm512_set1_epi32((int)(uint32_t)d);
                        mB[r] = _mm512_set1_epi32((int)(uint32_t)(d >> 32));
                    }
                }
                UNROLL for (int bi = 0; bi < NBK; bi++) {
                    const uint8_t *p0 = wb[bi] + (size_t)j * chunk;
                    if (MT == 1) lutrt_gemv_prefetch(p0, 4 * BITS * 16);
                    if (BITS == 1) {
                        const __m512i R = _mm512_permutexvar_epi8(permo, ld64(p0));
                        const __m512i il = nib(R, m0f, offo), ih = nib(_mm512_srli_epi16(R, 4), m0f, offo);
                        UNROLL for (int r = 0; r < MT; r++) {
                            acc[r][bi][0] = _mm512_dpbusd_epi32(acc[r][bi][0], mA[r], _mm512_permutexvar_epi8(il, tab[r]));
                            acc[r][bi][1] = _mm512_dpbusd_epi32(acc[r][bi][1], mA[r], _mm512_permutexvar_epi8(ih, tab[r]));
                        }
                    } else if (BITS == 2) {
                        PT_PAIR(ld64(p0), ld64(p0 + 64), offp, mA, 0);
                    } else if (BITS == 4) {
                        PT_PAIR(ld64(p0), ld64(p0 + 64), o01, mA, 0);
                        PT_PAIR(ld64(p0 + 128), ld64(p0 + 192), o23, mB, 0);
                    } else { /* 8: pairs 0 | 1 and 2 | 3 of tables (j, j+1), then (j+2, j+3) */
                        PT_PAIR(ld64(p0), ld64(p0 + 128), o01, mA, 0);
                        PT_PAIR(ld64(p0 + 64), ld64(p0 + 192), o01, mA, 4);
                        PT_PAIR(ld64(p0 + 256), ld64(p0 + 384), o23, mB, 0);
                        PT_PAIR(ld64(p0 + 320), ld64(p0 + 448), o23, mB, 4);
                    }
                }
            }
            UNROLL for (int r = 0; r < MT; r++) {
                const size_t m = (size_t)(m0 + r);
                const int zs = lutrt_pt_zs(a, m, js, je); /* sum_j mult_j S_j */
                const __m512 U = _mm512_set1_ps(a->tunit[m * nub + ub]);
                const __m512 Z = _mm512_set1_ps((float)zs);
                const __m512i Zi = _mm512_set1_epi32(zs);
                UNROLL for (int bi = 0; bi < NBK; bi++) {
                    const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
                    if (MT == 1) lutrt_gemv_prefetch_scales(a, si);
                    __m512i I[2];
                    if (BITS == 1) {
                        I[0] = _mm512_permutex2var_epi32(acc[r][bi][0], ld64(fl_c), acc[r][bi][1]);
                        I[1] = _mm512_permutex2var_epi32(acc[r][bi][0], ld64(fl_d), acc[r][bi][1]);
                    } else {
                        const __m512i A = ld64(fl_a), B = ld64(fl_b);
                        const int sh = BITS == 2 ? 0 : 2; /* lanes 2-3: other tables, or pair 1 */
                        UNROLL for (int h = 0; h < 2; h++) {
                            const __m512i e = acc[r][bi][2 * h], o = acc[r][bi][2 * h + 1];
                            I[h] = _mm512_add_epi32(_mm512_permutex2var_epi32(e, A, o),
                                                    _mm512_slli_epi32(_mm512_permutex2var_epi32(e, B, o), sh));
                            if (BITS == 8) {
                                const __m512i e2 = acc[r][bi][4 + 2 * h], o2 = acc[r][bi][5 + 2 * h];
                                const __m512i hi = _mm512_add_epi32(_mm512_permutex2var_epi32(e2, A, o2),
                                                                    _mm512_slli_epi32(_mm512_permutex2var_epi32(e2, B, o2), 2));
                                I[h] = _mm512_add_epi32(I[h], _mm512_slli_epi32(hi, 4));
                            }
                        }
                    }
                    UNROLL for (int h = 0; h < 2; h++) {
                        const __m512 z = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16 * h) : _mm512_set1_ps(a->zimp);
                        const __m512 v = lutrt_pt_zero_point(I[h], z, Zi, Z, BITS);
                        if (whole_group) { /* straight into oacc */
                            float *o = oacc[r][bi] + 16 * h;
                            const __m512 w = _mm512_mul_ps(_mm512_loadu_ps(a->scales + si + 16 * h), U);
                            _mm512_store_ps(o, _mm512_fmadd_ps(v, w, _mm512_load_ps(o)));
                        } else {
                            float *f = facc[r][bi] + 16 * h;
                            _mm512_store_ps(f, js == j0 ? _mm512_mul_ps(v, U) : _mm512_fmadd_ps(v, U, _mm512_load_ps(f)));
                        }
                    }
                }
            }
            js = je;
        }
        if (!whole_group) lutrt_group_done(a, blk0, g, MT, NBK, facc, oacc);
    }
#undef PT_PAIR
    lutrt_store_rows(a, m0, blk0, MT, NBK, oacc);
}

typedef void (*tile_fn)(const lutrt_mma_args *, int, int);

/* Shapes (rows x blocks): GEMM 2xNM, 1x1 (GEMV, and the GEMM's odd row) and 2x1 for the
 * rest; one instantiation per (shape, mirrored, bits) of tile function FN, named
 * P{m,11,21}_MIR_BITS. */
#define TILE(FN, NAME, MT, NBK, MIR, BITS)                                            \
    static __attribute__((noinline)) void NAME##_##MIR##_##BITS(                      \
        const lutrt_mma_args *a, int m0, int blk0) {                                  \
        FN(a, m0, blk0, MT, NBK, MIR, BITS);                                          \
    }
#define TILES(FN, P, NMB, MIR, BITS)                                                  \
    TILE(FN, P##m, 2, NMB, MIR, BITS)                                                 \
    TILE(FN, P##11, 1, 1, MIR, BITS) TILE(FN, P##21, 2, 1, MIR, BITS)                 \
    TILE(FN, P##12, 1, 2, MIR, BITS)
#define SHAPES(P, MIR, BITS) {P##m_##MIR##_##BITS, P##11_##MIR##_##BITS, P##21_##MIR##_##BITS, P##12_##MIR##_##BITS}

/* Shared-scale GEMM tiles: NM = 2 blocks for even bits (4 accumulators per row and block),
 * 1 for odd bits (6). */
#define NM(BITS) ((BITS) & 1 ? 1 : 2)
#define TILES_I8(MIR, BITS) TILES(tile_i8, t, NM(BITS), MIR, BITS)
TILES_I8(0, 1) TILES_I8(0, 2) TILES_I8(0, 3) TILES_I8(0, 4)
TILES_I8(0, 5) TILES_I8(0, 6) TILES_I8(0, 7) TILES_I8(0, 8)
TILES_I8(1, 1) TILES_I8(1, 2) TILES_I8(1, 3) TILES_I8(1, 4)
TILES_I8(1, 5) TILES_I8(1, 6) TILES_I8(1, 7) TILES_I8(1, 8)
static const tile_fn tiles[2][LUTRT_MAX_BITS][4] = {
    {SHAPES(t, 0, 1), SHAPES(t, 0, 2), SHAPES(t, 0, 3), SHAPES(t, 0, 4),
     SHAPES(t, 0, 5), SHAPES(t, 0, 6), SHAPES(t, 0, 7), SHAPES(t, 0, 8)},
    {SHAPES(t, 1, 1), SHAPES(t, 1, 2), SHAPES(t, 1, 3), SHAPES(t, 1, 4),
     SHAPES(t, 1, 5), SHAPES(t, 1, 6), SHAPES(t, 1, 7), SHAPES(t, 1, 8)},
};

/* Per-table GEMM tiles: PM = 2 blocks (4 accumulators per row and block), B = 8: 1 (8). */
#define PM(BITS) ((BITS) == 8 ? 1 : 2)
#define TILES_PT(MIR, BITS) TILES(tile_pt, p, PM(BITS), MIR, BITS)
TILES_PT(0, 1) TILES_PT(0, 2) TILES_PT(0, 4) TILES_PT(0, 8)
TILES_PT(1, 1) TILES_PT(1, 2) TILES_PT(1, 4) TILES_PT(1, 8)
static const tile_fn tiles_pt[2][4][4] = { /* [mirrored][B = 1, 2, 4, 8] */
    {SHAPES(p, 0, 1), SHAPES(p, 0, 2), SHAPES(p, 0, 4), SHAPES(p, 0, 8)},
    {SHAPES(p, 1, 1), SHAPES(p, 1, 2), SHAPES(p, 1, 4), SHAPES(p, 1, 8)},
};

/* The walk of both tile sets: GEMV 2-block tiles (8 bits: 1 block), GEMM 2-row tiles of nm
 * blocks over super blocks that stay in L2. A GEMV tile loads each table and multiplier once
 * for all its blocks, and a block's flush per weight group (about 40% of a 1-block 4-bit tile's
 * time, perf) shares the zero-point sum and the unit. 1-block against 2-block tiles on the Intel
 * VM (AVX-512 VBMI, 260 MiB L3, weights in L3, 1 thread, interleaved, per-table tables): 4 bits
 * 1.06x the time (N = K = 4096; SmolLM2's 1536 x 576 / 576 x 1536 1.06 / 1.12x), 1 bit 1.30x,
 * explicit zero points 1.08x, weights streamed from memory 0.94-0.95x the 1-block time; 8 bits
 * 0.96x (16 accumulators per 2-block tile), so 8 bits keep 1-block tiles. Earlier, on a Zen 4
 * VM, 4-block tiles (12 memory streams: each block's weights, scales and zeros) streamed
 * SmolLM2's projections from memory slower than 1-block ones (4 bits 195-212 against 178-184 us
 * per layer, 1 bit 117 / 79 us). */
static void walk(const lutrt_mma_args *a, int b0, int b1, const tile_fn *t, int nm) {
    const tile_fn tm = t[0], t11 = t[1], t21 = t[2], t12 = t[3];
    if (a->M == 1) {
        int blk = b0;
        if (a->bits < 8)
            for (; blk + 2 <= b1; blk += 2) t12(a, 0, blk);
        for (; blk < b1; blk++) t11(a, 0, blk);
        return;
    }
    const int super = lutrt_super_blocks(a);
    for (int sb = b0; sb < b1; sb += super) {
        const int se = min_int(b1, sb + super);
        int m = 0;
        for (; m + 2 <= a->M; m += 2) {
            int blk = sb;
            for (; blk + nm <= se; blk += nm) tm(a, m, blk);
            for (; blk < se; blk++) t21(a, m, blk);
        }
        for (; m < a->M; m++)
            for (int blk = sb; blk < se; blk++) t11(a, m, blk);
    }
}

static void mma_pt_avx512vbmi(const lutrt_mma_args *a, int b0, int b1) {
    const int bi = a->bits == 8 ? 3 : a->bits == 4 ? 2 : a->bits - 1;
    walk(a, b0, b1, tiles_pt[a->mirrored][bi], PM(a->bits));
}

static void mma_i8_avx512vbmi(const lutrt_mma_args *a, int b0, int b1) {
    if (lutrt_pt_vbmi_applies(a)) {
        mma_pt_avx512vbmi(a, b0, b1);
        return;
    }
    walk(a, b0, b1, tiles[a->mirrored][a->bits - 1], NM(a->bits));
}

const lutrt_mma_fn lutrt_mma_i8_avx512vbmi_ptr = mma_i8_avx512vbmi;
const lutrt_mma_fn lutrt_mma_i8_pt_vbmi_ptr = mma_pt_avx512vbmi;
#else
const lutrt_mma_fn lutrt_mma_i8_avx512vbmi_ptr = 0;
const lutrt_mma_fn lutrt_mma_i8_pt_vbmi_ptr = 0;
#endif

int lutrt_pt_vbmi_applies(const lutrt_mma_args *a) {
    const int b = a->bits;
    return a->tmult && (b == 1 || b == 2 || b == 4 || b == 8) && a->J % 4 == 0 && a->jg % 4 == 0;
}
