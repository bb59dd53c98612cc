/* lmma_f32_gemv_avx512vbmi.c — lut.mma at one token on f32 tables (the lossless mode's decode
 * GEMV) as fixed-point tables in three int8 digits: vpermb lookups, vpdpbusd sums.
 *
 * The vpermps kernel (lmma_f32_avx512.c) spends 24 port-0/5 uops per 128 codes (4-bit weights,
 * 32 rows, one table): 8 lookups of 16 lanes, 8 float adds, 8 index ops. A 32-bit entry cannot
 * be looked up faster than 16 lanes a uop (vpermw, 32 lanes of 16 bits, is 2 uops on these
 * Xeons: it measured 1.17x slower than vpermps as two int16 halves). Bytes can: vpermb looks up
 * 64 lanes a uop. So each f32 table is rounded, per SUB-GROUP of at most SUB_TABLES tables
 * within a weight group, to an integer in three balanced base-255 digits:
 *
 *   v = round_half_even(T / unit),  unit = max |T| over the sub-group / R,  |v| <= R,
 *   v = d0 + 255 d1 + 255^2 d2,  d0, d1, d2 in [-127, 127],  R = 127 (1 + 255 + 255^2),
 *
 * (in double), so |T - unit v| <= max |T| / 2R = 2^-24.0 max |T|: one float32 rounding of the
 * sub-group's largest entry (f32 entries carry 2^-24 of their own size). An odd radix
 * makes every digit of -v the negated digit of v, so mirrored tables (widened to [T8, -T8]
 * before the rounding; round(-y) = -round(y)) keep their symmetry digit by digit.
 *
 * Codes (4-bit weights, one table, 32 rows): the table's 64 code bytes (layout in
 * lutrt_internal.h: two plane pairs, byte 2i of a pair the codes of its low plane for rows i
 * (low nibble) and 16+i (high nibble), byte 2i+1 its high plane) are permuted once by vpermb
 * so that dword i holds planes 0, 1, 2, 3 of row i; >> 4 gives rows 16..31. Each digit table
 * (16 bytes) is broadcast to all four 128-bit lanes; vpermb reads the index's low 6 bits, so
 * the other nibble's bits 4-5 select a copy of the same entries. Per digit one vpermb per 16
 * rows and one vpdpbusd with the plane weights [1, 2, 4, 8] as its unsigned operand add each
 * row's weighted lookups to its int32 digit sum: 14 uops per 128 codes.
 *
 * Per sub-group and digit k (integers; full: plain entry 15, mirrored -T[0]; lutrt.h F):
 *   h_k = sum_j sum_b 2^b d_k(T_j[c_b]),  S_k = sum_j d_k(T_j[full]),
 *   out += s * unit * (D_0 + 255 D_1 + 255^2 D_2),  D_k = fma(-z, S_k, h_k).
 * |h_k| <= 64 * 15 * 127 and |S_k| <= 64 * 127, so for an integer zero point z (|z| <= 15)
 * each D_k is exact: codes that all equal z (W = 0) look up 0 / F (mirrored -F / F) per plane,
 * h_k = z S_k digit by digit, and the output is exactly 0. Otherwise the error against exact
 * arithmetic is the 2^-24 max |T| rounding of the entries plus float32 rounding of the
 * per-sub-group terms (tests: within 2e-6 of max |out| of float64, like the vpermps kernel).
 * Non-finite entries in a sub-group make its unit NaN (digits 0): the row's outputs are NaN,
 * as on every kernel; a sub-group whose largest entry is below 2^-100 contributes 0.
 *
 * The conversion (per table two 8-lane double pipelines and the byte packing, ~20 ns on the
 * VM: J = 1024 tables take ~3% of a 4096 x 4096 call) fills the calling thread's scratch (48
 * bytes a table), split over the threads by weight groups, before the threads take chunks of
 * weight blocks; lutrt_f32_gemv_applies keeps the vpermps kernel where N is too small for it
 * to pay. Tiles cover 2 blocks (12 int32 accumulators), with the int8 GEMV's prefetching.
 * Against the vpermps kernel on the VM, N = K = 4096, 1 thread: 0.73-0.77x the time. 1-3 bit
 * codes keep the vpermps kernel: a 2-bit version (two tables a step) measured no faster, the
 * odd-plane layouts do not permute into whole dwords as simply. Compiled for real only with
 * -mavx512vbmi -mavx512vnni (build.py, "*_avx512vbmi.c"; never emulated); otherwise
 * lutrt_mma_f32_gemv_ptr is NULL.
 */
