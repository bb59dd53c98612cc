/* mma_i8act_avx512vnni.c — lut.mma at large M from the rows' int8 activations (AVX512-VNNI).
 *
 * At prefill sizes a LUT kernel pays B lookups per weight and token, while an int8
 * multiply-accumulate costs the same for any B. This kernel reads, instead of the tables, the
 * two-pass int8 activation section that lut.precompute writes after each int8 table row
 * (xq = 128 hi + lo, |hi| <= 127, |lo| <= 64, and per activation group t ascale, S_hi, S_lo;
 * lutrt.h) and computes
 *
 *   out[m, n] = sum_g s[n, g] * sum_{t in g} ascale[m, t] *
 *               (128 fma(-z[n, g], S_hi[m, t], I_hi) + fma(-z[n, g], S_lo[m, t], I_lo))
 *   I_hi = sum_{k in t} q[n, k] * hi[m, k],  I_lo = sum_{k in t} q[n, k] * lo[m, k]
 *                                                   (int32, vpdpbusd u8 x s8, two per word)
 *
 * with the unsigned codes q: mirrored formats are mapped back, s = 2 s', z = (z' + 2^B - 1)/2
 * (s(q - z) = s'(q' - z'), docs/design.md §3.3). S_hi, S_lo are sums of the *quantized*
 * activations and every term is an integer below 2^24, so codes equal to an integer zero
 * point give exactly 0.
 *
 * Code-byte weights (LUTRT_LAYOUT_CODE_BYTES) are that unpacked layout already: read in place.
 * Work: a thread takes one block of 32 weight rows at a time, unpacks its bit planes once
 * into uint8 [J][2][16 rows][4] (vpdpbusd layout: one zmm = 16 rows x 4 consecutive k; one
 * vpermd per plane and 16 rows maps a 4-bit code to 4 bytes, mirroring included) and runs
 * every token row against it, MR rows at a time (4 x MR int32 accumulators per activation
 * group, flushed into 2 x MR float ones).
 * Compiled only with -mavx512vnni (build.py); otherwise lutrt_mma_i8act_ptr is NULL and
 * lutrt_mma never takes this path.
 */
#include "lutrt_internal.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")


static int min_int(int a, int b) { return a < b ? a : b; }

#include "unpack_avx512.h"

/* Code-byte weights at few token rows stream from memory block after block, in memory order:
 * software prefetch (lutrt_gemv_prefetch). SmolLM2's 8-bit head (K = 576, N = 49152) at one
 * token on the 2-core Xeon VM: 10.1 -> 13.2 GB/s (interleaved medians). */
#define STREAM_MAX_M 4 /* token rows */

typedef struct {
    const int8_t *hi, *lo;
    const float *ascale, *shi, *slo;
} act_row;

ALWAYS_INLINE act_row row_at(const lutrt_mma_args *a, int m) {
    const lutrt_acts_section s = lutrt_row_acts(a->d, (const uint8_t *)a->tables + (size_t)m * a->row_bytes);
    return (act_row){s.hi, s.lo, s.ascale, s.shi, s.slo};
}

/* vpdpbusd through asm: gcc copies intrinsic accumulators around the loop (one vmovdqa per
 * vpdpbusd), which halved the kernel's speed. acc += a (u8) . b (s8), 4 bytes per lane. */
ALWAYS_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

ALWAYS_INLINE __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* I_hi[r][h], I_lo[r][h] = sum over tables js..je-1 of q . hi, q . lo for rows r < MR,
 * weight rows 16h..16h+15 (int32: |I_hi| <= 255 * 127 * 32 per activation group) */
ALWAYS_INLINE void dot_act_group(const uint8_t *q, const act_row *rows, int js, int je,
                                 const int MR, int stream, __m512i ih[][2], __m512i il[][2]) {
    UNROLL for (int r = 0; r < MR; r++) ih[r][0] = ih[r][1] = il[r][0] = il[r][1] = _mm512_setzero_si512();
    for (int j = js; j < je; j++) {
        if (stream) lutrt_gemv_prefetch(q + (size_t)j * 128, 128); /* see `tile` */
        const __m512i w0 = _mm512_loadu_si512(q + (size_t)j * 128);
        const __m512i w1 = _mm512_loadu_si512(q + (size_t)j * 128 + 64);
        UNROLL for (int r = 0; r < MR; r++) {
            const __m512i xh = bcast4(rows[r].hi + 4 * j), xl = bcast4(rows[r].lo + 4 * j);
            ih[r][0] = dpbusd(ih[r][0], w0, xh);
            ih[r][1] = dpbusd(ih[r][1], w1, xh);
            il[r][0] = dpbusd(il[r][0], w0, xl);
            il[r][1] = dpbusd(il[r][1], w1, xl);
        }
    }
}

