/* lutrt_internal.h — what the runtime's C files share and generated code never sees. */
#ifndef LUTRT_INTERNAL_H
#define LUTRT_INTERNAL_H

#include <math.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt.h"

/* A validated lut.mma call with its derived sizes; read-only for the kernels. */
typedef struct lutrt_mma_args {
    const lutrt_mma_desc *d;
    int M, N, K, bits;
    int J;            /* tables per row */
    int NG;           /* weight groups */
    int NS;           /* table scale groups (int8 tables), else 0 */
    int NB;           /* blocks of 32 weight rows */
    int jg;           /* tables per weight group (the last group may have fewer) */
    int jt;           /* tables per table scale group (int8 tables) */
    int ja;           /* tables per activation group (int8-activation path, lutrt_act_group) */
    int NA;           /* activation groups per row: ceil(K / (4 ja)) */
    int entries;      /* 8 or 16 */
    int mirrored;
    size_t row_bytes; /* bytes of one row of tables */
    size_t chunk;     /* bytes of packed weights per (block, table) = 16 * bits (bit planes)
                         or 128 (code bytes) */
    int code_bytes;   /* layout LUTRT_LAYOUT_CODE_BYTES: w holds [NB][J][2][16][4] codes */
    const void *tables;
    const float *tscale;
    const float *sums;  /* f32 group sums: not read by the LUT kernels (see lutrt.h) */
    const float *tsum;  /* int8 tables: [M, NS] S[m, t] = sum over the tables j of scale group t
                           of F[m, j], the all-ones entry (plain Tq[j][15], mirrored -Tq[j][0]),
                           so that the zero-point term uses the lookups' own rounding */
    const int16_t *tmult; /* per-table int8 scales (jt == 1): [M, J] tscale / unit, the
                             integer multiplier of lutrt_grid_scales (0..127); NULL otherwise */
    const float *tunit;   /* [M, ceil(J / LUTRT_GRID_TABLES)] the grid unit
                             2^(ilogb(max) - LUTRT_GRID_SHIFT) */
    const int32_t *tzs;   /* [M, J] sum of mult * S over the tables of j's grid block up to and
                             including j (lutrt_pt_zs); S the all-ones entry (tsum, jt == 1) */
    const uint8_t *w;
    const float *scales;
    const float *zeros; /* NULL: zimp */
    float zimp;
    float *out;
} lutrt_mma_args;

/* Computes out rows 0..M-1 for weight blocks [blk_begin, blk_end). */
typedef void (*lutrt_mma_fn)(const lutrt_mma_args *a, int blk_begin, int blk_end);
/* One row of lut.precompute; d is already validated. */
typedef void (*lutrt_precompute_row_fn)(const lutrt_mma_desc *d, const float *x_row,
                                        void *tables_row, float *tscale_row, float *sums_row);

typedef struct lutrt_kernel {
    const char *name;
    lutrt_mma_fn mma_i8;                 /* int8 tables */
    lutrt_mma_fn mma_f32;                /* f32 tables */
    lutrt_precompute_row_fn precompute_row;
    int table_multipliers; /* mma_i8 reads tmult / tunit for per-table int8 tables (mma.c) */
} lutrt_kernel;

/* The kernel chosen by dispatch.c (never NULL). */
const lutrt_kernel *lutrt_current_kernel(void);

/* A whole lutrt_mma call (int8 tables), threads included. */
typedef int (*lutrt_mma_call_fn)(const lutrt_mma_args *a);

/* Kernel implementations. */
/* The int8-activation formula in portable C (mma_i8act_c.c), either weight layout: a whole
 * call, or weight blocks [blk_begin, blk_end) on the calling thread. */
int lutrt_mma_i8act_c(const lutrt_mma_args *a);
void lutrt_mma_i8act_c_blocks(const lutrt_mma_args *a, int blk_begin, int blk_end);
/* The kernel code-byte weights run on (dispatch.c; never NULL). */
lutrt_mma_call_fn lutrt_code_bytes_kernel(void);
void lutrt_mma_i8_ref(const lutrt_mma_args *a, int blk_begin, int blk_end);
void lutrt_mma_f32_ref(const lutrt_mma_args *a, int blk_begin, int blk_end);
void lutrt_precompute_row_ref(const lutrt_mma_desc *d, const float *x_row, void *tables_row,
                              float *tscale_row, float *sums_row);