#include "lutrt_internal.h"

#if defined(__AVX512VBMI__) && defined(__AVX512VNNI__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "unpack_scratch.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define SUB_TABLES 64 /* tables per sub-group at most: keeps |h_k| < 2^24 (header) */
#define TABLE_BYTES 48 /* a converted table: 3 digits x 16 entries */

static int min_int(int a, int b) { return a < b ? a : b; }

typedef struct {
    float unit, s0, s1, s2;
} sub_terms;

typedef struct {
    const lutrt_mma_args *a;
    const int8_t *tab;    /* converted tables [J][3][16] */
    const sub_terms *sub; /* sub-groups in walk order: groups, then SUB_TABLES-table runs */
} gemv_job;

/* vpdpbusd through asm (see mma_i8act_avx512vnni.c: gcc copies intrinsic accumulators). */
ALWAYS_INLINE __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

#define DIGIT_RANGE 8290687.0 /* 127 (1 + 255 + 255^2): the largest |v| three digits hold */

/* The balanced base-255 digits of v = round_half_even(x f) for 8 entries, in double: |v| <=
 * DIGIT_RANGE, so v / 255 (as v * (1 / 255)) is within 2^-28 of its true value, which is never
 * within 1/510 of a half: each quotient rounds to the right integer, the digits are exact. */
ALWAYS_INLINE void digits8(__m256 x, __m512d f, __m256i d[3]) {
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512d r = _mm512_set1_pd(255.0), ir = _mm512_set1_pd(1.0 / 255.0);
    const __m512d v = _mm512_roundscale_pd(_mm512_mul_pd(_mm512_cvtps_pd(x), f), rn);
    const __m512d q1 = _mm512_roundscale_pd(_mm512_mul_pd(v, ir), rn);
    const __m512d q2 = _mm512_roundscale_pd(_mm512_mul_pd(q1, ir), rn);
    d[0] = _mm512_cvtpd_epi32(_mm512_fnmadd_pd(q1, r, v));
    d[1] = _mm512_cvtpd_epi32(_mm512_fnmadd_pd(q2, r, q1));
    d[2] = _mm512_cvtpd_epi32(q2);
}

/* One f32 table's 16 digit-k bytes (mirrored: of [T8, -T8]; a digit of -v is minus that of
 * v) into o[16 k]; sf[k] sums the digits of entries 0..7 (mirrored) or 8..15 (plain), among
 * them F's lane (lutrt.h: plain entry 15, mirrored -T[0]). */
ALWAYS_INLINE void convert_table(const float *t, const int E, __m512d f, int8_t *o, __m256i sf[3]) {
    __m256i lo[3], hi[3];
    digits8(_mm256_loadu_ps(t), f, lo);
    if (E == 16) digits8(_mm256_loadu_ps(t + 8), f, hi);
    UNROLL for (int k = 0; k < 3; k++) {
        if (E == 8) hi[k] = _mm256_sub_epi32(_mm256_setzero_si256(), lo[k]);
        _mm_store_si128((__m128i *)(o + 16 * k),
                        _mm512_cvtepi32_epi8(_mm512_inserti64x4(_mm512_castsi256_si512(lo[k]), hi[k], 1)));
        sf[k] = _mm256_add_epi32(sf[k], E == 16 ? hi[k] : lo[k]);
    }
}

