/* pt_zero_avx512.h — the zero-point term of the per-table int8 tiles (lmma_avx512.c,
 * lmma_avx512vbmi.c). Include only after the AVX-512 intrinsics (or SIMDe's), from files
 * compiled for them.
 *
 * A grid block of <= LUTRT_GRID_TABLES tables yields, per weight row, the int32 lookup sum
 * I = sum_j mult_j sum_b 2^b L_b and the integer zs = sum_j mult_j S_j (S_j the all-ones entry,
 * mult_j < 2^7, so zs < 8 * 127 * 127 < 2^17, exact in float). The block's contribution before
 * the unit is I - z zs, formed here with one rounding:
 *   B <= 7: |I| <= 8 * 127 * (2^B - 1) * 127 < 2^24, so I converts to float exactly and one
 *           fma gives I - z zs rounded once.
 *   B = 8:  |I| < 2^25 may not convert exactly, so the integer part zi of z (|zi| <= 2^B) is
 *           taken in int32, I - zi zs (< 2^31) converted once and (z - zi) zs subtracted in
 *           float.
 * Either way codes that all equal an integer zero point give exactly 0 (I = z zs). A z far
 * outside the code range (GGUF Q4_1: -m/d) cannot cancel against I (I - z zs is then dominated
 * by (q - z) x with |q - z| large), so the one rounding stays relative to the result. */
#ifndef LUTRT_PT_ZERO_AVX512_H
#define LUTRT_PT_ZERO_AVX512_H

#if defined(LUTRT_AVX512_SIMDE) /* SIMDe 0.7 has no emulated _mm512_cvtps_epi32: two halves */
static inline __m512i lutrt_cvtps_epi32(__m512 a) {
    const __m512i b = _mm512_castps_si512(a);
    const __m256i lo = _mm256_cvtps_epi32(_mm256_castsi256_ps(_mm512_castsi512_si256(b)));
    const __m256i hi = _mm256_cvtps_epi32(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(b, 1)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
#else
#define lutrt_cvtps_epi32 _mm512_cvtps_epi32
#endif

static inline __attribute__((always_inline)) __m512 lutrt_pt_zero_point(__m512i I, __m512 z, __m512i Zi,
                                                                        __m512 Z, const int BITS) {
    if (BITS <= 7) return _mm512_fnmadd_ps(z, Z, _mm512_cvtepi32_ps(I));
    const __m512 lim = _mm512_set1_ps((float)(1 << BITS));
    const __m512i zi = lutrt_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(z, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim));
    const __m512 rest = _mm512_sub_ps(z, _mm512_cvtepi32_ps(zi));
    return _mm512_fnmadd_ps(rest, Z, _mm512_cvtepi32_ps(_mm512_sub_epi32(I, _mm512_mullo_epi32(zi, Zi))));
}

#endif