/* lut.mma's per-call prologue of per-table int8 tables (jt == 1) for grid block b of row m:
 * tsum (the all-ones entries S), mult, unit and zs (mma.c); lutrt_table_prologue_avx2 does
 * a range of rows with AVX2 (table_prologue_avx2.c, bit-identical; x86 where lutrt_cpu_has_avx2). */
void lutrt_table_prologue_block(const lutrt_mma_args *a, int m, int b, float *tsum,
                                int16_t *mult, float *unit, int32_t *zs);
int lutrt_cpu_has_avx2(void); /* 0 off x86 */
#if defined(__x86_64__) || defined(_M_X64)
#define LUTRT_X86 1
void lutrt_table_prologue_avx2(const lutrt_mma_args *a, float *tsum, int16_t *mult, float *unit,
                               int32_t *zs, int m0, int m1); /* rows [m0, m1) */
void lutrt_mma_i8_avx2(const lutrt_mma_args *a, int blk_begin, int blk_end);
void lutrt_precompute_row_avx2(const lutrt_mma_desc *d, const float *x_row, void *tables_row,
                               float *tscale_row, float *sums_row);
/* The same row with AVX-512F/BW (precompute_avx512.c); NULL without it or under SIMDe. */
void lutrt_precompute_row_avx512(const lutrt_mma_desc *d, const float *x_row, void *tables_row,
                                 float *tscale_row, float *sums_row);
extern const lutrt_precompute_row_fn lutrt_precompute_row_avx512_ptr;
/* Vec-LUT (lmma_vlut_avx2.c): the whole call (int8 tables), threads included. */
int lutrt_mma_i8_vlut_avx2(const lutrt_mma_args *a);
void lutrt_vlut_release(void); /* frees the calling thread's cached Vec-LUT tables */
/* NULL unless lmma_avx512.c was compiled with -mavx512bw (or SIMDe emulation, tests only). */
extern const lutrt_mma_fn lutrt_mma_i8_avx512_ptr;
extern const int lutrt_avx512_emulated;
/* The same kernel built with AVX512-VNNI (lmma_avx512vnni.c); NULL without it. */
extern const lutrt_mma_fn lutrt_mma_i8_avx512vnni_ptr;
/* NULL unless lmma_avx512vbmi.c was compiled with AVX-512 VBMI + VNNI (or SIMDe emulation). */
extern const lutrt_mma_fn lutrt_mma_i8_avx512vbmi_ptr;
extern const int lutrt_avx512vbmi_emulated;
/* Its per-table tiles alone (lutrt_pt_vbmi_applies must hold), which the automatic "avx512"
 * kernel runs on CPUs with VBMI + VNNI (dispatch.c); NULL like the kernel. */
extern const lutrt_mma_fn lutrt_mma_i8_pt_vbmi_ptr;
int lutrt_pt_vbmi_applies(const lutrt_mma_args *a);
/* Large-M path (mma_i8act_avx512vnni.c): the whole int8-table call from the rows' int8
 * activations, threads included; NULL unless compiled with AVX512-VNNI (never emulated). */
extern const lutrt_mma_call_fn lutrt_mma_i8act_ptr;      /* AVX512-VNNI, NULL if not compiled */
extern const lutrt_mma_call_fn lutrt_mma_i8act_avx2_ptr; /* AVX2 + FMA (mma_i8act_avx2.c) */
extern const lutrt_mma_call_fn lutrt_mma_i8act_amx_ptr;  /* AMX-INT8, NULL if not compiled */
/* the one this CPU runs (lutrt_set_i8act_kernel), NULL if none */
lutrt_mma_call_fn lutrt_i8act_kernel(void);
/* Large-M path of f32 tables (mma_f32dq_avx512.c, mma_f32dq_avx2.c): dequantized weights x
 * activations, threads included; NULL unless compiled with AVX-512BW (never emulated) / AVX2
 * and FMA. lutrt_f32dq_kernel: the one this CPU runs (lutrt_set_f32dq_kernel), NULL if none. */
