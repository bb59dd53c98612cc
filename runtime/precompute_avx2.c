/* precompute_avx2.c — lut.precompute for one row with AVX2+FMA. Tables and tscales are
 * bit-identical to the portable builder in precompute.c (same operation order, round-half-even
 * conversion); group sums are summed 8-wide, so they may differ in the last bits.
 *
 * A 16-entry table is two ymm: entries 0..7 = x0 b0 + x1 b1 + x2 b2 with 0/1 pattern vectors,
 * entries 8..15 = those + x3. An 8-entry (symmetrized) table is one ymm with +-1 patterns
 * minus x3. int8 quantization packs 2 (16-entry) or 4 (8-entry) tables per 32-byte store. */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "lutrt_internal.h"

/* precompute_avx512.c compiles this file again with AVX-512F/BW and LUTRT_PRECOMPUTE_AVX512:
 * the int8 activation section then takes 16 activations per step (the rest is this code with
 * EVEX encodings). Its bytes and sums are integers and the max is exact, so the row stays
 * bit-identical to this one and to precompute.c's. */
#ifdef LUTRT_PRECOMPUTE_AVX512
#define PRECOMPUTE_ROW lutrt_precompute_row_avx512
#else
#define PRECOMPUTE_ROW lutrt_precompute_row_avx2
#endif

static int min_int(int a, int b) { return a < b ? a : b; }

static __m256 pattern(int bit, int mirrored) {
    float v[8];
    for (int p = 0; p < 8; p++) v[p] = (p >> bit) & 1 ? 1.0f : (mirrored ? -1.0f : 0.0f);
    return _mm256_loadu_ps(v);
}

typedef struct {
    __m256 b0, b1, b2;
} patterns;

/* Entries 0..7 of a table (for 16-entry tables entries 8..15 are this + x3). */
static inline __m256 low_half(const float *x4, const patterns *pt, int mirrored) {
    __m256 e = _mm256_mul_ps(_mm256_broadcast_ss(x4), pt->b0);
    e = _mm256_fmadd_ps(_mm256_broadcast_ss(x4 + 1), pt->b1, e);
    e = _mm256_fmadd_ps(_mm256_broadcast_ss(x4 + 2), pt->b2, e);
    return mirrored ? _mm256_sub_ps(e, _mm256_broadcast_ss(x4 + 3)) : e;
}

static void group_sums(const lutrt_mma_desc *d, const float *x, float *sums) {
    int ng = lutrt_num_groups(d);
    for (int g = 0; g < ng; g++) {
        int k = g * d->group, k1 = min_int(d->K, k + d->group);
        __m256 acc = _mm256_setzero_ps();
        for (; k + 8 <= k1; k += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + k));
        __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        s4 = _mm_hadd_ps(s4, s4);
        s4 = _mm_hadd_ps(s4, s4);
        float s = _mm_cvtss_f32(s4);
        for (; k < k1; k++) s += x[k];
        sums[g] = s;
    }
}

/* asum[j] = (|x0| + |x1|) + (|x2| + |x3|) of tables j0..j1-1, 8 tables per step. */
static void abs_sums(const float *x, int j0, int j1, float *asum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int j = j0;
    for (; j + 8 <= j1; j += 8) {
        const float *p = x + 4 * j;
        __m256 v0 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p));
        __m256 v1 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p + 8));
        __m256 v2 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p + 16));
        __m256 v3 = _mm256_andnot_ps(sign, _mm256_loadu_ps(p + 24));
        __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
        _mm256_storeu_ps(asum + (j - j0), _mm256_permutevar8x32_ps(h, order));
    }
    for (; j < j1; j++) {
        const float *p = x + 4 * j;
        asum[j - j0] = (fabsf(p[0]) + fabsf(p[1])) + (fabsf(p[2]) + fabsf(p[3]));
    }
}

static inline __m256i quant(__m256 e, float inv) {
    return _mm256_cvtps_epi32(_mm256_mul_ps(e, _mm256_set1_ps(inv))); /* MXCSR: half to even */
}

