/* lmma_ref.c — portable reference lut.mma tile kernel: one scalar lookup per (row, table,
 * bit plane), straight from the formula in lutrt.h. It reads the same packed layout as the
 * SIMD kernels, so it is their oracle, and it serves f32 tables on every CPU. */
#include <math.h>

#include "lutrt_internal.h"

static int min_int(int a, int b) { return a < b ? a : b; }

/* Bit-serial lookup sum of one (row m, weight row, table j): sum_b 2^b L(c_b), with the sign
 * convention of mirrored codes (c >= 8 looks up -T[c & 7]). */
static double lookups_f64(const float *t, const uint8_t *chunk, int bits, int row, int mirrored) {
    double v = 0.0;
    for (int b = 0; b < bits; b++) {
        int c = lutrt_code_at(chunk, bits, b, row);
        double e = mirrored ? ((c & 8) ? -t[c & 7] : t[c]) : t[c];
        v += (double)(1 << b) * e;
    }
    return v;
}

static int lookups_i8(const int8_t *t, const uint8_t *chunk, int bits, int row, int mirrored) {
    int v = 0;
    for (int b = 0; b < bits; b++) {
        int c = lutrt_code_at(chunk, bits, b, row);
        int e = mirrored ? ((c & 8) ? -t[c & 7] : t[c]) : t[c];
        v += (1 << b) * e;
    }
    return v;
}

static float zero_at(const lutrt_mma_args *a, size_t idx) {
    return a->zeros ? a->zeros[idx] : a->zimp;
}

/* f32 tables: per table, (sum_b 2^b L(c_b)) - z F_j in double. Each term is a float times a
 * small integer, so for codes that all equal an integer zero point z it is exactly 0. */
void lutrt_mma_f32_ref(const lutrt_mma_args *a, int blk_begin, int blk_end) {
    const int full = a->mirrored ? 0 : 15;
    const double fsign = a->mirrored ? -1.0 : 1.0;
    for (int m = 0; m < a->M; m++) {
        const float *tab = (const float *)((const uint8_t *)a->tables + (size_t)m * a->row_bytes);
        for (int blk = blk_begin; blk < blk_end; blk++) {
            const uint8_t *wb = a->w + (size_t)blk * a->J * a->chunk;
            int rows = min_int(LUTRT_BLOCK_N, a->N - blk * LUTRT_BLOCK_N);
            for (int r = 0; r < rows; r++) {
                float acc = 0.0f;
                for (int g = 0; g < a->NG; g++) {
                    int j1 = min_int(a->J, (g + 1) * a->jg);
                    size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N + r;
                    const double z = zero_at(a, si);
                    double l = 0.0;
                    for (int j = g * a->jg; j < j1; j++) {
                        const float *t = tab + (size_t)j * a->entries;
                        l += lookups_f64(t, wb + (size_t)j * a->chunk, a->bits, r, a->mirrored) -
                             z * (fsign * t[full]);
                    }
                    acc += a->scales[si] * (float)l;
                }
                a->out[(size_t)m * a->N + (size_t)blk * LUTRT_BLOCK_N + r] = acc;
            }
        }
    }
}

void lutrt_mma_i8_ref(const lutrt_mma_args *a, int blk_begin, int blk_end) {
    for (int m = 0; m < a->M; m++) {
        const int8_t *tab = (const int8_t *)a->tables + (size_t)m * a->row_bytes;
        const float *ts = a->tscale + (size_t)m * a->NS, *S = a->tsum + (size_t)m * a->NS;
        for (int blk = blk_begin; blk < blk_end; blk++) {
            const uint8_t *wb = a->w + (size_t)blk * a->J * a->chunk;
            int rows = min_int(LUTRT_BLOCK_N, a->N - blk * LUTRT_BLOCK_N);
            for (int r = 0; r < rows; r++) {
                float acc = 0.0f;
                for (int g = 0; g < a->NG; g++) {
                    int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
                    size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N + r;
                    const float z = zero_at(a, si);
                    float l = 0.0f;
                    /* scale groups never straddle weight groups (checked in desc.c) */
                    for (int t = j0 / a->jt; t * a->jt < j1; t++) {
                        int isum = 0; /* <= 16 tables * (2^B - 1) * 127 */
                        for (int j = t * a->jt; j < min_int(j1, (t + 1) * a->jt); j++)
                            isum += lookups_i8(tab + (size_t)j * a->entries,
                                               wb + (size_t)j * a->chunk, a->bits, r, a->mirrored);
                        /* zero point per scale group, against the same rounded entries */
                        l += ts[t] * fmaf(-z, S[t], (float)isum);
                    }
                    acc += a->scales[si] * l;
                }
                a->out[(size_t)m * a->N + (size_t)blk * LUTRT_BLOCK_N + r] = acc;
            }
        }
    }
}
