/* attention_avx512.c — attention kernels with AVX-512F (zmm, 16 floats), see attention.c.
 *
 * Same structure as attention_avx2.c with masked loads/stores for the tails of D (D = 8, 48,
 * ... need no special case). Compiled for real only with -mavx512f (build.py); otherwise, and
 * in SIMDe emulation builds, lutrt_attn_ops_avx512_ptr is NULL and the "avx512" kernel runs
 * the AVX2 attention kernels.
 */
#include "lutrt_internal.h"

#if defined(__AVX512F__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#include <math.h>

static inline __mmask16 lanes(int rem) { return rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1); }

static inline __m256 fold(__m512 a) { /* 16 lanes -> 8 partial sums */
    return _mm256_add_ps(_mm512_castps512_ps256(a),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

static inline __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                           __m256 a6, __m256 a7) {
    __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

/* 8 keys of a head dimension that is a multiple of 16 (64, 128: no masks, unrolled) */
static inline __m256 dot8_d16(const float *q, const float *kj, const int D) {
    __m512 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
    for (int d = 0; d < D; d += 16) {
        const __m512 qv = _mm512_loadu_ps(q + d);
        for (int i = 0; i < 8; i++)
            a[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(kj + (size_t)i * D + d), a[i]);
    }
    return hsum8(fold(a[0]), fold(a[1]), fold(a[2]), fold(a[3]), fold(a[4]), fold(a[5]),
                 fold(a[6]), fold(a[7]));
}

static void scores_avx512(const float *q, const float *k, int n, int D, float scale, float *s) {
    const __m256 vscale = _mm256_set1_ps(scale);
    int j = 0;
    if (D == 64 || D == 128) {
        for (; j + 8 <= n; j += 8) {
            const float *kj = k + (size_t)j * D;
            const __m256 r = D == 64 ? dot8_d16(q, kj, 64) : dot8_d16(q, kj, 128);
            _mm256_storeu_ps(s + j, _mm256_mul_ps(vscale, r));
        }
    }
    for (; j + 8 <= n; j += 8) {
        const float *kj = k + (size_t)j * D;
        __m512 a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
        for (int d = 0; d < D; d += 16) {
            __mmask16 m = lanes(D - d);
            __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
            for (int i = 0; i < 8; i++)
                a[i] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, kj + (size_t)i * D + d), a[i]);
        }
        __m256 r = hsum8(fold(a[0]), fold(a[1]), fold(a[2]), fold(a[3]), fold(a[4]), fold(a[5]),
                         fold(a[6]), fold(a[7]));
        _mm256_storeu_ps(s + j, _mm256_mul_ps(vscale, r));
    }
    for (; j < n; j++) {
        const float *kj = k + (size_t)j * D;
        __m512 a = _mm512_setzero_ps();
        for (int d = 0; d < D; d += 16) {
            __mmask16 m = lanes(D - d);
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), _mm512_maskz_loadu_ps(m, kj + d), a);
        }
        s[j] = scale * _mm512_reduce_add_ps(a);
    }
}

static float max_avx512(const float *s, int n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n; j += 16)
        m = _mm512_mask_max_ps(m, lanes(n - j), m, _mm512_maskz_loadu_ps(lanes(n - j), s + j));
    return _mm512_reduce_max_ps(m);
}

/* exp(x) for x <= 0: Cephes expf polynomial, 2^n applied with vscalefps; 0 below -87. */
static inline __m512 exp_neg(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.0f);
    __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_max_ps(x, lo);
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(keep, y, fx);
}