/* int8 tables j0..j1-1 with per-table multipliers inv[j - j0]. */
static void tables_i8(const float *x, int j0, int j1, const float *inv, int mirrored,
                      const patterns *pt, int8_t *out) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int j = j0;
    if (mirrored) {
        for (; j + 4 <= j1; j += 4) {
            __m256i q[4];
            for (int i = 0; i < 4; i++) q[i] = quant(low_half(x + 4 * (j + i), pt, 1), inv[j + i - j0]);
            __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(out + (size_t)j * 8), _mm256_permutevar8x32_epi32(b, order));
        }
    } else {
        for (; j + 2 <= j1; j += 2) {
            __m256i q[4];
            for (int i = 0; i < 2; i++) {
                const float *x4 = x + 4 * (j + i);
                __m256 lo = low_half(x4, pt, 0);
                __m256 hi = _mm256_add_ps(lo, _mm256_broadcast_ss(x4 + 3));
                q[2 * i] = quant(lo, inv[j + i - j0]);
                q[2 * i + 1] = quant(hi, inv[j + i - j0]);
            }
            __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(out + (size_t)j * 16), _mm256_permutevar8x32_epi32(b, order));
        }
    }
    const int E = mirrored ? 8 : 16;
    for (; j < j1; j++) { /* tail: one table, same arithmetic */
        float e[16];
        __m256 lo = low_half(x + 4 * j, pt, mirrored);
        _mm256_storeu_ps(e, lo);
        if (!mirrored) _mm256_storeu_ps(e + 8, _mm256_add_ps(lo, _mm256_broadcast_ss(x + 4 * j + 3)));
        for (int p = 0; p < E; p++) /* inv 0: zeroed group (its entries may be inf / NaN) */
            out[(size_t)j * E + p] = inv[j - j0] != 0.0f ? (int8_t)nearbyintf(e[p] * inv[j - j0]) : 0;
    }
}

/* The groups of acts_i8; one_pass_ok (a constant where it is inlined): whether the one-pass
 * test may apply, which alone needs max |xq| and sum xq^2 (off by default, lutrt.h): without
 * it those are not computed (vpmulld and four reductions a group). */
static inline __attribute__((always_inline)) void acts_groups(const lutrt_mma_desc *d,
                                                              const float *x, const float *tscale,
                                                              const lutrt_acts_section a,
                                                              const int one_pass_ok) {
    const int ag = lutrt_act_group(d), na = (d->K + ag - 1) / ag, sg = d->scale_group;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int s = 0; s < na; s++) {
        const int k0 = s * ag, k1 = min_int(d->K, k0 + ag);
        __m128 m4 = _mm_setzero_ps();
        int k = k0;
        if (k + 8 <= k1) {
            __m256 m8 = _mm256_setzero_ps();
#ifdef LUTRT_PRECOMPUTE_AVX512
            if (k + 16 <= k1) {
                __m512 m16 = _mm512_setzero_ps();
                for (; k + 16 <= k1; k += 16) m16 = _mm512_max_ps(m16, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
                m8 = _mm256_max_ps(_mm512_castps512_ps256(m16),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m16), 1)));
            }