extern const lutrt_mma_call_fn lutrt_mma_f32dq_ptr;
extern const lutrt_mma_call_fn lutrt_mma_f32dq_avx2_ptr;
lutrt_mma_call_fn lutrt_f32dq_kernel(void);
/* f32 tables at one token (lmma_f32_gemv_avx512vbmi.c): the whole call on fixed-point tables
 * in three int8 digits, threads included, where lutrt_f32_gemv_applies (M = 1, 4-bit bit
 * planes, and unless forced a large enough N); NULL (and never applies) unless compiled with
 * AVX-512 VBMI + VNNI (never emulated). lutrt_f32_gemv_mode (dispatch.c): 0 off, 1 forced on,
 * -1 automatic. */
extern const lutrt_mma_call_fn lutrt_mma_f32_gemv_ptr;
int lutrt_f32_gemv_applies(const lutrt_mma_args *a, int forced);
int lutrt_f32_gemv_mode(void);
/* GEMV chunks: up to 4 weight blocks, balanced over t threads (mma.c). */
int lutrt_gemv_grain(int nb, int t);
/* Tokens from which lutrt_mma runs it for B-bit weights (0: never); dispatch.c. */
int lutrt_i8act_min_m(int bits);
/* f32 tables (lossless): vpermps kernels for B <= 4 (wider codes: lutrt_mma_f32_ref). The
 * AVX-512 one is NULL unless lmma_f32_avx512.c was compiled with -mavx512bw (never emulated). */
void lutrt_mma_f32_avx2(const lutrt_mma_args *a, int blk_begin, int blk_end);
extern const lutrt_mma_fn lutrt_mma_f32_avx512_ptr;
#endif

/* tscale of an int8 table scale group whose largest sum_i |x_i| is mx (lutrt.h): mx / 127;
 * NaN when the group holds inf / NaN or its |x| sums overflow (finite == 0), which poisons
 * every output of the row; 0 below LUTRT_TINY_SCALE (127 / mx would overflow float), the
 * group's entries then being 0. Shared by every precompute so their tables stay identical. */
#define LUTRT_TINY_SCALE 0x1p-100f
static inline float lutrt_table_scale(float mx, int finite) {
    if (!finite) return __builtin_nanf("");
    return mx < LUTRT_TINY_SCALE ? 0.0f : mx / 127.0f;
}

/* Per-table int8 scales (scale_group == 4) lie on a grid (lutrt.h): within each aligned block
 * of LUTRT_GRID_TABLES tables, tscale = M * u with u = 2^(ilogb(max) - LUTRT_GRID_SHIFT)
 * (doubled when the largest M would reach 2^7) and the integer M = ceil(tscale / u) < 2^7, so
 * that a kernel may use M as an unsigned byte multiplier of vpdpbusd (lmma_avx512vbmi.c) or sum
 * M * I in int32 and convert once per block (lmma_avx512.c). Rounding up keeps every entry
 * within +-127. n <= LUTRT_GRID_TABLES scales; NaN and 0 stay as they are. */
#define LUTRT_GRID_TABLES 8
#define LUTRT_GRID_SHIFT 6
#define LUTRT_GRID_MAX_MULT 128.0f
static inline void lutrt_grid_scales(float *ts, int n) {
    float mx = 0.0f;
    for (int j = 0; j < n; j++) mx = ts[j] > mx ? ts[j] : mx; /* NaN compares false */
    if (!(mx > 0.0f)) return;
    float u = ldexpf(1.0f, ilogbf(mx) - LUTRT_GRID_SHIFT);
    if (ceilf(mx / u) >= LUTRT_GRID_MAX_MULT) u *= 2.0f;
    for (int j = 0; j < n; j++)
        if (ts[j] > 0.0f) ts[j] = ceilf(ts[j] / u) * u;
}

