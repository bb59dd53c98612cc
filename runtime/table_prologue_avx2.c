/* table_prologue_avx2.c — the per-call prologue of lut.mma on per-table int8 tables (jt == 1)
 * with AVX2: the all-ones entries S (mma.c's table_full_sums) and the integer multipliers of the
 * scale grid (mma.c's table_multipliers), one grid block of LUTRT_GRID_TABLES = 8 tables per
 * ymm. Bit-identical to the portable pair (the same float products, truncations and int32
 * sums); blocks that are partial or hold a NaN scale take the portable code. A decode step
 * runs this once per GEMV before the threads start (SmolLM2: 120 calls per token), where the
 * scalar loops cost ~2 us per call. */
#include <immintrin.h>
#include <string.h>

#include "lutrt_internal.h"

/* inclusive prefix sums of the 8 int32 lanes */
static inline __m256i prefix_sum8(__m256i x) {
    x = _mm256_add_epi32(x, _mm256_slli_si256(x, 4));
    x = _mm256_add_epi32(x, _mm256_slli_si256(x, 8));
    const __m256i carry = _mm256_permutevar8x32_epi32(x, _mm256_set1_epi32(3));
    return _mm256_add_epi32(x, _mm256_blend_epi32(_mm256_setzero_si256(), carry, 0xF0));
}

/* the largest of 8 int32 lanes */
static inline int hmax8(__m256i x) {
    __m128i m = _mm_max_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4E));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xB1));
    return _mm_cvtsi128_si32(m);
}

/* Returns 1 when it filled block b of row m (8 whole tables, no NaN scale); else 0 and the
 * caller runs the portable code for the block. */
static int block_avx2(const lutrt_mma_args *a, int m, int b, float *tsum, int16_t *mult,
                      float *unit, int32_t *zs) {
    const int j0 = b * LUTRT_GRID_TABLES, nb = (a->J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    if (j0 + LUTRT_GRID_TABLES > a->J) return 0;
    const float *ts = a->tscale + (size_t)m * a->NS + j0;
    const __m256i bits = _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(ts)),
                                          _mm256_set1_epi32(0x7fffffff));
    const uint32_t e = ((uint32_t)hmax8(bits) >> 23) & 0xffu; /* ilogb(max) + 127 */
    if (e == 0xffu) return 0;                                  /* NaN in the block */
    /* S = the all-ones entry of each table (plain: entry 15; mirrored: -entry 0) */
    const int8_t *t = (const int8_t *)a->tables + (size_t)m * a->row_bytes + (a->mirrored ? 0 : 15);
    int32_t s[LUTRT_GRID_TABLES];
    for (int i = 0; i < LUTRT_GRID_TABLES; i++) s[i] = t[(size_t)(j0 + i) * a->entries];
    __m256i S = _mm256_loadu_si256((const __m256i *)s);
    if (a->mirrored) S = _mm256_sub_epi32(_mm256_setzero_si256(), S);
    _mm256_storeu_ps(tsum + (size_t)m * a->NS + j0, _mm256_cvtepi32_ps(S));
    uint32_t ubits = 0, ibits = 0;
    if (e > LUTRT_GRID_SHIFT) ubits = (e - LUTRT_GRID_SHIFT) << 23, ibits = (254u + LUTRT_GRID_SHIFT - e) << 23;
    float u, inv;
    memcpy(&u, &ubits, sizeof u);
    memcpy(&inv, &ibits, sizeof inv);
    unit[(size_t)m * nb + b] = u;
    const __m256i q = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_loadu_ps(ts), _mm256_set1_ps(inv)));
    _mm_storeu_si128((__m128i *)(mult + (size_t)m * a->J + j0),
                     _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)));
    _mm256_storeu_si256((__m256i *)(zs + (size_t)m * a->J + j0), prefix_sum8(_mm256_mullo_epi32(q, S)));
    return 1;
}

void lutrt_table_prologue_avx2(const lutrt_mma_args *a, float *tsum, int16_t *mult, float *unit,
                               int32_t *zs, int m0, int m1) {
    const int nb = (a->J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    for (int m = m0; m < m1; m++)
        for (int b = 0; b < nb; b++)
            if (!block_avx2(a, m, b, tsum, mult, unit, zs))
                lutrt_table_prologue_block(a, m, b, tsum, mult, unit, zs);
}