#endif
            for (; k + 8 <= k1; k += 8) m8 = _mm256_max_ps(m8, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
            m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        }
        if (k < k1) m4 = _mm_max_ps(m4, _mm_andnot_ps(_mm_set1_ps(-0.0f), _mm_loadu_ps(x + k)));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        const float mx = _mm_cvtss_f32(m4);
        int finite = 1;
        for (int t = k0 / sg; t <= (k1 - 1) / sg; t++) finite &= !isnan(tscale[t]);
        const float scale = lutrt_act_scale(mx, finite);
        a.ascale[s] = scale;
        if (!(scale > 0.0f)) {
            memset(a.hi + k0, 0, (size_t)(k1 - k0));
            memset(a.lo + k0, 0, (size_t)(k1 - k0));
            a.shi[s] = a.slo[s] = 0.0f;
            continue;
        }
        const __m128 inv = _mm_set1_ps(LUTRT_ACT_QMAX / mx), r128 = _mm_set1_ps(1.0f / 128.0f);
        const __m128i lim = _mm_set1_epi32(16256), nlim = _mm_set1_epi32(-16256);
        __m128i acc_hi = _mm_setzero_si128(), acc_lo = _mm_setzero_si128();
        /* per lane: max |xq|, sum xq^2 (<= 16 terms of <= 16256^2 per lane, AG <= 128: below
         * 2^32, read as unsigned) */
        __m128i qmax4 = _mm_setzero_si128(), qsq4 = _mm_setzero_si128();
        int64_t qsq64 = 0;
        k = k0;
        if (k + 8 <= k1) { /* 8 activations per step, then the 4-wide loop for a rest of 4 */
            const __m256 inv8 = _mm256_set1_ps(LUTRT_ACT_QMAX / mx);
            const __m256 r256 = _mm256_set1_ps(1.0f / 128.0f);
            const __m256i lim8 = _mm256_set1_epi32(16256), nlim8 = _mm256_set1_epi32(-16256);
            const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 3, 6, 7);
            __m256i ah = _mm256_setzero_si256(), al = _mm256_setzero_si256();
            __m256i qm = _mm256_setzero_si256(), qs = _mm256_setzero_si256();
#ifdef LUTRT_PRECOMPUTE_AVX512
            if (k + 16 <= k1) { /* 16 per step; the same integers, bytes by vpmovsdb */
                const __m512 inv16 = _mm512_set1_ps(LUTRT_ACT_QMAX / mx);
                const __m512 r512 = _mm512_set1_ps(1.0f / 128.0f);
                const __m512i lim16 = _mm512_set1_epi32(16256), nlim16 = _mm512_set1_epi32(-16256);
                __m512i ah16 = _mm512_setzero_si512(), al16 = _mm512_setzero_si512();
                __m512i qm16 = _mm512_setzero_si512(), qs16 = _mm512_setzero_si512();
                for (; k + 16 <= k1; k += 16) {
                    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), inv16));
                    q = _mm512_max_epi32(_mm512_min_epi32(q, lim16), nlim16);
                    if (one_pass_ok) {
                        qm16 = _mm512_max_epi32(qm16, _mm512_abs_epi32(q));
                        qs16 = _mm512_add_epi32(qs16, _mm512_mullo_epi32(q, q)); /* <= 8 terms per lane */
                    }
                    const __m512i h = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(q), r512));
                    const __m512i l = _mm512_sub_epi32(q, _mm512_slli_epi32(h, 7));
                    ah16 = _mm512_add_epi32(ah16, h);
                    al16 = _mm512_add_epi32(al16, l);
                    _mm_storeu_si128((__m128i *)(a.hi + k), _mm512_cvtsepi32_epi8(h));
                    _mm_storeu_si128((__m128i *)(a.lo + k), _mm512_cvtsepi32_epi8(l));
                }
                ah = _mm256_add_epi32(_mm512_castsi512_si256(ah16), _mm512_extracti64x4_epi64(ah16, 1));
                al = _mm256_add_epi32(_mm512_castsi512_si256(al16), _mm512_extracti64x4_epi64(al16, 1));
                if (one_pass_ok) {
                    qm = _mm256_max_epi32(_mm512_castsi512_si256(qm16), _mm512_extracti64x4_epi64(qm16, 1));
                    /* unsigned lanes widened before adding, as below */
                    qsq64 = _mm512_reduce_add_epi64(_mm512_add_epi64(
                        _mm512_cvtepu32_epi64(_mm512_castsi512_si256(qs16)),
                        _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(qs16, 1))));
                }
            }