/* sum_{j in [j0, j1)} mult[m, j] S[m, j] of row m (tables j0..j1-1 inside one grid block) */
static inline int lutrt_pt_zs(const lutrt_mma_args *a, size_t m, int j0, int j1) {
    const int32_t *z = a->tzs + m * (size_t)a->J;
    return z[j1 - 1] - (j0 % LUTRT_GRID_TABLES ? z[j0 - 1] : 0);
}

/* GEMV software prefetch. A GEMV walks its weight blocks in memory order, so the packed
 * weights are one sequential stream (and the scales / zeros two more); the hardware prefetcher
 * alone left the 4-bit per-table GEMV of SmolLM2's shapes (K x N = 576 x 1536, 1536 x 576)
 * at 8.3-9.5 GB/s from memory on the 2-core Xeon VM (streaming read: 14-15 GB/s); prefetching
 * 2 KiB ahead of the weights and 512 B ahead of the scales and zeros gave 9.9-11.6 GB/s (+20%,
 * interleaved medians). On the 16-core Xeon (bench/bench_gemv_prefetch.py, N = K = 4096,
 * per-table tables, weights from memory, medians of 3 interleaved runs, 1 / 4 / 16 threads):
 * no prefetch 475 / 134 / 67 us at 2 bits and 1036 / 282 / 116 at 4 bits; 1, 2 and 4 KiB
 * ahead 394-458 / 124-126 / 61-63 and 681-761 / 209-221 / 85-93 us, no distance ahead of the
 * others beyond the noise, so 2 KiB stays. Prefetches past the end of a buffer are harmless
 * (no fault). The kernels call these where a tile serves one token row (M = 1). */
#ifndef LUTRT_GEMV_PREFETCH_BYTES /* -DLUTRT_GEMV_PREFETCH_BYTES=N: other distances (A/B measurements) */
#define LUTRT_GEMV_PREFETCH_BYTES 2048
#endif
#ifndef LUTRT_NO_GEMV_PREFETCH /* -DLUTRT_NO_GEMV_PREFETCH=1: off (A/B measurements) */
#define LUTRT_NO_GEMV_PREFETCH 0
#endif
#define LUTRT_GEMV_PREFETCH_SCALE_BYTES 512

/* the `bytes` of weights read next from p (whole 64-byte lines), LUTRT_GEMV_PREFETCH_BYTES on */
static inline __attribute__((always_inline)) void lutrt_gemv_prefetch(const uint8_t *p, const int bytes) {
    if (LUTRT_NO_GEMV_PREFETCH) return;
    _Pragma("GCC unroll 8") for (int c = 0; c < bytes; c += 64)
        __builtin_prefetch(p + LUTRT_GEMV_PREFETCH_BYTES + c, 0, 3);
}

/* the scales and zeros of a block-group flush at packed index si (32 floats each) */
static inline __attribute__((always_inline)) void lutrt_gemv_prefetch_scales(const lutrt_mma_args *a, size_t si) {
    const int d = LUTRT_GEMV_PREFETCH_SCALE_BYTES;
    if (LUTRT_NO_GEMV_PREFETCH) return;
    __builtin_prefetch((const char *)(a->scales + si) + d, 0, 3);
    __builtin_prefetch((const char *)(a->scales + si) + d + 64, 0, 3);
    if (a->zeros) {
        __builtin_prefetch((const char *)(a->zeros + si) + d, 0, 3);
        __builtin_prefetch((const char *)(a->zeros + si) + d + 64, 0, 3);
    }
}

/* The threads a loop of a descriptor's num_threads runs on (0: the pool's default). */
static inline int lutrt_threads_for(int num_threads) {
    return num_threads > 0 ? num_threads : lutrt_get_num_threads();
}

/* The activation group of the int8-activation path (lutrt.h): the largest multiple of 4 that
 * is <= LUTRT_ACT_GROUP_MAX and divides the weight group G, or LUTRT_ACT_GROUP_MAX when G >= K
 * (one weight group). 128 bounds every sum the kernels keep exact: |I_hi| <= 255 * 127 * 128 <
 * 2^24 (float conversion), sum xq^2 over 16 activations per int32 lane of precompute_avx2.c. */