/* Token rows m0..m0+MR-1 against the unpacked block blk (32 weight rows). Per activation
 * group: out += s * ascale * (128 fma(-z, S_hi, I_hi) + fma(-z, S_lo, I_lo)); each fma is exact
 * for an integer z (integers below 2^24), so codes equal to z give exactly 0. */
ALWAYS_INLINE void tile(const lutrt_mma_args *a, const uint8_t *q, int blk, int m0, const int MR) {
    const int J = a->J, stream = a->code_bytes && a->M <= STREAM_MAX_M;
    act_row rows[8];
    UNROLL for (int r = 0; r < MR; r++) rows[r] = row_at(a, m0 + r);
    __m512 oacc[8][2];
    __m512i ih[8][2], il[8][2];
    UNROLL for (int r = 0; r < MR; r++) oacc[r][0] = oacc[r][1] = _mm512_setzero_ps();
    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        __m512 z[2], s[2];
        lutrt_block_group_sz(a, blk, g, z, s);
        for (int js = j0, t = j0 / a->ja; js < j1; js += a->ja, t++) {
            dot_act_group(q, rows, js, min_int(j1, js + a->ja), MR, stream, ih, il);
            UNROLL for (int r = 0; r < MR; r++) {
                const __m512 as = _mm512_set1_ps(rows[r].ascale[t]);
                const __m512 Sh = _mm512_set1_ps(rows[r].shi[t]), Sl = _mm512_set1_ps(rows[r].slo[t]);
                UNROLL for (int h = 0; h < 2; h++) {
                    const __m512 vh = _mm512_fnmadd_ps(z[h], Sh, _mm512_cvtepi32_ps(ih[r][h]));
                    const __m512 vl = _mm512_fnmadd_ps(z[h], Sl, _mm512_cvtepi32_ps(il[r][h]));
                    const __m512 v = _mm512_fmadd_ps(vh, _mm512_set1_ps(128.0f), vl);
                    oacc[r][h] = _mm512_fmadd_ps(v, _mm512_mul_ps(s[h], as), oacc[r][h]);
                }
            }
        }
    }
    const int n0 = blk * LUTRT_BLOCK_N, rows_n = min_int(LUTRT_BLOCK_N, a->N - n0);
    UNROLL for (int r = 0; r < MR; r++) {
        lutrt_store_block_row(a->out + (size_t)(m0 + r) * a->N + n0, rows_n, oacc[r][0], oacc[r][1]);
    }
}

#ifndef MR_MAX
#define MR_MAX 4 /* 4 int32 + 2 float accumulators per row: 24 of the 32 zmm */
#endif
#define TILE(MR)                                                                              \
    static __attribute__((noinline)) void tile_##MR(const lutrt_mma_args *a, const uint8_t *q, \
                                                    int blk, int m0) {                        \
        tile(a, q, blk, m0, MR);                                                              \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
typedef void (*tile_fn)(const lutrt_mma_args *, const uint8_t *, int, int);
static const tile_fn tiles[7] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

static void run_block(const lutrt_mma_args *a, const uint8_t *q, int blk) {
    int m = 0;
    for (; m + MR_MAX <= a->M; m += MR_MAX) tiles[MR_MAX](a, q, blk, m);
    if (m < a->M) tiles[a->M - m](a, q, blk, m);
}

static void blocks_task(void *ctx, int b0, int b1) {
    const lutrt_mma_args *a = (const lutrt_mma_args *)ctx;
    if (a->code_bytes) { /* the weights are the unpacked layout already */
        for (int blk = b0; blk < b1; blk++) run_block(a, a->w + (size_t)blk * a->J * 128, blk);
        return;
    }
    uint8_t *q = lutrt_unpack_scratch((size_t)a->J * 128);
    if (!q) { /* out of memory */
        lutrt_mma_i8act_c_blocks(a, b0, b1); /* the same formula, no scratch */
        return;
    }
    lutrt_unpacker u;
    lutrt_unpacker_init(&u, a->bits, a->mirrored);
    for (int blk = b0; blk < b1; blk++) {
        lutrt_unpack_block(a, blk, &u, q);
        run_block(a, q, blk);
    }
}

static int mma_i8act(const lutrt_mma_args *a) {
    /* few token rows: runs of blocks per claim keep each thread streaming its weights */
    lutrt_parallel_for(a->d->num_threads, a->NB, a->M <= 4 ? 8 : 1, blocks_task, (void *)a);
    return LUTRT_OK;
}

const lutrt_mma_call_fn lutrt_mma_i8act_ptr = mma_i8act;
#else
const lutrt_mma_call_fn lutrt_mma_i8act_ptr = 0;
#endif
