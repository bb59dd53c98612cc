/* unpack_avx2.h — a block's bit planes to unsigned codes on AVX2 (mma_i8act_avx2.c,
 * mma_f32dq_avx2.c): int16 q16[J][8 row quads][4 rows][4 k] (row n = 4 quad + row, so
 * code (n, k = 4j + i) sits at q16[128 j + 4 n + i]), mirrored patterns mapped back to
 * unsigned codes (the callers then use s = 2 s', z = (z' + 2^B - 1) / 2). Included only by
 * files compiled with -mavx2 (*_avx2.c). */
#ifndef LUTRT_UNPACK_AVX2_H
#define LUTRT_UNPACK_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#include "lutrt_internal.h"

/* Unpacking, 8 rows x 4 codes per ymm (byte 4r + t = code of row r, activation t of the
 * table): a row's plane pattern c (4 bits, bit t for activation t) is broadcast to its 4
 * bytes (vpshufb), and bit t of byte t becomes 2^b: (c & 2^t) == 2^t, masked to 2^b.
 * Lane l of a plane-pair chunk's nibble vector holds rows 8l..8l+7 (byte 2i + s, plane 2p + s),
 * so a 128-bit-lane vpshufb gives rows (0-3, 8-11) with CTRL_A and (4-7, 12-15) with CTRL_B. */
static inline __attribute__((always_inline)) __m256i lutrt_unpack_ctrl(int first, int s) {
    const char c0 = (char)(first + s), c1 = (char)(first + 2 + s), c2 = (char)(first + 4 + s),
               c3 = (char)(first + 6 + s);
    return _mm256_setr_epi8(c0, c0, c0, c0, c1, c1, c1, c1, c2, c2, c2, c2, c3, c3, c3, c3,
                            c0, c0, c0, c0, c1, c1, c1, c1, c2, c2, c2, c2, c3, c3, c3, c3);
}

static inline __attribute__((always_inline)) __m256i lutrt_plane_bits(__m256i nib, __m256i ctl, __m256i bit) {
    const __m256i m = _mm256_set1_epi32(0x08040201);
    const __m256i x = _mm256_and_si256(_mm256_shuffle_epi8(nib, ctl), m);
    return _mm256_and_si256(_mm256_cmpeq_epi8(x, m), bit);
}

/* The codes of one table (4 activations) of a 32-row block, chunk = its 16 B bytes of bit
 * planes: W[0..3] hold rows (0-3, 8-11), (4-7, 12-15), (16-19, 24-27), (20-23, 28-31), byte
 * 4i + t = the code of the i-th row of that set at activation t; mirrored patterns are mapped
 * back first (packing.mirror_codes is an involution). */
static inline __attribute__((always_inline)) void lutrt_unpack_table_avx2(const lutrt_mma_args *a,
                                                                       const uint8_t *chunk,
                                                                       __m256i W[4]) {
    const int B = a->bits, npairs = B / 2;
    const __m256i low4 = _mm256_set1_epi8(15);
    const __m256i mir = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9, 8,
                                         0, 1, 2, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9, 8);
    const __m256i ca0 = lutrt_unpack_ctrl(0, 0), cb0 = lutrt_unpack_ctrl(8, 0), ca1 = lutrt_unpack_ctrl(0, 1), cb1 = lutrt_unpack_ctrl(8, 1);
    W[0] = W[1] = W[2] = W[3] = _mm256_setzero_si256();
    for (int p = 0; p < npairs; p++) {
        const __m256i P = _mm256_loadu_si256((const __m256i *)(chunk + 32 * p));
        __m256i lo = _mm256_and_si256(P, low4), hi = _mm256_and_si256(_mm256_srli_epi16(P, 4), low4);
        if (a->mirrored) {
            lo = _mm256_shuffle_epi8(mir, lo);
            hi = _mm256_shuffle_epi8(mir, hi);
        }
        for (int s = 0; s < 2; s++) {
            const __m256i bit = _mm256_set1_epi8((char)(1 << (2 * p + s)));
            const __m256i ca = s ? ca1 : ca0, cb = s ? cb1 : cb0;
            W[0] = _mm256_or_si256(W[0], lutrt_plane_bits(lo, ca, bit));
            W[1] = _mm256_or_si256(W[1], lutrt_plane_bits(lo, cb, bit));
            W[2] = _mm256_or_si256(W[2], lutrt_plane_bits(hi, ca, bit));
            W[3] = _mm256_or_si256(W[3], lutrt_plane_bits(hi, cb, bit));
        }
    }
    if (B & 1) { /* byte 2i+h: low nibble row i + 16h, high nibble row 8 + i + 16h */
        const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(chunk + 32 * npairs)));
        __m256i c = _mm256_blend_epi32(_mm256_and_si256(v, low4),
                                       _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), 0xF0);
        if (a->mirrored) c = _mm256_shuffle_epi8(mir, c);
        const __m256i bit = _mm256_set1_epi8((char)(1 << (B - 1)));
        W[0] = _mm256_or_si256(W[0], lutrt_plane_bits(c, ca0, bit));
        W[1] = _mm256_or_si256(W[1], lutrt_plane_bits(c, cb0, bit));
        W[2] = _mm256_or_si256(W[2], lutrt_plane_bits(c, ca1, bit));
        W[3] = _mm256_or_si256(W[3], lutrt_plane_bits(c, cb1, bit));
    }
}

/* Codes of block blk as int16 q16[j][8 row quads][4 rows][4] (lutrt_unpack_table_avx2's
 * W[w] widened: row quads u (low lane) and u + 2, u = 4 (w >> 1) + (w & 1)). */
static void lutrt_unpack_block_avx2(const lutrt_mma_args *a, int blk, int16_t *q16) {
    if (a->code_bytes) { /* [J][2][16][4] bytes: rows already in order, widened to int16 */
        const uint8_t *src = a->w + (size_t)blk * a->J * 128;
        for (size_t i = 0; i < (size_t)a->J * 128; i += 16)
            _mm256_store_si256((__m256i *)(q16 + i),
                               _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src + i))));
        return;
    }
    const uint8_t *wb = a->w + (size_t)blk * a->J * a->chunk;
    for (int j = 0; j < a->J; j++) {
        __m256i W[4];
        lutrt_unpack_table_avx2(a, wb + (size_t)j * a->chunk, W);
        __m256i *dst = (__m256i *)(q16 + (size_t)j * 128);
        _Pragma("GCC unroll 4") for (int w = 0; w < 4; w++) {
            const int u = 4 * (w >> 1) + (w & 1);
            _mm256_store_si256(dst + u, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(W[w])));
            _mm256_store_si256(dst + u + 2, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(W[w], 1)));
        }
    }
}

/* Codes of block blk (bit planes) as bytes q8[j][w][32] = lutrt_unpack_table_avx2's W[w]. */
static inline void lutrt_unpack_block_bytes_avx2(const lutrt_mma_args *a, int blk, uint8_t *q8) {
    const uint8_t *wb = a->w + (size_t)blk * a->J * a->chunk;
    for (int j = 0; j < a->J; j++) {
        __m256i W[4];
        lutrt_unpack_table_avx2(a, wb + (size_t)j * a->chunk, W);
        _Pragma("GCC unroll 4") for (int w = 0; w < 4; w++)
            _mm256_store_si256((__m256i *)(q8 + (size_t)j * 128) + w, W[w]);
    }
}

#endif