#define LUTRT_ACT_GROUP_MAX 128
static inline int lutrt_act_group(const lutrt_mma_desc *d) {
    const int g = d->group;
    if (g >= d->K || g % LUTRT_ACT_GROUP_MAX == 0) return LUTRT_ACT_GROUP_MAX;
    /* powers of two (the usual groups) without the loop's integer divisions: called per row
     * by the precompute, where the loop's ~25 idiv for G = 32 were 10% of acts_i8 (perf) */
    if (g > 0 && (g & (g - 1)) == 0) return g < 4 ? 4 : g;
    for (int ag = LUTRT_ACT_GROUP_MAX; ag > 4; ag -= 4)
        if (d->group % ag == 0) return ag;
    return 4;
}
/* The int8 activation section of an int8 table row (lutrt.h), after the J * E entries:
 * int8 hi[K], int8 lo[K], then f32 ascale[J], f32 shi[J], f32 slo[J] of which the first
 * NA = ceil(K / lutrt_act_group) are used (sized for the finest group, so the row size
 * depends on K and E only). */
static inline size_t lutrt_row_acts_offset(const lutrt_mma_desc *d) {
    return (size_t)(d->K / 4) * (d->mirrored ? 8u : 16u);
}
typedef struct {
    int8_t *hi, *lo;
    float *ascale, *shi, *slo;
} lutrt_acts_section;
static inline lutrt_acts_section lutrt_row_acts(const lutrt_mma_desc *d, const void *row) {
    uint8_t *base = (uint8_t *)row + lutrt_row_acts_offset(d);
    float *f = (float *)(base + 2 * (size_t)d->K);
    const size_t J = (size_t)(d->K / 4);
    return (lutrt_acts_section){(int8_t *)base, (int8_t *)base + d->K, f, f + J, f + 2 * J};
}
/* Two-pass activations: ascale = max|x| / LUTRT_ACT_QMAX per activation group, xq =
 * round_half_even(x / ascale) in [-16256, 16256] = 127 * 128, hi = round_half_even(xq / 128)
 * in [-127, 127], lo = xq - 128 hi in [-64, 64]. */
#define LUTRT_ACT_QMAX 16256.0f
/* One int8 pass suffices for an activation group whose crest factor max|xq| / rms(xq) is at
 * most 3.5: xq is then rounded to a multiple of 128 (lo = 0, hi = round_half_even(xq / 128)) and
 * S_lo is stored as -0.0f, which tells the int8-activation kernels to skip the low pass
 * (lutrt.h). Integer test, exact and independent of summation order:
 * 4 max|xq|^2 n <= 49 sum xq^2 over the group's n activations. */
static inline int lutrt_act_one_pass(int64_t max_abs_xq, int64_t sum_sq_xq, int n) {
    return 4 * max_abs_xq * max_abs_xq * (int64_t)n <= 49 * sum_sq_xq;
}
/* ... and only when one pass is enabled (lutrt_one_pass_max_bits(), off by default, lutrt.h)
 * for tables whose readers all have 1..that-bit weights (desc consumer_bits); wider weights
 * (the 8-bit code-byte head) and tables of unknown readers always keep two passes. */
static inline int lutrt_act_one_pass_allowed(const lutrt_mma_desc *d) {
    return d->consumer_bits >= 1 && d->consumer_bits <= lutrt_one_pass_max_bits();
}
static inline int lutrt_act_no_low_pass(float slo) {
    uint32_t u;
    memcpy(&u, &slo, 4);
    return u == 0x80000000u; /* -0.0f: S_lo of a two-pass group is an integer sum, never -0 */
}
static inline float lutrt_act_scale(float mx, int finite) {
    if (!finite) return __builtin_nanf("");
    return mx < LUTRT_TINY_SCALE ? 0.0f : mx / LUTRT_ACT_QMAX;
}
/* Writes that section for one row: per activation group (activations k0..k1-1) ascale =
 * max|x| / 16256 (NaN when a table scale group overlapping it has a NaN tscale, so a
 * non-finite row poisons this path exactly like the tables; 0 below LUTRT_TINY_SCALE), hi, lo
 * and their integer sums shi, slo. Portable version (precompute.c); precompute_avx2.c has a
 * bit-identical AVX2 one. */
