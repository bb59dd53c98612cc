/* mma.c — the lut.mma entry point: validates a call, derives the sizes the tile kernels use
 * and splits the weight blocks (N) across the thread pool. */
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"

/* S[m, t] = sum_{j in scale group t} F[m, j], F = the all-ones entry of table j (plain: entry
 * 15 = sum of the 4 quantized activations; mirrored: -entry 0). Integers, exact in float. */
static void table_full_sums(const lutrt_mma_args *a, float *tsum) {
    const int full = a->mirrored ? 0 : 15, sign = a->mirrored ? -1 : 1;
    for (int m = 0; m < a->M; m++) {
        const int8_t *t = (const int8_t *)a->tables + (size_t)m * a->row_bytes + full;
        float *S = tsum + (size_t)m * a->NS;
        if (a->jt == 1) { /* per-table scales: one entry per scale group */
            for (int j = 0; j < a->J; j++) S[j] = (float)(sign * t[(size_t)j * a->entries]);
            continue;
        }
        for (int s = 0; s < a->NS; s++) {
            int j1 = (s + 1) * a->jt < a->J ? (s + 1) * a->jt : a->J, acc = 0;
            for (int j = s * a->jt; j < j1; j++) acc += t[(size_t)j * a->entries];
            S[s] = (float)(sign * acc);
        }
    }
}

/* Per-table scales (lutrt_grid_scales): unit[m, b] of each block of LUTRT_GRID_TABLES tables
 * and the integer multipliers mult[m, j] = tscale / unit (< 2^7; 0 when unit is 0 or NaN),
 * with zs[m, j] = sum of mult * S over j's block up to j (lutrt_pt_zs).
 * unit = 2^(ilogb(max) - LUTRT_GRID_SHIFT) (undoing lutrt_grid_scales' rounding up) and
 * 1 / unit are built from the exponent bits of the block's largest scale (a normal float,
 * >= 2^-107 / 127), so mult = tscale * (1 / unit) is exact; this runs once per call (on the
 * pool's threads for GEMMs, table_prologue), so it is kept cheap. */
static float float_of_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Grid block b of row m (tables j0 = 8b .. j0 + n - 1): its all-ones entries S into tsum
 * (table_full_sums at jt == 1) and its multipliers, unit and running sums. */