#endif
            for (; k + 8 <= k1; k += 8) {
                __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k), inv8));
                q = _mm256_max_epi32(_mm256_min_epi32(q, lim8), nlim8);
                if (one_pass_ok) {
                    qm = _mm256_max_epi32(qm, _mm256_abs_epi32(q));
                    qs = _mm256_add_epi32(qs, _mm256_mullo_epi32(q, q));
                }
                const __m256i h = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(q), r256));
                const __m256i l = _mm256_sub_epi32(q, _mm256_slli_epi32(h, 7));
                ah = _mm256_add_epi32(ah, h);
                al = _mm256_add_epi32(al, l);
                /* bytes per lane: h0-3 l0-3 | h4-7 l4-7, then dwords 0 4 1 5: h0-7 l0-7 */
                const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(h, l), _mm256_setzero_si256());
                const __m128i hl = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, order));
                _mm_storel_epi64((__m128i *)(a.hi + k), hl);
                _mm_storel_epi64((__m128i *)(a.lo + k), _mm_unpackhi_epi64(hl, hl));
            }
            acc_hi = _mm_add_epi32(_mm256_castsi256_si128(ah), _mm256_extracti128_si256(ah, 1));
            acc_lo = _mm_add_epi32(_mm256_castsi256_si128(al), _mm256_extracti128_si256(al, 1));
            qmax4 = _mm_max_epi32(_mm256_castsi256_si128(qm), _mm256_extracti128_si256(qm, 1));
            /* two lanes' sums can pass 2^31: widen before adding */
            const __m256i qs64 = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(qs)),
                                                  _mm256_cvtepu32_epi64(_mm256_extracti128_si256(qs, 1)));
            qsq64 += _mm256_extract_epi64(qs64, 0) + _mm256_extract_epi64(qs64, 1) +
                     _mm256_extract_epi64(qs64, 2) + _mm256_extract_epi64(qs64, 3);
        }
        for (; k + 4 <= k1; k += 4) {
            __m128i q = _mm_cvtps_epi32(_mm_mul_ps(_mm_loadu_ps(x + k), inv));
            q = _mm_max_epi32(_mm_min_epi32(q, lim), nlim);
            if (one_pass_ok) {
                qmax4 = _mm_max_epi32(qmax4, _mm_abs_epi32(q));
                qsq4 = _mm_add_epi32(qsq4, _mm_mullo_epi32(q, q)); /* one step: <= 16256^2 per lane */
            }
            const __m128i h = _mm_cvtps_epi32(_mm_mul_ps(_mm_cvtepi32_ps(q), r128));
            const __m128i l = _mm_sub_epi32(q, _mm_slli_epi32(h, 7));
            acc_hi = _mm_add_epi32(acc_hi, h);
            acc_lo = _mm_add_epi32(acc_lo, l);
            const __m128i hl = _mm_packs_epi16(_mm_packs_epi32(h, l), _mm_setzero_si128());
            const int64_t b = _mm_cvtsi128_si64(hl);
            memcpy(a.hi + k, &b, 4);
            memcpy(a.lo + k, (const char *)&b + 4, 4);
        }
        acc_hi = _mm_add_epi32(acc_hi, _mm_shuffle_epi32(acc_hi, 0x4E));
        acc_hi = _mm_add_epi32(acc_hi, _mm_shuffle_epi32(acc_hi, 0xB1));
        acc_lo = _mm_add_epi32(acc_lo, _mm_shuffle_epi32(acc_lo, 0x4E));
        acc_lo = _mm_add_epi32(acc_lo, _mm_shuffle_epi32(acc_lo, 0xB1));
        a.shi[s] = (float)_mm_cvtsi128_si32(acc_hi);
        a.slo[s] = (float)_mm_cvtsi128_si32(acc_lo);
        qmax4 = _mm_max_epi32(qmax4, _mm_shuffle_epi32(qmax4, 0x4E));
        qmax4 = _mm_max_epi32(qmax4, _mm_shuffle_epi32(qmax4, 0xB1));
        const __m256i q4 = _mm256_cvtepu32_epi64(qsq4);
        qsq64 += _mm256_extract_epi64(q4, 0) + _mm256_extract_epi64(q4, 1) + _mm256_extract_epi64(q4, 2) +
                 _mm256_extract_epi64(q4, 3);
        if (one_pass_ok && lutrt_act_one_pass(_mm_cvtsi128_si32(qmax4), qsq64, k1 - k0)) { /* xq -> 128 hi */
            memset(a.lo + k0, 0, (size_t)(k1 - k0));
            a.slo[s] = -0.0f;
        }
    }
}