/* The section of a table row its consumers (desc consumer_bits and layout, lutrt.h) leave
 * unread at this M, which a precompute then skips (one lutrt_i8act_min_m per row):
 *   LUTRT_ENTRIES_UNREAD: they take the int8-activation kernel (code-byte weights: at every M)
 *     and read no entry, scale or sum (tscale then only marks non-finite scale groups:
 *     lutrt_mark_finite); the activation section is written alone;
 *   LUTRT_ACTS_UNREAD: they take a LUT kernel (bit-plane weights, fewer than
 *     lutrt_i8act_min_m(B) tokens or that path off) and read no int8 activation (SmolLM2-135M
 *     decode: ~1% of a step);
 *   LUTRT_ALL_READ: unknown readers, f32 tables. */
enum { LUTRT_ALL_READ = 0, LUTRT_ENTRIES_UNREAD = 1, LUTRT_ACTS_UNREAD = 2 };
static inline int lutrt_unread_section(const lutrt_mma_desc *d) {
    if (!d->table_i8 || d->consumer_bits == 0) return LUTRT_ALL_READ;
    if (d->layout == LUTRT_LAYOUT_CODE_BYTES) return LUTRT_ENTRIES_UNREAD;
    const int m = lutrt_i8act_min_m(d->consumer_bits);
    return m > 0 && d->M >= m ? LUTRT_ENTRIES_UNREAD : LUTRT_ACTS_UNREAD;
}

void lutrt_precompute_acts_ref(const lutrt_mma_desc *d, const float *x, const float *tscale,
                               void *tables_row);

/* tscale[s] = NaN where table scale group s is not finite, else 0, from asum[j] (sum_i |x_i|
 * of table j, as the tables sum it: (|x0| + |x1|) + (|x2| + |x3|)) for tables j0..j1-1, which
 * hold whole scale groups: the NaN tscale lutrt_table_scale gives such a group, without the
 * scale (the activation section reads only that). */
static inline void lutrt_mark_finite(const lutrt_mma_desc *d, const float *asum, int j0, int j1,
                                     float *tscale) {
    const int jt = d->scale_group / 4;
    for (int s0 = j0; s0 < j1; s0 += jt) {
        int finite = 1;
        for (int j = s0; j < j1 && j < s0 + jt; j++) finite &= asum[j - j0] <= FLT_MAX;
        tscale[s0 / jt] = finite ? 0.0f : __builtin_nanf("");
    }
}

/* Validation shared by precompute and mma; returns LUTRT_OK or sets the last error. */
int lutrt_check_desc(const lutrt_mma_desc *d, int for_mma);
int lutrt_fail(const char *fmt, ...);

/* Runs fn(ctx, begin, end) over [0, ntasks) in chunks of `grain` tasks claimed by up to
 * nthreads threads (nthreads <= 0: the pool default). Blocks until all chunks are done. */
typedef void (*lutrt_task_fn)(void *ctx, int begin, int end);
void lutrt_parallel_for(int nthreads, int ntasks, int grain, lutrt_task_fn fn, void *ctx);
/* The same with owner-first scheduling (threadpool.c): thread i first runs the i-th of the
 * nthreads contiguous ranges of whole grains, front to back, in chunks of 3/4 of what it has left;
 * then it steals half of the fullest range's rest from its back. For loops whose tasks stream
 * consecutive memory (a chunk's next task is mostly the same thread's next chunk). */
void lutrt_parallel_for_owned(int nthreads, int ntasks, int grain, lutrt_task_fn fn, void *ctx);
/* Registers fn (once; at most 8) to run in the calling thread of lutrt_shutdown: a kernel frees
 * its per-thread caches through it, so the pool calls no kernel by name. */