/* Tables js..je-1 into tab[js..je-1] and the sub-group's terms. */
static void convert_sub(const lutrt_mma_args *a, int js, int je, int8_t *tab, sub_terms *st) {
    const float *t = (const float *)a->tables;
    const int E = a->entries;
    __m512 mx = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int j = js; j < je; j++) {
        const __m512 x = _mm512_abs_ps(_mm512_maskz_loadu_ps(E == 16 ? 0xFFFF : 0x00FF, t + (size_t)j * E));
        bad |= _mm512_cmp_ps_mask(x, _mm512_set1_ps(INFINITY), _CMP_NLT_UQ); /* inf, NaN */
        mx = _mm512_max_ps(mx, x);
    }
    const float m = _mm512_reduce_max_ps(mx);
    if (bad || m < LUTRT_TINY_SCALE) {
        memset(tab + (size_t)js * TABLE_BYTES, 0, (size_t)(je - js) * TABLE_BYTES);
        *st = (sub_terms){bad ? __builtin_nanf("") : 0.0f, 0.0f, 0.0f, 0.0f};
        return;
    }
    const __m512d f = _mm512_set1_pd(DIGIT_RANGE / (double)m);
    __m256i sf[3] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int j = js; j < je; j++) {
        if (E == 16)
            convert_table(t + (size_t)j * 16, 16, f, tab + (size_t)j * TABLE_BYTES, sf);
        else
            convert_table(t + (size_t)j * 8, 8, f, tab + (size_t)j * TABLE_BYTES, sf);
    }
    int32_t S[3][8];
    UNROLL for (int k = 0; k < 3; k++) _mm256_storeu_si256((__m256i *)S[k], sf[k]);
    const int l = E == 16 ? 7 : 0, sign = E == 16 ? 1 : -1; /* F: plain lane 15, mirrored -T[0] */
    *st = (sub_terms){(float)((double)m / DIGIT_RANGE), (float)(sign * S[0][l]), (float)(sign * S[1][l]),
                      (float)(sign * S[2][l])};
}

/* Sub-groups per weight group (the last group's tables are no more) and their number. */
static int subs_per_group(const lutrt_mma_args *a) { return (a->jg + SUB_TABLES - 1) / SUB_TABLES; }
static size_t num_subs(const lutrt_mma_args *a) { return (size_t)a->NG * (size_t)subs_per_group(a); }

typedef struct {
    const lutrt_mma_args *a;
    int8_t *tab;
    sub_terms *sub;
} convert_job;

/* Weight groups [g0, g1): their tables and sub-group terms (sub-group s of group g at
 * g * subs_per_group + s; the last group's unused ones stay unread). */
static void convert_task(void *ctx, int g0, int g1) {
    const convert_job *c = (const convert_job *)ctx;
    const lutrt_mma_args *a = c->a;
    for (int g = g0; g < g1; g++) {
        const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
        sub_terms *st = c->sub + (size_t)g * subs_per_group(a);
        for (int js = j0; js < j1; js += SUB_TABLES) convert_sub(a, js, min_int(j1, js + SUB_TABLES), c->tab, st++);
    }
}

/* dword i of the permuted code bytes = bytes 2i, 2i+1 of the first 32, then of the second */
#define PL(l) (((l) & 3) < 2 ? 2 * ((l) >> 2) + ((l) & 3) : 30 + 2 * ((l) >> 2) + ((l) & 3))
#define PL4(b) PL(b), PL(b + 1), PL(b + 2), PL(b + 3)
#define PL16(b) PL4(b), PL4(b + 4), PL4(b + 8), PL4(b + 12)
static const uint8_t perm_bytes[64] __attribute__((aligned(64))) = {PL16(0), PL16(16), PL16(32), PL16(48)};

