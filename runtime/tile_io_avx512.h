/* tile_io_avx512.h — what the AVX-512 LUT tiles (lmma_avx512.c, lmma_avx512vbmi.c) share
 * around their lookups: the per-row and per-block input pointers, and the float accumulators
 * facc (the current weight group) and oacc (the output) of [row][block][32 weight rows].
 * Include only after the AVX-512 intrinsics (or SIMDe's), from files compiled for them. */
#ifndef LUTRT_TILE_IO_AVX512_H
#define LUTRT_TILE_IO_AVX512_H

#include <string.h>

#include "lutrt_internal.h"

#define LUTRT_TILE_INLINE static inline __attribute__((always_inline))

/* Packed weights of blocks blk0.., int8 table rows and (per-table scales) multiplier rows of
 * rows m0.. (mb only when a->tmult is set). */
LUTRT_TILE_INLINE void lutrt_tile_inputs(const lutrt_mma_args *a, int m0, int blk0, const int MT,
                                         const int NBK, const uint8_t *wb[4], const int8_t *tb[2],
                                         const int16_t *mb[2]) {
    _Pragma("GCC unroll 8") for (int bi = 0; bi < NBK; bi++)
        wb[bi] = a->w + (size_t)(blk0 + bi) * a->J * a->chunk;
    _Pragma("GCC unroll 8") for (int r = 0; r < MT; r++) {
        tb[r] = (const int8_t *)a->tables + (size_t)(m0 + r) * a->row_bytes;
        mb[r] = a->tmult ? a->tmult + (size_t)(m0 + r) * a->J : NULL;
    }
}

/* oacc[r][bi] = 0 for the tile's MT rows and NBK blocks */
LUTRT_TILE_INLINE void lutrt_tile_zero(const int MT, const int NBK, float oacc[2][4][32]) {
    _Pragma("GCC unroll 8") for (int r = 0; r < MT; r++)
        _Pragma("GCC unroll 8") for (int bi = 0; bi < NBK; bi++)
            _Pragma("GCC unroll 8") for (int q = 0; q < 32; q += 16)
                _mm512_store_ps(oacc[r][bi] + q, _mm512_setzero_ps());
}

/* End of weight group g: oacc[r][bi] += s[n, g] * facc[r][bi]. */
LUTRT_TILE_INLINE void lutrt_group_done(const lutrt_mma_args *a, int blk0, int g, const int MT,
                                        const int NBK, float facc[2][4][32], float oacc[2][4][32]) {
    _Pragma("GCC unroll 8") for (int bi = 0; bi < NBK; bi++) {
        const size_t si = ((size_t)(blk0 + bi) * a->NG + g) * LUTRT_BLOCK_N;
        _Pragma("GCC unroll 8") for (int r = 0; r < MT; r++)
            _Pragma("GCC unroll 8") for (int q = 0; q < 32; q += 16) {
                const __m512 s = _mm512_loadu_ps(a->scales + si + q);
                const __m512 f = _mm512_load_ps(facc[r][bi] + q);
                _mm512_store_ps(oacc[r][bi] + q, _mm512_fmadd_ps(s, f, _mm512_load_ps(oacc[r][bi] + q)));
            }
    }
}

/* The tile's output rows m0.. into out (a partial last block writes its rows only). */
LUTRT_TILE_INLINE void lutrt_store_rows(const lutrt_mma_args *a, int m0, int blk0, const int MT,
                                        const int NBK, float oacc[2][4][32]) {
    _Pragma("GCC unroll 8") for (int r = 0; r < MT; r++)
        _Pragma("GCC unroll 8") for (int bi = 0; bi < NBK; bi++) {
            const int n0 = (blk0 + bi) * LUTRT_BLOCK_N;
            const int rows = a->N - n0 < LUTRT_BLOCK_N ? a->N - n0 : LUTRT_BLOCK_N;
            memcpy(a->out + (size_t)(m0 + r) * a->N + n0, oacc[r][bi], (size_t)rows * sizeof(float));
        }
}

#endif