void lutrt_pool_on_shutdown(void (*fn)(void));

/* GEMM (M > 1) tiles walk this many weight blocks (~256 KiB of packed weights, an even
 * number) for all rows before moving on, so the blocks stay in L2 across rows. */
static inline int lutrt_super_blocks(const lutrt_mma_args *a) {
    size_t blk_bytes = (size_t)a->J * a->chunk;
    int super = (int)((256u << 10) / (blk_bytes ? blk_bytes : 1));
    return super < 2 ? 2 : (super & ~1);
}

/* ---- packed weight layout (packing.py writes it; see its docstring) ---------------------
 * Block chunk of (block, table j): 16*B bytes at w + (blk * J + j) * 16 * B.
 *   Plane pair p (planes 2p, 2p+1), p < B/2: 32 bytes at 32p. Byte t holds code A_t in its low
 *   nibble, code B_t in its high nibble; A_{2i+s} = plane 2p+s of row i, B_{2i+s} = plane 2p+s
 *   of row 16+i (i < 16, s in {0,1}).
 *   Odd B, last plane: 16 bytes at 32*(B/2). Byte t: low nibble C_t, high nibble D_t with
 *   C_{2i} = row i, C_{2i+1} = row 16+i, D_{2i} = row 8+i, D_{2i+1} = row 24+i (i < 8).
 * These orders make one vpshufb + vpmaddubsw yield 16 consecutive rows per int16 vector. */
static inline int lutrt_code_at(const uint8_t *chunk, int bits, int plane, int row) {
    int npairs = bits / 2;
    if (plane < 2 * npairs) {
        const uint8_t *p = chunk + 32 * (plane / 2);
        int s = plane & 1;
        int byte = row < 16 ? p[2 * row + s] : p[2 * (row - 16) + s];
        return row < 16 ? (byte & 15) : (byte >> 4);
    }
    const uint8_t *p = chunk + 32 * npairs;
    int quarter = row >> 3, i = row & 7;
    int byte = p[2 * i + (quarter >> 1)];
    return (quarter & 1) ? (byte >> 4) : (byte & 15);
}

/* ---- attention kernels (attention.c, attention_avx2.c, attention_avx512.c) -------------- */
/* A task's query vectors in the 16 lanes of a vector (attention.c, "lanes"): lane i holds
 * query i, so the online softmax's max, exp and sums need no horizontal reductions and each
 * key / value element is broadcast once for 16 queries. qt and acct are the queries and the
 * unnormalized outputs transposed, [d][lane]; lanes past the task's queries have lo = hi = 0
 * (no visible key) and qt = 0. */
#define LUTRT_ATTN_LANES 16
#define LUTRT_ATTN_LANES_MAX_D 128
typedef struct {
    int D;
    float scale;
    int32_t lo[LUTRT_ATTN_LANES], hi[LUTRT_ATTN_LANES]; /* visible keys [lo, hi) per lane */
    float m[LUTRT_ATTN_LANES], l[LUTRT_ATTN_LANES];     /* running max and sum */
    _Alignas(64) float qt[LUTRT_ATTN_LANES_MAX_D][LUTRT_ATTN_LANES];
    _Alignas(64) float acct[LUTRT_ATTN_LANES_MAX_D][LUTRT_ATTN_LANES];
} lutrt_attn_lanes;