/* Table j of weight blocks wb[0..NBK-1] into the digit sums. */
ALWAYS_INLINE void table_step(const lutrt_mma_args *a, const uint8_t *const *wb, int j, const int8_t *tj,
                              __m512i acc[][3][2], const int NBK) {
    const __m512i perm = _mm512_load_si512(perm_bytes);
    const __m512i mult = _mm512_set1_epi32(0x08040201); /* plane weights: the unsigned operand */
    __m512i tk[3];
    UNROLL for (int k = 0; k < 3; k++) tk[k] = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)(tj + 16 * k)));
    UNROLL for (int bi = 0; bi < NBK; bi++) {
        const uint8_t *p = wb[bi] + (size_t)j * 64;
        lutrt_gemv_prefetch(p, 64);
        const __m512i x0 = _mm512_permutexvar_epi8(perm, _mm512_loadu_si512(p)); /* rows 0..15 */
        const __m512i x1 = _mm512_srli_epi16(x0, 4);                             /* rows 16..31 */
        UNROLL for (int k = 0; k < 3; k++) {
            acc[bi][k][0] = dpbusd(acc[bi][k][0], mult, _mm512_permutexvar_epi8(x0, tk[k]));
            acc[bi][k][1] = dpbusd(acc[bi][k][1], mult, _mm512_permutexvar_epi8(x1, tk[k]));
        }
    }
}

/* Weight blocks blk0..blk0+NBK-1 of the one token row. */
ALWAYS_INLINE void tile(const gemv_job *job, int blk0, const int NBK) {
    const lutrt_mma_args *a = job->a;
    const int J = a->J, NG = a->NG;
    const uint8_t *wb[2];
    UNROLL for (int bi = 0; bi < NBK; bi++) wb[bi] = a->w + (size_t)(blk0 + bi) * J * a->chunk;
    __m512 oacc[2][2];
    UNROLL for (int bi = 0; bi < NBK; bi++) oacc[bi][0] = oacc[bi][1] = _mm512_setzero_ps();
    for (int g = 0; g < NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(J, j0 + a->jg);
        const sub_terms *st = job->sub + (size_t)g * subs_per_group(a);
        for (int js = j0; js < j1; js += SUB_TABLES, st++) {
            const int je = min_int(j1, js + SUB_TABLES);
            __m512i acc[2][3][2];
            UNROLL for (int bi = 0; bi < NBK; bi++)
                UNROLL for (int k = 0; k < 3; k++) acc[bi][k][0] = acc[bi][k][1] = _mm512_setzero_si512();
            for (int j = js; j < je; j++) table_step(a, wb, j, job->tab + (size_t)j * TABLE_BYTES, acc, NBK);
            /* out += s * unit * (D_0 + 255 D_1 + 255^2 D_2), D_k = fma(-z, S_k, h_k) */
            const __m512 s0 = _mm512_set1_ps(st->s0), s1 = _mm512_set1_ps(st->s1), s2 = _mm512_set1_ps(st->s2);
            const __m512 unit = _mm512_set1_ps(st->unit), r = _mm512_set1_ps(255.0f);
            UNROLL for (int bi = 0; bi < NBK; bi++) {
                const size_t si = ((size_t)(blk0 + bi) * NG + g) * LUTRT_BLOCK_N;
                lutrt_gemv_prefetch_scales(a, si);
                UNROLL for (int h = 0; h < 2; h++) {
                    const __m512 z = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16 * h) : _mm512_set1_ps(a->zimp);
                    const __m512 sc = _mm512_mul_ps(_mm512_loadu_ps(a->scales + si + 16 * h), unit);
                    const __m512 d0 = _mm512_fnmadd_ps(z, s0, _mm512_cvtepi32_ps(acc[bi][0][h]));
                    const __m512 d1 = _mm512_fnmadd_ps(z, s1, _mm512_cvtepi32_ps(acc[bi][1][h]));
                    const __m512 d2 = _mm512_fnmadd_ps(z, s2, _mm512_cvtepi32_ps(acc[bi][2][h]));
                    const __m512 v = _mm512_fmadd_ps(_mm512_fmadd_ps(d2, r, d1), r, d0);
                    oacc[bi][h] = _mm512_fmadd_ps(v, sc, oacc[bi][h]);
                }
            }
        }
    }
    UNROLL for (int bi = 0; bi < NBK; bi++) {
        const int n0 = (blk0 + bi) * LUTRT_BLOCK_N, rows = min_int(LUTRT_BLOCK_N, a->N - n0);
        float tmp[32];
        _mm512_storeu_ps(tmp, oacc[bi][0]);
        _mm512_storeu_ps(tmp + 16, oacc[bi][1]);
        memcpy(a->out + n0, tmp, (size_t)rows * sizeof(float));
    }
}