/* The row's two-pass int8 activation section (lutrt_precompute_acts_ref, bit-identical: the
 * max is exact, cvtps rounds half to even like nearbyintf and xq / 128 is exact).
 * Activation groups are multiples of 4. */
static void acts_i8(const lutrt_mma_desc *d, const float *x, const float *tscale,
                    void *tables_row) {
    const lutrt_acts_section a = lutrt_row_acts(d, tables_row);
    const int ag = lutrt_act_group(d), na = (d->K + ag - 1) / ag;
    if (lutrt_act_one_pass_allowed(d)) /* once per row, not per group */
        acts_groups(d, x, tscale, a, 1);
    else
        acts_groups(d, x, tscale, a, 0);
    /* the slots of finer groups stay unused: zeros, so rows are deterministic bytes */
    const size_t unused = (size_t)(d->K / 4 - na) * sizeof(float);
    memset(a.ascale + na, 0, unused);
    memset(a.shi + na, 0, unused);
    memset(a.slo + na, 0, unused);
}

/* Per-table scales of one whole grid block of 8 tables from their sums of |x| (asum):
 * tscale = lutrt_table_scale then lutrt_grid_scales, inv = 1 / tscale (0 where tscale is 0
 * or NaN); bit-identical to the scalar code (correctly rounded divisions, ceil, one unit
 * from libm per block). */
static void grid_block(const float *asum, float *tscale, float *inv) {
    const __m256 a = _mm256_loadu_ps(asum), zero = _mm256_setzero_ps();
    const __m256 finite = _mm256_cmp_ps(a, _mm256_set1_ps(FLT_MAX), _CMP_LE_OQ);
    const __m256 tiny = _mm256_cmp_ps(a, _mm256_set1_ps(LUTRT_TINY_SCALE), _CMP_LT_OQ);
    __m256 ts = _mm256_blendv_ps(_mm256_div_ps(a, _mm256_set1_ps(127.0f)), zero, tiny);
    ts = _mm256_blendv_ps(_mm256_set1_ps(__builtin_nanf("")), ts, finite);
    const __m256 pos = _mm256_cmp_ps(ts, zero, _CMP_GT_OQ); /* NaN: false */
    __m256 m8 = _mm256_and_ps(ts, pos);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float mx = _mm_cvtss_f32(m4);
    if (mx > 0.0f) { /* lutrt_grid_scales */
        float u = ldexpf(1.0f, ilogbf(mx) - LUTRT_GRID_SHIFT);
        if (ceilf(mx / u) >= LUTRT_GRID_MAX_MULT) u *= 2.0f;
        const __m256 U = _mm256_set1_ps(u);
        const __m256 c = _mm256_round_ps(_mm256_div_ps(ts, U), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
        const __m256 g = _mm256_mul_ps(c, U);
        ts = _mm256_blendv_ps(ts, g, pos);
    }
    _mm256_storeu_ps(tscale, ts);
    _mm256_storeu_ps(inv, _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), ts), pos));
}