typedef struct lutrt_attn_ops {
    const char *name;
    /* s[j] = scale * (q . k[j*D .. j*D+D-1]) for j < n */
    void (*scores)(const float *q, const float *k, int n, int D, float scale, float *s);
    float (*max)(const float *s, int n); /* -inf for all -inf */
    /* s[j] = exp(s[j] - m) (exactly 0 for s[j] = -inf; m finite); returns the sum */
    float (*exp_sum)(float *s, int n, float m);
    /* acc[d] = alpha * acc[d] + sum_j p[j] * v[j*D + d] for d < D */
    void (*accumulate)(float *acc, float alpha, const float *p, const float *v, int n, int D);
    /* f[i] = h[i] (IEEE binary16 -> f32, exact) for i < n: f16 KV cache blocks */
    void (*widen)(const uint16_t *h, float *f, size_t n);
    /* keys kb..kb+n-1 (n <= 64; rows k, v, D apart) into the lanes' online softmax (st->D a
     * multiple of 16); NULL where the per-query kernels above serve every task */
    void (*lanes_block)(lutrt_attn_lanes *st, const float *k, const float *v, int kb, int n);
    /* st->qt from the nq <= 16 query vectors q[i] (D floats; lanes from nq on 0), acct = 0 */
    void (*lanes_load)(lutrt_attn_lanes *st, const float *const *q, int nq);
    /* out[i][d] = acct[d][i] * mult[i] for i < nq, d < D */
    void (*lanes_store)(const lutrt_attn_lanes *st, float *const *out, int nq, const float *mult);
} lutrt_attn_ops;

/* IEEE binary16 <-> f32 (attention.c): round to nearest even, overflow to +-inf, subnormals
 * kept, NaN -> a quiet NaN; f16 -> f32 is exact. The same bits on every CPU. */
uint16_t lutrt_f32_to_f16(float f);
float lutrt_f16_to_f32(uint16_t h);

extern const lutrt_attn_ops lutrt_attn_ops_ref;
#ifdef LUTRT_X86
extern const lutrt_attn_ops lutrt_attn_ops_avx2;
/* NULL unless attention_avx512.c was compiled with -mavx512f (not under SIMDe emulation). */
extern const lutrt_attn_ops *const lutrt_attn_ops_avx512_ptr;
#endif

/* The activations x f32 [M, K] of the rows of f32 tables, rebuilt from the tables (the
 * lossless mode's large-M path, mma_f32dq_*.c): plain tables hold x[4j+i] as entry 1 << i
 * exactly; mirrored ones give x[4j+i] = (T[1 << i] - T[0]) / 2 for i < 3 and
 * x[4j+3] = -(T[0] + T[7]) / 2. */
static inline void lutrt_acts_from_f32_tables(const lutrt_mma_args *a, float *x);

/* The f32-dequantize kernels' call (mma_f32dq_avx512.c, mma_f32dq_avx2.c): x f32 [M, K]
 * rebuilt from the tables, then `task` over the weight blocks on the pool, its ctx a
 * lutrt_f32dq_job. LUTRT_OK, or LUTRT_ERR when out of memory. */
typedef struct {
    const lutrt_mma_args *a;
    const float *x;
} lutrt_f32dq_job;
static inline int lutrt_f32dq_run(const lutrt_mma_args *a, lutrt_task_fn task) {
    float *x = (float *)malloc((size_t)a->M * (size_t)a->K * sizeof(float));
    if (!x) return lutrt_fail("lutrt_mma: out of memory");
    lutrt_acts_from_f32_tables(a, x);
    lutrt_f32dq_job job = {a, x};
    lutrt_parallel_for(a->d->num_threads, a->NB, 1, task, &job);
    free(x);
    return LUTRT_OK;
}

static inline void lutrt_acts_from_f32_tables(const lutrt_mma_args *a, float *x) {
    for (int m = 0; m < a->M; m++) {
        const float *t = (const float *)((const uint8_t *)a->tables + (size_t)m * a->row_bytes);
        float *xr = x + (size_t)m * a->K;
        for (int j = 0; j < a->J; j++, t += a->entries) {
            if (a->mirrored) {
                xr[4 * j + 0] = (t[1] - t[0]) * 0.5f;
                xr[4 * j + 1] = (t[2] - t[0]) * 0.5f;
                xr[4 * j + 2] = (t[4] - t[0]) * 0.5f;
                xr[4 * j + 3] = -(t[0] + t[7]) * 0.5f;
            } else {
                xr[4 * j + 0] = t[1];
                xr[4 * j + 1] = t[2];
                xr[4 * j + 2] = t[4];
                xr[4 * j + 3] = t[8];
            }
        }
    }
}


#endif /* LUTRT_INTERNAL_H */
