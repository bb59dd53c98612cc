/* attention_avx2.c — attention kernels with AVX2+FMA (ymm, 8 floats), see attention.c.
 *
 * Scores take 8 keys at a time, one accumulator per key over D, then one hadd tree turns the
 * 8 accumulators into 8 scores. The P.V update keeps 4 ymm of the output row (32 floats) for
 * two key chains, so 8 FMAs are in flight. D need not be a multiple of 8 (masked tails).
 */
#include <immintrin.h>
#include <math.h>

#include "lutrt_internal.h"

static const int32_t tail_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256i tail_mask(int rem) { /* first rem lanes, 0 < rem < 8 */
    return _mm256_loadu_si256((const __m256i *)(tail_bits + 8 - rem));
}

/* (a0..a7) -> (sum a0, ..., sum a7) */
static inline __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5,
                           __m256 a6, __m256 a7) {
    __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    /* h0 = (k0..k3 of lanes 0-3 | k0..k3 of lanes 4-7), h1 likewise for k4..k7 */
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

static inline float hsum(__m256 a) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static void scores_avx2(const float *q, const float *k, int n, int D, float scale, float *s) {
    const int full = D & ~7, rem = D & 7;
    const __m256i tm = rem ? tail_mask(rem) : _mm256_setzero_si256();
    const __m256 vscale = _mm256_set1_ps(scale);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const float *kj = k + (size_t)j * D;
        __m256 a[8];
        for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
        for (int d = 0; d < full; d += 8) {
            __m256 qv = _mm256_loadu_ps(q + d);
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + (size_t)i * D + d), a[i]);
        }
        if (rem) {
            __m256 qv = _mm256_maskload_ps(q + full, tm);
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kj + (size_t)i * D + full, tm), a[i]);
        }
        _mm256_storeu_ps(s + j, _mm256_mul_ps(vscale, hsum8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])));
    }
    for (; j < n; j++) {
        const float *kj = k + (size_t)j * D;
        __m256 a = _mm256_setzero_ps();
        for (int d = 0; d < full; d += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kj + d), a);
        if (rem)
            a = _mm256_fmadd_ps(_mm256_maskload_ps(q + full, tm), _mm256_maskload_ps(kj + full, tm), a);
        s[j] = scale * hsum(a);
    }
}

static float max_avx2(const float *s, int n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    float r = _mm_cvtss_f32(x);
    for (; j < n; j++) r = s[j] > r ? s[j] : r;
    return r;
}

/* exp(x) for x <= 0 (Cephes expf: 2^n * poly(r), r = x - n ln2), ~2 ulp; 0 below -87. */
static inline __m256 exp_neg(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), keep);
}

static float exp_sum_avx2(float *s, int n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (j < n) {
        __m256i tm = tail_mask(n - j);
        __m256 e = exp_neg(_mm256_sub_ps(_mm256_maskload_ps(s + j, tm), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(s + j, tm, e);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum(sum);
}

static void accumulate_avx2(float *acc, float alpha, const float *p, const float *v, int n, int D) {
    const __m256 va = _mm256_set1_ps(alpha);
    int d = 0;
    for (; d + 32 <= D; d += 32) {
        __m256 a[4], b[4];
        for (int i = 0; i < 4; i++) {
            a[i] = _mm256_mul_ps(va, _mm256_loadu_ps(acc + d + 8 * i));
            b[i] = _mm256_setzero_ps();
        }
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *v0 = v + (size_t)j * D + d, *v1 = v0 + D;
            __m256 p0 = _mm256_broadcast_ss(p + j), p1 = _mm256_broadcast_ss(p + j + 1);
            for (int i = 0; i < 4; i++) {
                a[i] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * i), a[i]);
                b[i] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(v1 + 8 * i), b[i]);
            }
        }
        if (j < n) {
            const float *v0 = v + (size_t)j * D + d;
            __m256 p0 = _mm256_broadcast_ss(p + j);
            for (int i = 0; i < 4; i++) a[i] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * i), a[i]);
        }
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(acc + d + 8 * i, _mm256_add_ps(a[i], b[i]));
    }
    for (; d < D; d += 8) {
        int rem = D - d < 8 ? D - d : 8;
        __m256i tm = rem < 8 ? tail_mask(rem) : _mm256_set1_epi32(-1);
        __m256 a = _mm256_mul_ps(va, _mm256_maskload_ps(acc + d, tm)), b = _mm256_setzero_ps();
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *v0 = v + (size_t)j * D + d;
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_maskload_ps(v0, tm), a);
            b = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j + 1), _mm256_maskload_ps(v0 + D, tm), b);
        }
        if (j < n)
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_maskload_ps(v + (size_t)j * D + d, tm), a);
        _mm256_maskstore_ps(acc + d, tm, _mm256_add_ps(a, b));
    }
}

static void widen_avx2(const uint16_t *h, float *f, size_t n) { /* F16C */
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) f[i] = lutrt_f16_to_f32(h[i]);
}

const lutrt_attn_ops lutrt_attn_ops_avx2 = {"avx2", scores_avx2, max_avx2, exp_sum_avx2,
                                             accumulate_avx2, widen_avx2, NULL, NULL, NULL};