static __attribute__((noinline)) void tile_2(const gemv_job *j, int blk) { tile(j, blk, 2); }
static __attribute__((noinline)) void tile_1(const gemv_job *j, int blk) { tile(j, blk, 1); }

static void blocks_task(void *ctx, int b0, int b1) {
    const gemv_job *job = (const gemv_job *)ctx;
    int blk = b0;
    for (; blk + 2 <= b1; blk += 2) tile_2(job, blk);
    if (blk < b1) tile_1(job, blk);
}

/* Whether the call can run here (M = 1, 4-bit bit planes) and, unless `forced`, whether the
 * per-call conversion pays: at least 12 weight blocks on one thread, 24 on more (the
 * conversion is split over the threads by weight groups, at the price of a second parallel
 * section). Measured on the 2-core Xeon VM (N x K, 1 / 2 threads, this kernel / the vpermps
 * kernel, interleaved medians): 4096 x 4096 0.75 / 0.76, 1536 x 576 0.82 / 0.87-0.92,
 * 576 x 1536 0.88 / 0.99-1.02, 576 x 576 0.86 / 1.03-1.10, 192 x 576 1.05 / 1.40 (mirrored
 * tables; plain ones alike within 0.1). */
int lutrt_f32_gemv_applies(const lutrt_mma_args *a, int forced) {
    if (a->M != 1 || a->bits != 4 || a->code_bytes) return 0;
    const int threads = lutrt_threads_for(a->d->num_threads);
    return forced || a->NB >= (threads > 1 ? 24 : 12);
}

/* The whole call (lutrt_f32_gemv_applies holds). */
static int mma_f32_gemv(const lutrt_mma_args *a) {
    const size_t tab_bytes = (size_t)a->J * TABLE_BYTES, sub_bytes = num_subs(a) * sizeof(sub_terms);
    uint8_t *buf = lutrt_scratch(1, (tab_bytes + sub_bytes + 63) / 64 * 64);
    if (!buf) return lutrt_fail("lutrt_mma: out of memory");
    gemv_job job = {a, (const int8_t *)buf, (const sub_terms *)(buf + tab_bytes)};
    const int threads = lutrt_threads_for(a->d->num_threads);
    convert_job cj = {a, (int8_t *)buf, (sub_terms *)(buf + tab_bytes)};
    if (threads > 1 && a->NG > 1) /* one chunk of weight groups a thread */
        lutrt_parallel_for(a->d->num_threads, a->NG, (a->NG + threads - 1) / threads, convert_task, &cj);
    else
        convert_task(&cj, 0, a->NG);
    /* owner-first, as mma.c's GEMVs (threadpool.c) */
    lutrt_parallel_for_owned(a->d->num_threads, a->NB, lutrt_gemv_grain(a->NB, threads), blocks_task, &job);
    return LUTRT_OK;
}

const lutrt_mma_call_fn lutrt_mma_f32_gemv_ptr = mma_f32_gemv;
#else
const lutrt_mma_call_fn lutrt_mma_f32_gemv_ptr = 0;
int lutrt_f32_gemv_applies(const lutrt_mma_args *a, int forced) {
    (void)a, (void)forced;
    return 0;
}
#endif
