/* mma_f32dq_avx512.c — lut.mma on f32 tables (the lossless mode) at large M: dequantized
 * weights times f32 activations with FMA, instead of table lookups.
 *
 * A LUT kernel pays B lookups per weight and token; at prefill sizes a float GEMM on weights
 * dequantized once per block costs 2 FLOP per weight and token for any B. From
 * lutrt_f32dq_min_m() tokens on (lutrt.h), lutrt_mma on f32 tables runs this kernel:
 *
 *   x[m, k]  from the f32 table row itself: plain tables hold x[4j+i] as entry 1 << i exactly;
 *            mirrored ones give x[4j+i] = (T[1 << i] - T[0]) / 2 for i < 3 and
 *            x[4j+3] = -(T[0] + T[7]) / 2 (one rounding of the 4-term sums, as in the tables);
 *   w[n, k]  = s[n, g] * (q[n, k] - z[n, g]) in f32 from the unsigned codes q of
 *            lutrt_unpack_block (mirrored formats: s = 2 s', z = (z' + 2^B - 1) / 2), so codes
 *            equal to the zero point give w = 0 exactly (W = 0 gives exactly 0);
 *   out[m, n] = sum_k x[m, k] w[n, k], f32 FMA in k order.
 *
 * The result is the float matmul of the dequantized weights: like the f32-table kernels it is
 * exact up to float32 rounding (NMSE ~1e-14 against float64), not bit-identical to them.
 * Work: a thread takes one block of 32 weight rows at a time, dequantizes it into a per-thread
 * buffer w[K][32] (4 KiB per 32 activations; it stays in L2) and runs every token row against
 * it, MR = 12 rows at a time (24 zmm accumulators, the x[m, k] broadcast from memory).
 * Compiled with -mavx512f -mavx512bw (build.py); under SIMDe emulation or without AVX-512BW,
 * lutrt_mma_f32dq_ptr is NULL and lutrt_mma never takes this path.
 */
#include "lutrt_internal.h"

#if defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#include "unpack_avx512.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")
#define MR_MAX 12

static int min_int(int a, int b) { return a < b ? a : b; }

/* Codes q[j][h][16][4] of block blk -> w[k][32] f32 = s (q - z) per weight group. */
static void dequantize_block(const lutrt_mma_args *a, int blk, const uint8_t *q, float *w) {
    const __m512i ff = _mm512_set1_epi32(0xff);
    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
        __m512 z[2], s[2];
        lutrt_block_group_sz(a, blk, g, z, s);
        for (int j = j0; j < j1; j++) {
            UNROLL for (int h = 0; h < 2; h++) {
                const __m512i v = _mm512_load_si512(q + (size_t)j * 128 + 64 * h);
                UNROLL for (int i = 0; i < 4; i++) {
                    const __m512 c = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * i), ff));
                    _mm512_store_ps(w + (size_t)(4 * j + i) * 32 + 16 * h,
                                    _mm512_mul_ps(_mm512_sub_ps(c, z[h]), s[h]));
                }
            }
        }
    }
}

/* out[m0 .. m0+MR-1, block blk] = x rows . w */
ALWAYS_INLINE void tile(const lutrt_mma_args *a, const float *x, const float *w, int blk, int m0,
                        const int MR) {
    __m512 acc[MR_MAX][2];
    UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const float *xr = x + (size_t)m0 * a->K;
    for (int k = 0; k < a->K; k++) {
        const __m512 w0 = _mm512_load_ps(w + (size_t)k * 32), w1 = _mm512_load_ps(w + (size_t)k * 32 + 16);
        UNROLL for (int r = 0; r < MR; r++) {
            const __m512 xb = _mm512_set1_ps(xr[(size_t)r * a->K + k]);
            acc[r][0] = _mm512_fmadd_ps(w0, xb, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(w1, xb, acc[r][1]);
        }
    }
    const int n0 = blk * LUTRT_BLOCK_N, rows_n = min_int(LUTRT_BLOCK_N, a->N - n0);
    UNROLL for (int r = 0; r < MR; r++) {
        lutrt_store_block_row(a->out + (size_t)(m0 + r) * a->N + n0, rows_n, acc[r][0], acc[r][1]);
    }
}

#define TILE(MR)                                                                               \
    static __attribute__((noinline)) void tile_##MR(const lutrt_mma_args *a, const float *x,   \
                                                    const float *w, int blk, int m0) {         \
        tile(a, x, w, blk, m0, MR);                                                            \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) TILE(7) TILE(8) TILE(9) TILE(10) TILE(11) TILE(12)
typedef void (*tile_fn)(const lutrt_mma_args *, const float *, const float *, int, int);
static const tile_fn tiles[MR_MAX + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6,
                                          tile_7, tile_8, tile_9, tile_10, tile_11, tile_12};

static void blocks_task(void *ctx, int b0, int b1) {
    const lutrt_f32dq_job *job = (const lutrt_f32dq_job *)ctx;
    const lutrt_mma_args *a = job->a;
    /* one scratch: codes (128 J bytes) then w (32 K floats = 512 J bytes) */
    uint8_t *q = lutrt_unpack_scratch((size_t)a->J * 640);
    if (!q) { /* out of memory: the table kernel needs no scratch */
        lutrt_current_kernel()->mma_f32(a, b0, b1);
        return;
    }
    float *w = (float *)(q + (size_t)a->J * 128);
    lutrt_unpacker u;
    lutrt_unpacker_init(&u, a->bits, a->mirrored);
    for (int blk = b0; blk < b1; blk++) {
        lutrt_unpack_block(a, blk, &u, q);
        dequantize_block(a, blk, q, w);
        int m = 0;
        for (; m + MR_MAX <= a->M; m += MR_MAX) tiles[MR_MAX](a, job->x, w, blk, m);
        if (m < a->M) tiles[a->M - m](a, job->x, w, blk, m);
    }
}

static int mma_f32dq(const lutrt_mma_args *a) { return lutrt_f32dq_run(a, blocks_task); }

const lutrt_mma_call_fn lutrt_mma_f32dq_ptr = mma_f32dq;
#else
const lutrt_mma_call_fn lutrt_mma_f32dq_ptr = 0;
#endif