static float exp_sum_avx512(float *s, int n, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 t = lanes(n - j);
        __m512 e = _mm512_maskz_mov_ps(t, exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), vm)));
        _mm512_mask_storeu_ps(s + j, t, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static void accumulate_avx512(float *acc, float alpha, const float *p, const float *v, int n, int D) {
    const __m512 va = _mm512_set1_ps(alpha);
    int d = 0;
    for (; d + 64 <= D; d += 64) {
        __m512 a[4], b[4];
        for (int i = 0; i < 4; i++) {
            a[i] = _mm512_mul_ps(va, _mm512_loadu_ps(acc + d + 16 * i));
            b[i] = _mm512_setzero_ps();
        }
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *v0 = v + (size_t)j * D + d, *v1 = v0 + D;
            __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
            for (int i = 0; i < 4; i++) {
                a[i] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * i), a[i]);
                b[i] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + 16 * i), b[i]);
            }
        }
        if (j < n) {
            const float *v0 = v + (size_t)j * D + d;
            __m512 p0 = _mm512_set1_ps(p[j]);
            for (int i = 0; i < 4; i++) a[i] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * i), a[i]);
        }
        for (int i = 0; i < 4; i++) _mm512_storeu_ps(acc + d + 16 * i, _mm512_add_ps(a[i], b[i]));
    }
    for (; d < D; d += 16) {
        __mmask16 t = lanes(D - d);
        __m512 a = _mm512_mul_ps(va, _mm512_maskz_loadu_ps(t, acc + d)), b = _mm512_setzero_ps();
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *v0 = v + (size_t)j * D + d;
            a = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_maskz_loadu_ps(t, v0), a);
            b = _mm512_fmadd_ps(_mm512_set1_ps(p[j + 1]), _mm512_maskz_loadu_ps(t, v0 + D), b);
        }
        if (j < n)
            a = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_maskz_loadu_ps(t, v + (size_t)j * D + d), a);
        _mm512_mask_storeu_ps(acc + d, t, _mm512_add_ps(a, b));
    }
}

static void widen_avx512(const uint16_t *h, float *f, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    for (; i < n; i++) f[i] = lutrt_f16_to_f32(h[i]);
}

/* ---- 16 queries in lanes (lutrt_attn_lanes) ------------------------------------------- */

/* scale * q . k of keys kb + j .. for the NK keys at k (rows D apart), -inf in the lanes that
 * do not see the key; into sb[j..] (one vector per key); returns max(bmax, those scores) */
#define LANES_SCORES(NK)                                                                      \
    static inline __m512 scores_##NK(const lutrt_attn_lanes *st, const float *k, int key,      \
                                     __m512 bmax, float (*sb)[16]) {                           \
        const int D = st->D, h = D / 2;                                                        \
        __m512 a[NK], b[NK]; /* the two halves of D: shorter chains, half the rounding */      \
        for (int t = 0; t < NK; t++) a[t] = b[t] = _mm512_setzero_ps();                        \
        for (int d = 0; d < h; d++) {                                                          \
            const __m512 qa = _mm512_load_ps(st->qt[d]), qb = _mm512_load_ps(st->qt[h + d]);   \
            for (int t = 0; t < NK; t++) {                                                     \
                a[t] = _mm512_fmadd_ps(qa, _mm512_set1_ps(k[(size_t)t * D + d]), a[t]);         \
                b[t] = _mm512_fmadd_ps(qb, _mm512_set1_ps(k[(size_t)t * D + h + d]), b[t]);     \
            }                                                                                  \
        }                                                                                      \
        for (int t = 0; t < NK; t++) a[t] = _mm512_add_ps(a[t], b[t]);                         \
        const __m512i lo = _mm512_loadu_si512(st->lo), hi = _mm512_loadu_si512(st->hi);         \
        const __m512 scale = _mm512_set1_ps(st->scale), ninf = _mm512_set1_ps(-INFINITY);      \
        for (int t = 0; t < NK; t++) {                                                         \
            const __m512i kv = _mm512_set1_epi32(key + t);                                     \
            const __mmask16 see = _mm512_cmp_epi32_mask(lo, kv, _MM_CMPINT_LE) &               \
                                  _mm512_cmp_epi32_mask(kv, hi, _MM_CMPINT_LT);                 \
            const __m512 sc = _mm512_mask_mul_ps(ninf, see, a[t], scale);                       \
            _mm512_store_ps(sb[t], sc);                                                        \
            bmax = _mm512_max_ps(bmax, sc);                                                    \
        }                                                                                      \
        return bmax;                                                                           \
    }
LANES_SCORES(8)
LANES_SCORES(1)