void PRECOMPUTE_ROW(const lutrt_mma_desc *d, const float *x, void *tables_row, float *tscale,
                    float *sums) {
    const int J = d->K / 4, mirrored = d->mirrored;
    /* int8 tables: chunks of whole scale groups, at most 64 tables */
    const int jt = d->table_i8 ? d->scale_group / 4 : 1, per_chunk = jt * (64 / jt);
    float asum[64], inv[64];
    const int unread = lutrt_unread_section(d);
    /* the activation section alone (lutrt.h consumer_bits): a third of the precompute's time
     * at K = 576, M = 128 */
    if (unread == LUTRT_ENTRIES_UNREAD) {
        const __m256 big = _mm256_set1_ps(FLT_MAX), nan = _mm256_set1_ps(__builtin_nanf(""));
        for (int c0 = 0; c0 < J; c0 += per_chunk) {
            const int c1 = min_int(J, c0 + per_chunk);
            abs_sums(x, c0, c1, asum);
            int j = c0;
            if (jt == 1) /* 8 tables a step: NaN where !(asum <= FLT_MAX) */
                for (; j + 8 <= c1; j += 8) {
                    const __m256 ok = _mm256_cmp_ps(_mm256_loadu_ps(asum + (j - c0)), big, _CMP_LE_OQ);
                    _mm256_storeu_ps(tscale + j, _mm256_andnot_ps(ok, nan));
                }
            lutrt_mark_finite(d, asum + (j - c0), j, c1, tscale);
        }
        acts_i8(d, x, tscale, tables_row);
        return;
    }
    const patterns pt = {pattern(0, mirrored), pattern(1, mirrored), pattern(2, mirrored)};
    group_sums(d, x, sums);
    if (!d->table_i8) {
        float *t = (float *)tables_row;
        for (int j = 0; j < J; j++) {
            const float *x4 = x + 4 * j;
            __m256 lo = low_half(x4, &pt, mirrored);
            if (mirrored) {
                _mm256_storeu_ps(t + (size_t)j * 8, lo);
            } else {
                _mm256_storeu_ps(t + (size_t)j * 16, lo);
                _mm256_storeu_ps(t + (size_t)j * 16 + 8, _mm256_add_ps(lo, _mm256_broadcast_ss(x4 + 3)));
            }
        }
        return;
    }
    for (int c0 = 0; c0 < J; c0 += per_chunk) {
        const int c1 = min_int(J, c0 + per_chunk);
        abs_sums(x, c0, c1, asum);
        int s0 = c0;
        if (jt == 1) /* per-table scales, a grid block per ymm (c0 is a multiple of 64) */
            for (; s0 + LUTRT_GRID_TABLES <= c1; s0 += LUTRT_GRID_TABLES)
                grid_block(asum + (s0 - c0), tscale + s0, inv + (s0 - c0));
        for (; s0 < c1; s0 += jt) {
            const int s1 = min_int(c1, s0 + jt);
            /* table quantization (§3.4): scale = max_j sum_i |x_i| / 127 */
            float mx = 0.0f;
            int finite = 1;
            for (int j = s0; j < s1; j++) {
                if (!(asum[j - c0] <= FLT_MAX)) finite = 0;
                mx = asum[j - c0] > mx ? asum[j - c0] : mx;
            }
            const float scale = lutrt_table_scale(mx, finite);
            const float iv = scale > 0.0f ? 127.0f / mx : 0.0f;
            tscale[s0 / jt] = scale;
            for (int j = s0; j < s1; j++) inv[j - c0] = iv;
        }
        if (jt == 1) /* a partial last block: on the grid, 1 / tscale per entry (precompute.c) */
            for (int b0 = c0 + (c1 - c0) / LUTRT_GRID_TABLES * LUTRT_GRID_TABLES; b0 < c1;
                 b0 += LUTRT_GRID_TABLES) {
                const int b1 = min_int(c1, b0 + LUTRT_GRID_TABLES);
                lutrt_grid_scales(tscale + b0, b1 - b0);
                for (int j = b0; j < b1; j++) inv[j - c0] = tscale[j] > 0.0f ? 1.0f / tscale[j] : 0.0f;
            }
        tables_i8(x, c0, c1, inv, mirrored, &pt, (int8_t *)tables_row);
        /* groups with inv 0 (non-finite, tiny or zero): entries 0, whatever the SIMD path
         * computed from their inf / NaN (cvtps of NaN is INT_MIN, a defined -128 after packs) */
        for (int j = c0; j < c1; j++)
            if (inv[j - c0] == 0.0f) memset((int8_t *)tables_row + (size_t)j * (mirrored ? 8 : 16), 0, mirrored ? 8 : 16);
    }
    if (unread != LUTRT_ACTS_UNREAD) acts_i8(d, x, tscale, tables_row);
}
