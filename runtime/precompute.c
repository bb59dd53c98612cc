/* precompute.c — lut.precompute: activation rows -> lookup tables, int8 table scales and
 * group sums (docs/design.md §2, §3.3-3.4). The entry points validate and dispatch; the
 * portable row builder here is also the reference for precompute_avx2.c. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"

static int min_int(int a, int b) { return a < b ? a : b; }
static int cdiv_int(int a, int b) { return (a + b - 1) / b; }

/* sums[g] = sum of x over weight group g (the last group may be partial). */
static void group_sums(const lutrt_mma_desc *d, const float *x, float *sums) {
    int ng = lutrt_num_groups(d);
    for (int g = 0; g < ng; g++) {
        int k1 = min_int(d->K, (g + 1) * d->group);
        float s = 0.0f;
        for (int k = g * d->group; k < k1; k++) s += x[k];
        sums[g] = s;
    }
}

/* Float entries of one table from 4 activations. 16 entries: T[p] = sum_i x_i bit_i(p);
 * 8 entries (symmetrized): T[p] = sum_i x_i (2 bit_i(p) - 1), bit 3 of p being 0. */
static void table_f32(const float *x4, int mirrored, float *t) {
    if (mirrored) {
        for (int p = 0; p < 8; p++) {
            float v = (p & 1) ? x4[0] : -x4[0];
            v += (p & 2) ? x4[1] : -x4[1];
            v += (p & 4) ? x4[2] : -x4[2];
            t[p] = v - x4[3];
        }
    } else {
        for (int p = 0; p < 16; p++) {
            float v = (p & 1) ? x4[0] : 0.0f;
            v += (p & 2) ? x4[1] : 0.0f;
            v += (p & 4) ? x4[2] : 0.0f;
            t[p] = v + ((p & 8) ? x4[3] : 0.0f);
        }
    }
}

void lutrt_precompute_acts_ref(const lutrt_mma_desc *d, const float *x, const float *tscale,
                               void *tables_row) {
    const lutrt_acts_section a = lutrt_row_acts(d, tables_row);
    const int ag = lutrt_act_group(d), na = cdiv_int(d->K, ag), sg = d->scale_group;
    const int one_pass_ok = lutrt_act_one_pass_allowed(d); /* once per row, not per group */
    for (int s = 0; s < na; s++) {
        const int k0 = s * ag, k1 = min_int(d->K, k0 + ag);
        float mx = 0.0f;
        for (int k = k0; k < k1; k++) mx = fabsf(x[k]) > mx ? fabsf(x[k]) : mx;
        /* a group overlapping a non-finite table scale group: same poisoning, no cast of
         * inf / NaN */
        int finite = 1;
        for (int t = k0 / sg; t <= (k1 - 1) / sg; t++) finite &= !isnan(tscale[t]);
        const float scale = lutrt_act_scale(mx, finite);
        a.ascale[s] = scale;
        if (!(scale > 0.0f)) {
            memset(a.hi + k0, 0, (size_t)(k1 - k0));
            memset(a.lo + k0, 0, (size_t)(k1 - k0));
            a.shi[s] = a.slo[s] = 0.0f;
            continue;
        }
        const float inv = LUTRT_ACT_QMAX / mx;
        int shi = 0, slo = 0;
        int64_t qmax = 0, qsq = 0;
        for (int k = k0; k < k1; k++) {
            float q = nearbyintf(x[k] * inv); /* round half to even, |q| <= 16256 */
            q = q > LUTRT_ACT_QMAX ? LUTRT_ACT_QMAX : (q < -LUTRT_ACT_QMAX ? -LUTRT_ACT_QMAX : q);
            const float h = nearbyintf(q * (1.0f / 128.0f)); /* exact quotient, half to even */
            a.hi[k] = (int8_t)h;
            a.lo[k] = (int8_t)(q - 128.0f * h);
            shi += (int)h;
            slo += (int)(q - 128.0f * h);
            const int64_t qi = (int64_t)q;
            qmax = llabs(qi) > qmax ? llabs(qi) : qmax;
            qsq += qi * qi;
        }
        a.shi[s] = (float)shi;
        a.slo[s] = (float)slo;
        if (one_pass_ok && lutrt_act_one_pass(qmax, qsq, k1 - k0)) { /* one int8 pass: xq -> 128 hi */
            memset(a.lo + k0, 0, (size_t)(k1 - k0));
            a.slo[s] = -0.0f;
        }
    }
    /* the slots of finer groups stay unused: zeros, so rows are deterministic bytes */
    const size_t unused = (size_t)(d->K / 4 - na) * sizeof(float);
    memset(a.ascale + na, 0, unused);
    memset(a.shi + na, 0, unused);
    memset(a.slo + na, 0, unused);
}

/* sum_i |x_i| of the table on x4[0..3], summed as every precompute sums it */
static float table_abs_sum(const float *x4) {
    return (fabsf(x4[0]) + fabsf(x4[1])) + (fabsf(x4[2]) + fabsf(x4[3]));
}

