/* mma_i8act_c.c — the int8-activation formula of lutrt.h ("Large M") in portable C, on either
 * weight layout: the kernel code-byte weights (LUTRT_LAYOUT_CODE_BYTES) run on CPUs without
 * AVX2, the SIMD kernels' fallback when their scratch cannot be allocated, and the reference
 * they are tested against (lutrt_set_i8act_kernel("c")).
 *
 *   out[m, n] = sum_g s[n, g] * sum_{t in g} ascale[m, t] *
 *               (128 fma(-z[n, g], S_hi[m, t], I_hi) + fma(-z[n, g], S_lo[m, t], I_lo))
 *   I_hi = sum_{k in t} q[n, k] hi[m, k],  I_lo = sum_{k in t} q[n, k] lo[m, k]   (int32)
 *
 * in the order and roundings of mma_i8act_avx512vnni.c (the unsigned codes q with s = 2 s',
 * z = (z' + 2^B - 1) / 2 for mirrored formats), so codes equal to an integer zero point give
 * exactly 0. Threads split the weight blocks like the other kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"

static int min_int(int a, int b) { return a < b ? a : b; }

/* The 4 unsigned codes of row r (< 32) of block blk for table j (bit planes: mirroring undone). */
static void codes4(const lutrt_mma_args *a, int blk, int j, int r, uint8_t q[4]) {
    const uint8_t *chunk = a->w + ((size_t)blk * a->J + (size_t)j) * a->chunk;
    if (a->code_bytes) {
        memcpy(q, chunk + 64 * (r / 16) + 4 * (r % 16), 4);
        return;
    }
    memset(q, 0, 4);
    for (int b = 0; b < a->bits; b++) {
        int c = lutrt_code_at(chunk, a->bits, b, r);
        if (a->mirrored && (c & 8)) c = 8 | (~c & 7); /* the sign-bit convention, undone */
        for (int i = 0; i < 4; i++) q[i] |= (uint8_t)(((c >> i) & 1) << b);
    }
}

/* Unsigned codes of block blk: q[r * 4J + k] for rows r < 32. */
static void block_codes(const lutrt_mma_args *a, int blk, uint8_t *q) {
    for (int r = 0; r < LUTRT_BLOCK_N; r++)
        for (int j = 0; j < a->J; j++) codes4(a, blk, j, r, q + (size_t)r * 4 * a->J + 4 * (size_t)j);
}

/* Output rows of weight block blk for every token row; q: the block's codes (block_codes), or
 * NULL to decode them as they are read (no memory for a buffer). */
static void block_rows(const lutrt_mma_args *a, int blk, const uint8_t *q) {
    const size_t K = 4 * (size_t)a->J;
    const int n0 = blk * LUTRT_BLOCK_N, rows_n = min_int(LUTRT_BLOCK_N, a->N - n0);
    const float sfac = a->mirrored ? 2.0f : 1.0f;
    const float zadd = a->mirrored ? (float)((1 << a->bits) - 1) : 0.0f;
    for (int m = 0; m < a->M; m++) {
        const lutrt_acts_section x =
            lutrt_row_acts(a->d, (const uint8_t *)a->tables + (size_t)m * a->row_bytes);
        for (int r = 0; r < rows_n; r++) {
            const uint8_t *qr = q ? q + (size_t)r * K : NULL;
            float acc = 0.0f;
            for (int g = 0; g < a->NG; g++) {
                const size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N + (size_t)r;
                const float zz = a->zeros ? a->zeros[si] : a->zimp;
                const float z = a->mirrored ? (zz + zadd) * 0.5f : zz;
                const float s = a->scales[si] * sfac;
                const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
                for (int js = j0, t = j0 / a->ja; js < j1; js += a->ja, t++) {
                    int32_t ih = 0, il = 0;
                    for (int j = js; j < min_int(j1, js + a->ja); j++) {
                        uint8_t own[4];
                        const uint8_t *c = qr ? qr + 4 * (size_t)j : own;
                        if (!qr) codes4(a, blk, j, r, own);
                        for (int i = 0; i < 4; i++) {
                            ih += c[i] * x.hi[4 * j + i];
                            il += c[i] * x.lo[4 * j + i];
                        }
                    }
                    const float vh = fmaf(-z, x.shi[t], (float)ih);
                    const float vl = fmaf(-z, x.slo[t], (float)il);
                    acc = fmaf(fmaf(vh, 128.0f, vl), s * x.ascale[t], acc);
                }
            }
            a->out[(size_t)m * a->N + n0 + r] = acc;
        }
    }
}

static void blocks_task(void *ctx, int b0, int b1) {
    const lutrt_mma_args *a = (const lutrt_mma_args *)ctx;
    /* code bytes are read in place; bit planes decoded once per block (or per read, without
     * memory for the buffer) */
    uint8_t *q = a->code_bytes ? NULL : malloc((size_t)LUTRT_BLOCK_N * 4 * (size_t)a->J);
    for (int blk = b0; blk < b1; blk++) {
        if (q) block_codes(a, blk, q);
        block_rows(a, blk, q);
    }
    free(q);
}

int lutrt_mma_i8act_c(const lutrt_mma_args *a) {
    lutrt_parallel_for(a->d->num_threads, a->NB, 1, blocks_task, (void *)a);
    return LUTRT_OK;
}

void lutrt_mma_i8act_c_blocks(const lutrt_mma_args *a, int blk_begin, int blk_end) {
    blocks_task((void *)a, blk_begin, blk_end);
}
