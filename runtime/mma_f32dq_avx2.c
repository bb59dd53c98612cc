/* mma_f32dq_avx2.c — lut.mma on f32 tables (the lossless mode) at large M on AVX2 CPUs:
 * dequantized weights times f32 activations with FMA (mma_f32dq_avx512.c is the same path for
 * AVX-512 CPUs; lutrt_f32dq_kernel picks one).
 *
 * The same formula as mma_f32dq_avx512.c, in the same order:
 *   x[m, k]   rebuilt from the f32 table rows (lutrt_acts_from_f32_tables),
 *   w[n, k]   = s[n, g] * (q[n, k] - z[n, g]) in f32 (mirrored formats: s = 2 s',
 *             z = (z' + 2^B - 1) / 2), so codes equal to the zero point give w = 0 exactly,
 *   out[m, n] = sum_k x[m, k] w[n, k], one f32 FMA per k in k order,
 * so both kernels give bit-identical outputs (test_mma_f32dq.py checks this where both run).
 * Work: a thread takes one block of 32 weight rows at a time, unpacks its codes
 * (unpack_avx2.h) and dequantizes them into a per-thread buffer w[K][32], then runs every
 * token row against it, 6 rows x 16 weight rows at a time (12 ymm accumulators, x broadcast
 * from memory, each 64-byte w row read once per 6 tokens).
 * Compiled with -mavx2 -mfma -mf16c (build.py, "*_avx2.c"); without them
 * lutrt_mma_f32dq_avx2_ptr is NULL.
 */
#include "lutrt_internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "unpack_avx2.h"
#include "unpack_scratch.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define MR_MAX 6

static int min_int(int a, int b) { return a < b ? a : b; }

/* Codes q16[j][8 row quads][4 rows][4 k] of block blk -> w[k][32] f32 = s (q - z). */
static void dequantize_block(const lutrt_mma_args *a, int blk, const int16_t *q16, float *w) {
    const float sfac = a->mirrored ? 2.0f : 1.0f;
    const float zadd = a->mirrored ? (float)((1 << a->bits) - 1) : 0.0f;
    for (int g = 0; g < a->NG; g++) {
        const size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N;
        float z[LUTRT_BLOCK_N], s[LUTRT_BLOCK_N];
        for (int n = 0; n < LUTRT_BLOCK_N; n++) { /* as lutrt_block_group_sz */
            const float zz = a->zeros ? a->zeros[si + n] : a->zimp;
            z[n] = a->mirrored ? (zz + zadd) * 0.5f : zz;
            s[n] = a->scales[si + n] * sfac;
        }
        const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
        for (int j = j0; j < j1; j++) {
            const int16_t *qj = q16 + (size_t)j * 128;
            for (int i = 0; i < 4; i++) {
                float *wk = w + (size_t)(4 * j + i) * 32;
                for (int n = 0; n < LUTRT_BLOCK_N; n++) wk[n] = ((float)qj[4 * n + i] - z[n]) * s[n];
            }
        }
    }
}

/* out[m0 .. m0+MR-1, rows 16h .. 16h+15 of block blk] = x rows . w */
ALWAYS_INLINE void tile(const lutrt_mma_args *a, const float *x, const float *w, int blk, int m0,
                        int h, const int MR) {
    __m256 acc[MR_MAX][2];
    UNROLL for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const float *xr = x + (size_t)m0 * a->K;
    const float *wh = w + 16 * h;
    for (int k = 0; k < a->K; k++) {
        const __m256 w0 = _mm256_load_ps(wh + (size_t)k * 32), w1 = _mm256_load_ps(wh + (size_t)k * 32 + 8);
        UNROLL for (int r = 0; r < MR; r++) {
            const __m256 xb = _mm256_broadcast_ss(xr + (size_t)r * a->K + k);
            acc[r][0] = _mm256_fmadd_ps(w0, xb, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w1, xb, acc[r][1]);
        }
    }
    const int n0 = blk * LUTRT_BLOCK_N + 16 * h;
    const int cols = a->N - n0 < 16 ? a->N - n0 : 16;
    UNROLL for (int r = 0; r < MR; r++) {
        float *o = a->out + (size_t)(m0 + r) * a->N + n0;
        if (cols == 16) {
            _mm256_storeu_ps(o, acc[r][0]);
            _mm256_storeu_ps(o + 8, acc[r][1]);
        } else {
            float tmp[16];
            _mm256_storeu_ps(tmp, acc[r][0]);
            _mm256_storeu_ps(tmp + 8, acc[r][1]);
            memcpy(o, tmp, (size_t)cols * sizeof(float));
        }
    }
}

#define TILE(MR)                                                                               \
    static __attribute__((noinline)) void tile_##MR(const lutrt_mma_args *a, const float *x,   \
                                                    const float *w, int blk, int m0, int h) {  \
        tile(a, x, w, blk, m0, h, MR);                                                         \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
typedef void (*tile_fn)(const lutrt_mma_args *, const float *, const float *, int, int, int);
static const tile_fn tiles[MR_MAX + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

static void blocks_task(void *ctx, int b0, int b1) {
    const lutrt_f32dq_job *job = (const lutrt_f32dq_job *)ctx;
    const lutrt_mma_args *a = job->a;
    /* one scratch: codes (int16, 256 J bytes) then w (32 K floats = 512 J bytes) */
    uint8_t *buf = lutrt_unpack_scratch((size_t)a->J * 768);
    if (!buf) { /* out of memory: the table kernel needs no scratch */
        lutrt_current_kernel()->mma_f32(a, b0, b1);
        return;
    }
    int16_t *q16 = (int16_t *)buf;
    float *w = (float *)(buf + (size_t)a->J * 256);
    for (int blk = b0; blk < b1; blk++) {
        lutrt_unpack_block_avx2(a, blk, q16);
        dequantize_block(a, blk, q16, w);
        const int halves = a->N - blk * LUTRT_BLOCK_N > 16 ? 2 : 1;
        for (int h = 0; h < halves; h++) {
            int m = 0;
            for (; m + MR_MAX <= a->M; m += MR_MAX) tiles[MR_MAX](a, job->x, w, blk, m, h);
            if (m < a->M) tiles[a->M - m](a, job->x, w, blk, m, h);
        }
    }
}

static int mma_f32dq_avx2(const lutrt_mma_args *a) { return lutrt_f32dq_run(a, blocks_task); }

const lutrt_mma_call_fn lutrt_mma_f32dq_avx2_ptr = mma_f32dq_avx2;
#else
const lutrt_mma_call_fn lutrt_mma_f32dq_avx2_ptr = 0;
#endif