void lutrt_table_prologue_block(const lutrt_mma_args *a, int m, int b, float *tsum,
                                int16_t *mult, float *unit, int32_t *zs) {
    const int nb = (a->J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    const int j0 = b * LUTRT_GRID_TABLES;
    const int n = a->J - j0 < LUTRT_GRID_TABLES ? a->J - j0 : LUTRT_GRID_TABLES;
    const float *ts = a->tscale + (size_t)m * a->NS;
    float *S = tsum + (size_t)m * a->NS;
    int16_t *mu = mult + (size_t)m * a->J;
    int32_t *z = zs + (size_t)m * a->J;
    const int8_t *t = (const int8_t *)a->tables + (size_t)m * a->row_bytes + (a->mirrored ? 0 : 15);
    const int sign = a->mirrored ? -1 : 1;
    for (int j = j0; j < j0 + n; j++) S[j] = (float)(sign * t[(size_t)j * a->entries]);
    /* the block's largest scale by its bits: scales are >= 0 or NaN, and a NaN's bits
     * (exponent 0xff) exceed every finite float's */
    uint32_t mx = 0;
    for (int j = 0; j < n; j++) {
        uint32_t bits;
        memcpy(&bits, &ts[j0 + j], sizeof bits);
        bits &= 0x7fffffffu;
        mx = bits > mx ? bits : mx;
    }
    const uint32_t e = (mx >> 23) & 0xffu; /* ilogb(max) + 127 */
    float u = 0.0f, inv = 0.0f;
    if (e == 0xffu) { /* NaN in the block: multipliers 0, the row's outputs NaN */
        unit[(size_t)m * nb + b] = __builtin_nanf("");
        memset(mu + j0, 0, (size_t)n * sizeof *mu);
        memset(z + j0, 0, (size_t)n * sizeof *z);
        return;
    }
    if (e > LUTRT_GRID_SHIFT) { /* (scales below 2^-100 are 0: lutrt_table_scale) */
        u = float_of_bits((e - LUTRT_GRID_SHIFT) << 23);
        inv = float_of_bits((254u + LUTRT_GRID_SHIFT - e) << 23);
    }
    unit[(size_t)m * nb + b] = u;
    int32_t run = 0; /* lutrt_pt_zs: |sum| <= 8 * 127 * 127 */
    for (int j = j0; j < j0 + n; j++) {
        const int16_t q = (int16_t)(ts[j] * inv); /* exact: a multiple of u below 2^7 u */
        mu[j] = q;
        run += q * (int32_t)S[j];
        z[j] = run;
    }
}

/* The per-call prologue of per-table scales (jt == 1): tsum, mult, unit and zs of rows
 * [m0, m1), with AVX2 where the kernel has it (table_prologue_avx2.c, bit-identical). */
static void prologue_rows(const lutrt_mma_args *a, float *tsum, int16_t *mult, float *unit,
                          int32_t *zs, int m0, int m1) {
#ifdef LUTRT_X86
    if (lutrt_cpu_has_avx2()) {
        lutrt_table_prologue_avx2(a, tsum, mult, unit, zs, m0, m1);
        return;
    }
#endif
    const int nb = (a->J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    for (int m = m0; m < m1; m++)
        for (int b = 0; b < nb; b++) lutrt_table_prologue_block(a, m, b, tsum, mult, unit, zs);
}

typedef struct {
    const lutrt_mma_args *a;
    float *tsum, *unit;
    int16_t *mult;
    int32_t *zs;
} prologue_job;

static void prologue_task(void *ctx, int begin, int end) {
    const prologue_job *p = (const prologue_job *)ctx;
    prologue_rows(p->a, p->tsum, p->mult, p->unit, p->zs, begin, end);
}

/* Rows are independent: a GEMM's prologue (M = 128, K = 4096: 128 x 1024 tables) runs on the
 * pool's threads instead of before them (on 16 threads it was a serial 0.1-0.5 ms). */
static void table_prologue(const lutrt_mma_args *a, int num_threads, float *tsum, int16_t *mult,
                           float *unit, int32_t *zs) {
    prologue_job p = {a, tsum, unit, mult, zs};
    if ((size_t)a->M * (size_t)a->J >= 4096)
        lutrt_parallel_for(num_threads, a->M, 4, prologue_task, &p);
    else
        prologue_task(&p, 0, a->M);
}

/* Blocks per claim of a GEMV: 2 or 4 (a GEMV tile walks 2-4 blocks = memory streams; the
 * AVX-512 tiles take blocks in pairs and send an odd one to the AVX2 kernel, the VBMI ones to
 * a 1-block tile), chosen to minimise the blocks of the busiest of T threads (ties: the larger
 * grain). A fixed 4 left SmolLM2's N = 192 and 576 projections (6 and 18 blocks) split 4:2
 * and 10:8 over 2 threads; grains of 3 (6:6... of 18) gave every claim an odd block. Even
 * grains against grains 1-4, per-table GEMV medians on the 2-core VM (2026-12-04): 2 bits,
 * 576 x 1536, 2 threads 15.1 -> 12.0 us, 192 x 576 4.2 -> 3.6 us, 4096^2 128 -> 121 us;
 * 4 bits (VBMI tiles) within +-3% everywhere. */
int lutrt_gemv_grain(int nb, int t) {
    int best = 1, best_cost = nb;
    for (int g = 2; g <= 4 && nb > 1; g += 2) {
        const int chunks = (nb + g - 1) / g, cost = (chunks + t - 1) / t * g;
        if (best == 1 || cost <= best_cost) best = g, best_cost = cost;
    }
    return best;
}

/* Work of one call: weight blocks (GEMV; GEMM with mparts == 1), or GEMM tasks t = (super block
 * t / mparts, token rows part t % mparts): splitting M too gives many-core machines enough tasks
 * to balance (N = 4096 at 2 bits is 16 super blocks, one per thread of 16). */
typedef struct {
    const lutrt_mma_args *args;
    lutrt_mma_fn fn;
    int super, mparts, mrows;
} mma_job;

/* args for token rows [m0, m0 + rows): every per-row array starts at row m0 */
static lutrt_mma_args row_slice(const lutrt_mma_args *a, int m0, int rows) {
    lutrt_mma_args s = *a;
    const size_t m = (size_t)m0;
    const size_t nub = (size_t)(a->J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
    s.M = rows;
    s.tables = (const uint8_t *)a->tables + m * a->row_bytes;
    if (a->tscale) s.tscale = a->tscale + m * (size_t)a->NS;
    if (a->tsum) s.tsum = a->tsum + m * (size_t)a->NS;
    if (a->sums) s.sums = a->sums + m * (size_t)a->NG;
    if (a->tmult) s.tmult = a->tmult + m * (size_t)a->J;
    if (a->tzs) s.tzs = a->tzs + m * (size_t)a->J;
    if (a->tunit) s.tunit = a->tunit + m * nub;
    s.out = a->out + m * (size_t)a->N;
    return s;
}

static void mma_task(void *ctx, int begin, int end) {
    const mma_job *job = (const mma_job *)ctx;
    const lutrt_mma_args *a = job->args;
    if (job->mparts <= 1) {
        job->fn(a, begin, end);
        return;
    }
    for (int t = begin; t < end; t++) {
        const int b0 = t / job->mparts * job->super, m0 = t % job->mparts * job->mrows;
        const int b1 = b0 + job->super < a->NB ? b0 + job->super : a->NB;
        const int rows = m0 + job->mrows < a->M ? job->mrows : a->M - m0;
        if (rows <= 0) continue;
        const lutrt_mma_args s = row_slice(a, m0, rows);
        job->fn(&s, b0, b1);
    }
}

/* Token-row parts of a GEMM: enough tasks for 4 per thread, parts of >= 16 rows (each part
 * reads its super block's weights again), an even row count (the GEMM tiles take 2 rows). */
static void gemm_split(mma_job *job, int super, int threads) {
    const lutrt_mma_args *a = job->args;
    const int nsb = (a->NB + super - 1) / super;
    int parts = (4 * threads + nsb - 1) / nsb;
    if (parts > a->M / 16) parts = a->M / 16;
    job->super = super;
    job->mparts = parts > 1 ? parts : 1;
    job->mrows = (a->M + job->mparts - 1) / job->mparts;
    job->mrows += job->mrows & 1;
}

int lutrt_mma(const lutrt_mma_desc *d, const void *tables, const float *tscale, const float *sums,
              const uint8_t *packed_w, const float *scales, const float *zeros, float *out) {
    int rc = lutrt_check_desc(d, 1);
    if (rc) return rc;
    if (!tables || !sums || !packed_w || !scales || !out || (d->table_i8 && !tscale))
        return lutrt_fail("lutrt_mma: NULL buffer");
    lutrt_mma_args a = {
        .d = d,
        .M = d->M,
        .N = d->N,
        .K = d->K,
        .bits = d->bits,
        .J = d->K / 4,
        .NG = lutrt_num_groups(d),
        .NS = lutrt_num_scale_groups(d),
        .NB = lutrt_num_blocks(d),
        .jg = d->group / 4,
        .jt = d->table_i8 ? d->scale_group / 4 : 0,
        .ja = lutrt_act_group(d) / 4,
        .NA = lutrt_num_act_groups(d),
        .entries = d->mirrored ? 8 : 16,
        .mirrored = d->mirrored,
        .row_bytes = lutrt_table_row_bytes(d),
        .chunk = d->layout == LUTRT_LAYOUT_CODE_BYTES ? 128u : 16u * (size_t)d->bits,
        .code_bytes = d->layout == LUTRT_LAYOUT_CODE_BYTES,
        .tables = tables,
        .tscale = tscale,
        .sums = sums,
        .w = packed_w,
        .scales = scales,
        .zeros = zeros,
        .zimp = d->zimp,
        .out = out,
    };
    /* code bytes: the int8-activation formula at every M (no tables read, nothing unpacked) */
    if (a.code_bytes) return lutrt_code_bytes_kernel()(&a);
    const lutrt_kernel *k = lutrt_current_kernel();
#ifdef LUTRT_X86
    /* (per-token is what lut-tile writes for every GEMM: it picks among the LUT kernels and
     * leaves this choice, which depends on M only, to the runtime) */
    int i8act_m = d->table_i8 && d->strategy != LUTRT_STRATEGY_VEC_LUT ? lutrt_i8act_min_m(d->bits) : 0;
    int f32dq_m = !d->table_i8 && d->strategy != LUTRT_STRATEGY_VEC_LUT ? lutrt_f32dq_min_m(d->bits) : 0;
    if (f32dq_m > 0 && a.M >= f32dq_m) {
        /* lossless mode at large M: dequantized weights x activations in f32 (lutrt.h) */
        return lutrt_f32dq_kernel()(&a);
    }
    const int f32gemv = d->table_i8 ? 0 : lutrt_f32_gemv_mode();
    if (f32gemv && lutrt_f32_gemv_applies(&a, f32gemv > 0)) {
        /* lossless mode, one token: fixed-point tables in three int8 digits (lutrt.h) */
        return lutrt_mma_f32_gemv_ptr(&a);
    }
    if (i8act_m > 0 && a.M >= i8act_m) {
        /* large M: int8 activations x unpacked weights (lutrt.h), no table entry read (the
         * precompute may have left them unwritten: lutrt_mma_desc.consumer_bits) */
        return lutrt_i8act_kernel()(&a);
    }
#endif
    /* Vec-LUT: int8 tables on the SIMD kernels, when asked for or from the crossover on */
    /* (its int16 Horner accumulation over planes holds for B <= 4 only; wider codes always
     * take the per-token kernel, which splits planes 0..3 / 4..B-1) */
    int vec_lut = 0;
#ifdef LUTRT_X86
    vec_lut = d->table_i8 && d->bits <= 4 && k->mma_i8 != lutrt_mma_i8_ref &&
              (d->strategy == LUTRT_STRATEGY_VEC_LUT ||
               (d->strategy == LUTRT_STRATEGY_AUTO && LUTRT_VEC_LUT_MIN_M > 0 &&
                a.M >= LUTRT_VEC_LUT_MIN_M));
#endif
    /* per-table scales: integer multipliers for the AVX-512 kernels' int32 sums */
    const int int_multipliers = !vec_lut && d->table_i8 && a.jt == 1 && k->table_multipliers;
    /* zero-point term of int8 tables from the tables themselves (lutrt.h) */
    float tsum_stack[1024], *tsum = NULL;
    if (d->table_i8) {
        size_t n = (size_t)a.M * (size_t)a.NS;
        tsum = n <= 1024 ? tsum_stack : malloc(n * sizeof(float));
        if (!tsum) return lutrt_fail("lutrt_mma: out of memory");
        if (!int_multipliers) table_full_sums(&a, tsum); /* else in table_prologue */
        a.tsum = tsum;
    }
#ifdef LUTRT_X86
    if (vec_lut) {
        rc = lutrt_mma_i8_vlut_avx2(&a);
    } else
#endif
    {
        int16_t mult_stack[4096], *mult = NULL;
        int32_t zs_stack[4096], *zs = NULL;
        float unit_stack[512], *unit = NULL;
        if (int_multipliers) {
            const size_t nb = (size_t)(a.J + LUTRT_GRID_TABLES - 1) / LUTRT_GRID_TABLES;
            const size_t nm = (size_t)a.M * (size_t)a.J, nu = (size_t)a.M * nb;
            mult = nm <= 4096 ? mult_stack : malloc(nm * sizeof(int16_t));
            zs = nm <= 4096 ? zs_stack : malloc(nm * sizeof(int32_t));
            unit = nu <= 512 ? unit_stack : malloc(nu * sizeof(float));
            if (!mult || !zs || !unit) {
                if (mult != mult_stack) free(mult);
                if (zs != zs_stack) free(zs);
                if (unit != unit_stack) free(unit);
                if (tsum != tsum_stack) free(tsum);
                return lutrt_fail("lutrt_mma: out of memory");
            }
            table_prologue(&a, d->num_threads, tsum, mult, unit, zs);
            a.tmult = mult;
            a.tunit = unit;
            a.tzs = zs;
        }
        mma_job job = {&a, d->table_i8 ? k->mma_i8 : k->mma_f32, 0, 1, a.M};
        /* chunks: GEMV tiles of up to 4 blocks, balanced over the threads, or GEMM tasks of
         * one super-block and a part of the token rows */
        const int threads = lutrt_threads_for(d->num_threads);
        if (a.M == 1) {
            /* owner-first (threadpool.c): each thread streams one run of consecutive blocks.
             * SmolLM2 decode steps @128 on 2 threads, back to back, interleaved medians (2-core
             * VM, 2026-12-07): 3.72 -> 3.59 and 3.80 -> 3.68 ms against guided claims; @1024
             * 6.54 -> 6.42 ms; 1 thread unchanged */
            lutrt_parallel_for_owned(d->num_threads, a.NB, lutrt_gemv_grain(a.NB, threads), mma_task, &job);
        } else {
            gemm_split(&job, lutrt_super_blocks(&a), threads);
            if (job.mparts > 1) {
                const int nsb = (a.NB + job.super - 1) / job.super;
                lutrt_parallel_for(d->num_threads, nsb * job.mparts, 1, mma_task, &job);
            } else {
                lutrt_parallel_for(d->num_threads, a.NB, job.super, mma_task, &job);
            }
        }
        if (mult != mult_stack) free(mult);
        if (zs != zs_stack) free(zs);
        if (unit != unit_stack) free(unit);
    }
    if (tsum != tsum_stack) free(tsum);
    return rc;
}