/* The online softmax of attention.c for the 16 lanes at once over keys kb..kb+n-1 (n <= 64):
 * scores (8 keys per sweep over D: each element of q a vector load, each of k a broadcast),
 * m' = max(m, scores), alpha = exp(m - m'), p = exp(s - m'), l' = alpha l + sum p,
 * acct' = alpha acct + sum_j p_j v_j (16 output dims per sweep over the keys). Lanes that saw
 * no key yet keep m = -inf, l = 0, acct = 0. */
static void lanes_block_avx512(lutrt_attn_lanes *st, const float *k, const float *v, int kb, int n) {
    const int D = st->D;
    float sb[64][16] __attribute__((aligned(64)));
    __m512 bmax = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) bmax = scores_8(st, k + (size_t)j * D, kb + j, bmax, sb + j);
    for (; j < n; j++) bmax = scores_1(st, k + (size_t)j * D, kb + j, bmax, sb + j);
    const __m512 ninf = _mm512_set1_ps(-INFINITY), m = _mm512_loadu_ps(st->m);
    const __m512 mn = _mm512_max_ps(m, bmax);
    const __mmask16 live = _mm512_cmp_ps_mask(mn, ninf, _CMP_GT_OQ); /* a visible key so far */
    const __m512 alpha = _mm512_maskz_mov_ps(live, exp_neg(_mm512_sub_ps(m, mn)));
    __m512 sum = _mm512_setzero_ps();
    for (j = 0; j < n; j++) {
        const __m512 p = _mm512_maskz_mov_ps(live, exp_neg(_mm512_sub_ps(_mm512_load_ps(sb[j]), mn)));
        _mm512_store_ps(sb[j], p);
        sum = _mm512_add_ps(sum, p);
    }
    _mm512_storeu_ps(st->l, _mm512_fmadd_ps(alpha, _mm512_loadu_ps(st->l), sum));
    _mm512_storeu_ps(st->m, _mm512_mask_mov_ps(m, live, mn));
    for (int d0 = 0; d0 < D; d0 += 16) {
        __m512 acc[16];
        for (int c = 0; c < 16; c++) acc[c] = _mm512_mul_ps(alpha, _mm512_load_ps(st->acct[d0 + c]));
        for (j = 0; j < n; j++) {
            const __m512 p = _mm512_load_ps(sb[j]);
            const float *vj = v + (size_t)j * D + d0;
            for (int c = 0; c < 16; c++) acc[c] = _mm512_fmadd_ps(p, _mm512_set1_ps(vj[c]), acc[c]);
        }
        for (int c = 0; c < 16; c++) _mm512_store_ps(st->acct[d0 + c], acc[c]);
    }
}

/* rows r[0..15] -> columns (r[i] lane k becomes r[k] lane i) */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
            t[8 * i + 4 + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
    }
}

static void lanes_load_avx512(lutrt_attn_lanes *st, const float *const *q, int nq) {
    for (int d0 = 0; d0 < st->D; d0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < nq ? _mm512_loadu_ps(q[i] + d0) : _mm512_setzero_ps();
        transpose16(r);
        for (int c = 0; c < 16; c++) {
            _mm512_store_ps(st->qt[d0 + c], r[c]);
            _mm512_store_ps(st->acct[d0 + c], _mm512_setzero_ps());
        }
    }
}

static void lanes_store_avx512(const lutrt_attn_lanes *st, float *const *out, int nq, const float *mult) {
    for (int d0 = 0; d0 < st->D; d0 += 16) {
        __m512 r[16];
        for (int c = 0; c < 16; c++) r[c] = _mm512_load_ps(st->acct[d0 + c]);
        transpose16(r);
        for (int i = 0; i < nq; i++) _mm512_storeu_ps(out[i] + d0, _mm512_mul_ps(r[i], _mm512_set1_ps(mult[i])));
    }
}

static const lutrt_attn_ops ops_avx512 = {"avx512", scores_avx512, max_avx512, exp_sum_avx512,
                                          accumulate_avx512, widen_avx512, lanes_block_avx512,
                                          lanes_load_avx512, lanes_store_avx512};
const lutrt_attn_ops *const lutrt_attn_ops_avx512_ptr = &ops_avx512;
#else
const lutrt_attn_ops *const lutrt_attn_ops_avx512_ptr = 0;
#endif
