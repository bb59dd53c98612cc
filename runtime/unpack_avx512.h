/* unpack_avx512.h — weight codes of one block of 32 rows unpacked to bytes, for the kernels
 * that multiply codes instead of looking up tables (mma_i8act_avx512vnni.c,
 * mma_f32dq_avx512.c). Include only from files compiled with AVX-512F/BW; each includer gets
 * its own copy of the per-thread scratch buffer. */
#ifndef LUTRT_UNPACK_AVX512_H
#define LUTRT_UNPACK_AVX512_H

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"
#include "unpack_scratch.h"

/* lut[b] lane c: the 4 bytes of a code c of plane b, byte i = bit i of the pattern << b; a
 * mirrored code c >= 8 stands for pattern 8 | (~c & 7) (packing.mirror_codes). */
static inline void lutrt_spread_luts(int bits, int mirrored, __m512i *lut) {
    for (int b = 0; b < bits; b++) {
        uint32_t v[16];
        for (int c = 0; c < 16; c++) {
            const int p = (mirrored && (c & 8)) ? (8 | (~c & 7)) : c;
            uint32_t d = 0;
            for (int i = 0; i < 4; i++) d |= (uint32_t)((p >> i) & 1) << (8 * i + b);
            v[c] = d;
        }
        lut[b] = _mm512_loadu_si512(v);
    }
}

/* Block blk's codes -> q[j][h][16][4] unsigned (h: rows 0..15 / 16..31); the packed layout is
 * lutrt_code_at's. vpermd reads only the low 4 bits of each index lane. */
static inline void lutrt_unpack_block(const lutrt_mma_args *a, int blk, const __m512i *lut, uint8_t *q) {
    const int bits = a->bits, npairs = bits >> 1;
    const __m512i sh_lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    const __m512i sh_hi = _mm512_setr_epi32(8, 8, 8, 8, 8, 8, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12);
    const uint8_t *c = a->w + (size_t)blk * a->J * a->chunk;
    for (int j = 0; j < a->J; j++, c += a->chunk) {
        __m512i q0 = _mm512_setzero_si512(), q1 = _mm512_setzero_si512();
        for (int pp = 0; pp < npairs; pp++) {
            /* word i: plane 2pp of rows i / 16+i in bits 0-3 / 4-7, plane 2pp+1 in 8-11 / 12-15 */
            const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(c + 32 * pp)));
            const __m512i l0 = lut[2 * pp], l1 = lut[2 * pp + 1];
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(w, l0));
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(_mm512_srli_epi32(w, 8), l1));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srli_epi32(w, 4), l0));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srli_epi32(w, 12), l1));
        }
        if (bits & 1) {
            /* word i: rows i, 8+i, 16+i, 24+i in bits 0-3, 4-7, 8-11, 12-15 */
            const __m256i w8 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(c + 32 * npairs)));
            const __m512i w = _mm512_broadcast_i64x4(w8);
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(_mm512_srlv_epi32(w, sh_lo), lut[bits - 1]));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srlv_epi32(w, sh_hi), lut[bits - 1]));
        }
        _mm512_store_si512(q + (size_t)j * 128, q0);
        _mm512_store_si512(q + (size_t)j * 128 + 64, q1);
    }
}

/* Scales and zero points of weight group g of block blk for the unsigned codes of
 * lutrt_unpack_block (rows 16h..16h+15): mirrored formats store s' = s / 2 and
 * z' = 2z + 1 - 2^B, so s = 2 s', z = (z' + 2^B - 1) / 2 (exact for integer z). */
static inline void lutrt_block_group_sz(const lutrt_mma_args *a, int blk, int g, __m512 z[2],
                                        __m512 s[2]) {
    const size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N;
    const float sfac = a->mirrored ? 2.0f : 1.0f;
    const float zadd = a->mirrored ? (float)((1 << a->bits) - 1) : 0.0f;
    for (int h = 0; h < 2; h++) {
        const __m512 zz = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16 * h) : _mm512_set1_ps(a->zimp);
        z[h] = a->mirrored ? _mm512_mul_ps(_mm512_add_ps(zz, _mm512_set1_ps(zadd)), _mm512_set1_ps(0.5f)) : zz;
        s[h] = _mm512_mul_ps(_mm512_loadu_ps(a->scales + si + 16 * h), _mm512_set1_ps(sfac));
    }
}

/* One output row of a 32-row block: rows_n <= 32 floats from two zmm. */
static inline void lutrt_store_block_row(float *o, int rows_n, __m512 lo, __m512 hi) {
    if (rows_n == LUTRT_BLOCK_N) {
        _mm512_storeu_ps(o, lo);
        _mm512_storeu_ps(o + 16, hi);
    } else {
        float tmp[32];
        _mm512_storeu_ps(tmp, lo);
        _mm512_storeu_ps(tmp + 16, hi);
        memcpy(o, tmp, (size_t)rows_n * sizeof(float));
    }
}



#endif