void lutrt_precompute_row_ref(const lutrt_mma_desc *d, const float *x, void *tables_row,
                              float *tscale, float *sums) {
    int J = d->K / 4, E = d->mirrored ? 8 : 16;
    const int unread = lutrt_unread_section(d);
    if (unread == LUTRT_ENTRIES_UNREAD) { /* the activation section alone (lutrt.h consumer_bits) */
        float asum[64];
        const int per_chunk = d->scale_group / 4 * (64 / (d->scale_group / 4));
        for (int c0 = 0; c0 < J; c0 += per_chunk) {
            const int c1 = min_int(J, c0 + per_chunk);
            for (int j = c0; j < c1; j++) asum[j - c0] = table_abs_sum(x + 4 * j);
            lutrt_mark_finite(d, asum, c0, c1, tscale);
        }
        lutrt_precompute_acts_ref(d, x, tscale, tables_row);
        return;
    }
    group_sums(d, x, sums);
    if (!d->table_i8) {
        float *t = (float *)tables_row;
        for (int j = 0; j < J; j++) table_f32(x + 4 * j, d->mirrored, t + (size_t)j * E);
        return;
    }
    int8_t *tq = (int8_t *)tables_row;
    int jt = d->scale_group / 4, ns = lutrt_num_scale_groups(d);
    if (jt == 1) { /* per-table scales on the grid of lutrt_grid_scales, 1 / tscale per entry */
        for (int b0 = 0; b0 < J; b0 += LUTRT_GRID_TABLES) {
            const int b1 = min_int(J, b0 + LUTRT_GRID_TABLES);
            for (int j = b0; j < b1; j++) {
                const float a = table_abs_sum(x + 4 * j);
                tscale[j] = lutrt_table_scale(a, a <= FLT_MAX);
            }
            lutrt_grid_scales(tscale + b0, b1 - b0);
            for (int j = b0; j < b1; j++) {
                if (!(tscale[j] > 0.0f)) {
                    memset(tq + (size_t)j * E, 0, (size_t)E);
                    continue;
                }
                const float inv = 1.0f / tscale[j];
                float t[16];
                table_f32(x + 4 * j, d->mirrored, t);
                for (int p = 0; p < E; p++) {
                    float q = nearbyintf(t[p] * inv);
                    q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
                    tq[(size_t)j * E + p] = (int8_t)q;
                }
            }
        }
        if (unread != LUTRT_ACTS_UNREAD) lutrt_precompute_acts_ref(d, x, tscale, tables_row);
        return;
    }
    for (int s = 0; s < ns; s++) {
        int j0 = s * jt, j1 = min_int(J, j0 + jt);
        /* table quantization (§3.4): scale = max_j sum_i |x_i| / 127, the largest |entry| */
        float mx = 0.0f;
        int finite = 1;
        for (int j = j0; j < j1; j++) {
            const float a = table_abs_sum(x + 4 * j);
            if (!(a <= FLT_MAX)) finite = 0; /* inf, NaN, or a sum past FLT_MAX */
            mx = a > mx ? a : mx;
        }
        /* non-finite group: NaN scale, zero entries (lutrt.h); tiny or zero group: all zero */
        float scale = lutrt_table_scale(mx, finite);
        if (!(scale > 0.0f)) {
            tscale[s] = scale;
            memset(tq + (size_t)j0 * E, 0, (size_t)(j1 - j0) * E);
            continue;
        }
        float inv = 127.0f / mx;
        tscale[s] = scale;
        for (int j = j0; j < j1; j++) {
            float t[16];
            table_f32(x + 4 * j, d->mirrored, t);
            for (int p = 0; p < E; p++) {
                float q = nearbyintf(t[p] * inv); /* round half to even (default FP mode) */
                q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
                tq[(size_t)j * E + p] = (int8_t)q;
            }
        }
    }
    if (unread != LUTRT_ACTS_UNREAD) lutrt_precompute_acts_ref(d, x, tscale, tables_row);
}

int lutrt_precompute_row(const lutrt_mma_desc *d, const float *x_row, void *tables_row,
                         float *tscale_row, float *sums_row) {
    int rc = lutrt_check_desc(d, 0);
    if (rc) return rc;
    if (!x_row || !tables_row || !sums_row || (d->table_i8 && !tscale_row))
        return lutrt_fail("lutrt_precompute_row: NULL buffer");
    lutrt_current_kernel()->precompute_row(d, x_row, tables_row, tscale_row, sums_row);
    return LUTRT_OK;
}

typedef struct {
    const lutrt_mma_desc *d;
    const float *x;
    uint8_t *tables;
    float *tscale, *sums;
    lutrt_precompute_row_fn fn;
} rows_job;

static void rows_task(void *ctx, int begin, int end) {
    const rows_job *r = (const rows_job *)ctx;
    const lutrt_mma_desc *d = r->d;
    size_t rb = lutrt_table_row_bytes(d);
    int ns = lutrt_num_scale_groups(d), ng = lutrt_num_groups(d);
    for (int m = begin; m < end; m++)
        r->fn(d, r->x + (size_t)m * d->K, r->tables + (size_t)m * rb,
              r->tscale ? r->tscale + (size_t)m * ns : NULL, r->sums + (size_t)m * ng);
}

int lutrt_precompute(const lutrt_mma_desc *d, const float *x, void *tables, float *tscale,
                     float *sums) {
    int rc = lutrt_check_desc(d, 0);
    if (rc) return rc;
    if (!x || !tables || !sums || (d->table_i8 && !tscale))
        return lutrt_fail("lutrt_precompute: NULL buffer");
    rows_job job = {d, x, (uint8_t *)tables, d->table_i8 ? tscale : NULL, sums,
                    lutrt_current_kernel()->precompute_row};
    /* rows are independent; threads only pay off once there are a few of them */
    if (d->M >= 8)
        lutrt_parallel_for(d->num_threads, d->M, 1, rows_task, &job);
    else
        rows_task(&job, 0, d->M);
    return LUTRT_OK;
}
