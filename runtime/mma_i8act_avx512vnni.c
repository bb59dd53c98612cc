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
 * point give exactly 0. A one-pass group (S_lo = -0.0f: lo = 0, lutrt.h) skips the low pass:
 * one vpdpbusd per word instead of two, exactly the same sum.
 *
 * Code-byte weights (LUTRT_LAYOUT_CODE_BYTES) are that unpacked layout already: read in place.
 * Work: a thread takes one block of 32 weight rows at a time, unpacks its bit planes once
 * into uint8 [J][2][16 rows][4] (vpdpbusd layout: one zmm = 16 rows x 4 consecutive k; one
 * vpermd per plane and 16 rows maps a 4-bit code to 4 bytes, mirroring included) and runs
 * every token row against it, MR rows at a time, K chunk by K chunk (KC_TABLES tables: the
 * chunk's 32 KiB of codes stay in L1 across the row tiles; partial sums wait in a per-thread
 * [M][32] float buffer). Per activation group, the high pass of the MR rows runs in one sweep
 * (2 x MR int32 accumulators), then each row that needs it its low pass over the same codes;
 * when every row of the tile does, both passes run in one sweep (4 x MR accumulators).
 * With an A operand larger than L2, a task takes up to 4 consecutive blocks instead and runs
 * each row tile against all of them in turn (run_group; lutrt_i8act_blocks_per_task).
 * Compiled only with -mavx512vnni (build.py); otherwise lutrt_mma_i8act_ptr is NULL and
 * lutrt_mma never takes this path. mma_i8act_avx512amx.c compiles this file again with
 * LUTRT_I8ACT_AMX, which hands every 16 token rows to AMX tiles (amx_rows there).
 */
#include "lutrt_internal.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "unpack_avx512.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")


static int min_int(int a, int b) { return a < b ? a : b; }

#ifdef LUTRT_I8ACT_AMX /* mma_i8act_avx512amx.c */
static const uint8_t *amx_pack(const lutrt_mma_args *a, int *local);
static const uint8_t *amx_local_pack(const lutrt_mma_args *a, unsigned call);
static void amx_begin(const lutrt_mma_args *a);
static void amx_end(void);
static void amx_rows(const lutrt_mma_args *a, const uint8_t *apack, const uint8_t *const *q,
                     int blk0, int nb, int m0, int t0, int t1, float *const *acc,
                     lutrt_ahead *ahead);
#define I8ACT_PTR lutrt_mma_i8act_amx_ptr
#else
#define I8ACT_PTR lutrt_mma_i8act_ptr
#endif

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

/* oacc += s * ascale * (128 fma(-z, S_hi, I_hi) + fma(-z, S_lo, I_lo)) for one row and
 * activation group (its ascale, S_hi, S_lo) */
ALWAYS_INLINE void two_pass_epilogue(float ascale, float shi, float slo, const __m512 z[2],
                                     const __m512 s[2], const __m512i ih[2], const __m512i il[2],
                                     __m512 oacc[2]) {
    const __m512 Sh = _mm512_set1_ps(shi), Sl = _mm512_set1_ps(slo);
    const __m512 as = _mm512_set1_ps(ascale);
    UNROLL for (int h = 0; h < 2; h++) {
        const __m512 vh = _mm512_fnmadd_ps(z[h], Sh, _mm512_cvtepi32_ps(ih[h]));
        const __m512 vl = _mm512_fnmadd_ps(z[h], Sl, _mm512_cvtepi32_ps(il[h]));
        const __m512 v = _mm512_fmadd_ps(vh, _mm512_set1_ps(128.0f), vl);
        oacc[h] = _mm512_fmadd_ps(v, _mm512_mul_ps(s[h], as), oacc[h]);
    }
}

/* the same without a low pass (S_lo = -0): s * (128 ascale) * fma(-z, S_hi, I_hi); 128 x is
 * exact both ways */
ALWAYS_INLINE void one_pass_epilogue(float ascale, float shi, const __m512 z[2], const __m512 s[2],
                                     const __m512i ih[2], __m512 oacc[2]) {
    const __m512 Sh = _mm512_set1_ps(shi);
    const __m512 vas = _mm512_set1_ps(128.0f * ascale);
    UNROLL for (int h = 0; h < 2; h++) {
        const __m512 vh = _mm512_fnmadd_ps(z[h], Sh, _mm512_cvtepi32_ps(ih[h]));
        oacc[h] = _mm512_fmadd_ps(vh, _mm512_mul_ps(s[h], vas), oacc[h]);
    }
}

/* Token rows m0..m0+MR-1 against the unpacked block blk (32 weight rows), activation groups
 * t0..t1-1 (a K chunk): acc (float [MR][32], this block's partial sums of those rows) +=, or
 * the output rows = when t1 is the last group. Per activation group t (tables js..je-1, in
 * weight group g):
 *   I_hi = sum q . hi, and only when the row's lo is not all zero, I_lo = sum q . lo (int32,
 *   |I| <= 255 * 127 * 32), then
 *   out += s * ascale * (128 fma(-z, S_hi, I_hi) + fma(-z, S_lo, I_lo)),
 * the second term only with a low pass (lut.precompute writes lo = 0 for a group that one
 * int8 pass represents; skipping it is exact: 128 x and s x ascale x 128 are exact scalings).
 * Each fma is exact for an integer z (integers below 2^24), so codes equal to z give 0. */
ALWAYS_INLINE void tile(const lutrt_mma_args *a, const uint8_t *q, int blk, int m0, const int MR,
                        int t0, int t1, float *acc) {
    const int J = a->J, stream = a->code_bytes && a->M <= STREAM_MAX_M;
    act_row rows[8];
    UNROLL for (int r = 0; r < MR; r++) rows[r] = row_at(a, m0 + r);
    __m512 oacc[8][2];
    __m512i ih[8][2];
    UNROLL for (int r = 0; r < MR; r++) {
        if (t0 == 0) {
            oacc[r][0] = oacc[r][1] = _mm512_setzero_ps();
        } else {
            oacc[r][0] = _mm512_load_ps(acc + 32 * r);
            oacc[r][1] = _mm512_load_ps(acc + 32 * r + 16);
        }
    }
    for (int t = t0; t < t1; t++) {
        const int js = t * a->ja, je = min_int(J, js + a->ja);
        __m512 z[2], s[2];
        lutrt_block_group_sz(a, blk, js / a->jg, z, s);
        int low = 0; /* rows with a low pass (S_lo != -0, lutrt_act_no_low_pass) */
        UNROLL for (int r = 0; r < MR; r++) low |= !lutrt_act_no_low_pass(rows[r].slo[t]) << r;
        UNROLL for (int r = 0; r < MR; r++) ih[r][0] = ih[r][1] = _mm512_setzero_si512();
        if (low == (1 << MR) - 1) { /* every row: both passes in one sweep */
            __m512i il[8][2];
            UNROLL for (int r = 0; r < MR; r++) il[r][0] = il[r][1] = _mm512_setzero_si512();
            for (int j = js; j < je; j++) {
                if (stream) lutrt_gemv_prefetch(q + (size_t)j * 128, 128); /* see STREAM_MAX_M */
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
            UNROLL for (int r = 0; r < MR; r++)
                two_pass_epilogue(rows[r].ascale[t], rows[r].shi[t], rows[r].slo[t], z, s, ih[r], il[r],
                                  oacc[r]);
            continue;
        }
        for (int j = js; j < je; j++) {
            if (stream) lutrt_gemv_prefetch(q + (size_t)j * 128, 128); /* see STREAM_MAX_M */
            const __m512i w0 = _mm512_loadu_si512(q + (size_t)j * 128);
            const __m512i w1 = _mm512_loadu_si512(q + (size_t)j * 128 + 64);
            UNROLL for (int r = 0; r < MR; r++) {
                const __m512i xh = bcast4(rows[r].hi + 4 * j);
                ih[r][0] = dpbusd(ih[r][0], w0, xh);
                ih[r][1] = dpbusd(ih[r][1], w1, xh);
            }
        }
        UNROLL for (int r = 0; r < MR; r++) {
            if (low >> r & 1) { /* the low pass alone: the block's codes are in L1 */
                __m512i il[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
                for (int j = js; j < je; j++) {
                    const __m512i xl = bcast4(rows[r].lo + 4 * j);
                    il[0] = dpbusd(il[0], _mm512_loadu_si512(q + (size_t)j * 128), xl);
                    il[1] = dpbusd(il[1], _mm512_loadu_si512(q + (size_t)j * 128 + 64), xl);
                }
                two_pass_epilogue(rows[r].ascale[t], rows[r].shi[t], rows[r].slo[t], z, s, ih[r], il,
                                  oacc[r]);
            } else {
                one_pass_epilogue(rows[r].ascale[t], rows[r].shi[t], z, s, ih[r], oacc[r]);
            }
        }
    }
    if (t1 == a->NA) {
        const int n0 = blk * LUTRT_BLOCK_N, rows_n = min_int(LUTRT_BLOCK_N, a->N - n0);
        UNROLL for (int r = 0; r < MR; r++)
            lutrt_store_block_row(a->out + (size_t)(m0 + r) * a->N + n0, rows_n, oacc[r][0], oacc[r][1]);
    } else {
        UNROLL for (int r = 0; r < MR; r++) {
            _mm512_store_ps(acc + 32 * r, oacc[r][0]);
            _mm512_store_ps(acc + 32 * r + 16, oacc[r][1]);
        }
    }
}

#ifndef MR_MAX
#define MR_MAX 4 /* 2 int32 + 2 float accumulators per row */
#endif
/* Activation groups per K chunk: the chunk's unpacked codes (KC_TABLES x 128 bytes) stay in
 * L1 while every row tile runs over them. */
#ifndef KC_TABLES
#define KC_TABLES 256
#endif
#define TILE(MR)                                                                              \
    static __attribute__((noinline)) void tile_##MR(const lutrt_mma_args *a, const uint8_t *q, \
                                                    int blk, int m0, int t0, int t1,          \
                                                    float *acc) {                             \
        tile(a, q, blk, m0, MR, t0, t1, acc);                                                 \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
typedef void (*tile_fn)(const lutrt_mma_args *, const uint8_t *, int, int, int, int, float *);
static const tile_fn tiles[7] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

/* One call's work: its arguments and, with AMX, the token rows' activations packed as tiles
 * (amx_pack; NULL: every row on the VNNI tiles). */
typedef struct {
    const lutrt_mma_args *a;
    const uint8_t *apack;
    int local_pack; /* AMX: each thread packs the A operand itself (amx_local_pack), apack NULL */
    unsigned call;  /* this call's number (the per-thread pack's key) */
    int group;      /* weight blocks per task (run_group; lutrt_i8act_blocks_per_task) */
} i8act_call;

/* Steps of lutrt_ahead in one block's run_group: the AMX groups of its first row tile, else
 * its VNNI row tiles (every K chunk). */
static int ahead_steps(const i8act_call *c) {
    const lutrt_mma_args *a = c->a;
    if (c->apack) return a->J >= a->ja ? a->J / a->ja : 1;
    const int tc = a->ja >= KC_TABLES ? 1 : KC_TABLES / a->ja;
    return (a->M + MR_MAX - 1) / MR_MAX * ((a->NA + tc - 1) / tc);
}

/* Blocks blk0..blk0 + nb - 1 (codes q[i]; acc[i]: float [M][32] scratch, 64-byte aligned)
 * together, K chunk by K chunk: each row tile of A (16 rows on AMX, MR_MAX on the VNNI tiles)
 * against every block's codes in turn, so with nb > 1 the tile's activations are read once
 * per nb blocks (from L1) instead of all of A streaming once per block. The chunk is sized so
 * that the nb blocks' codes of a chunk fit where one block's do (KC_TABLES x 128 bytes); each
 * output's groups are summed in the same order for any nb (bitwise the same result).
 * `ahead` (may be NULL): the next blocks' weights, scales and zeros, prefetched in
 * ahead_steps(c) slices while these blocks' tiles compute. */
static void run_group(const i8act_call *c, const uint8_t *const *q, int blk0, int nb,
                      float *const *acc, lutrt_ahead *ahead) {
    const lutrt_mma_args *a = c->a;
    const int kc = KC_TABLES / nb, tc = a->ja >= kc ? 1 : kc / a->ja;
    for (int t0 = 0; t0 < a->NA; t0 += tc) {
        const int t1 = min_int(a->NA, t0 + tc);
        int m = 0;
#ifdef LUTRT_I8ACT_AMX
        if (c->apack) /* the first row tile's groups take the prefetch steps */
            for (; m + 16 <= a->M; m += 16) {
                float *accm[LUTRT_I8ACT_GROUP_MAX];
                for (int i = 0; i < nb; i++) accm[i] = acc[i] + 32 * m;
                amx_rows(a, c->apack, q, blk0, nb, m, t0, t1, accm, m == 0 ? ahead : NULL);
            }
#endif
        lutrt_ahead *vnni_ahead = c->apack ? NULL : ahead; /* else the VNNI row tiles take them */
        for (; m < a->M; m += MR_MAX) {
            const int mr = min_int(MR_MAX, a->M - m);
            if (vnni_ahead) lutrt_ahead_step(vnni_ahead);
            for (int i = 0; i < nb; i++) tiles[mr](a, q[i], blk0 + i, m, t0, t1, acc[i] + 32 * m);
        }
    }
}

/* Tasks b0..b1-1: weight blocks b0 * c->group .. b1 * c->group - 1 (the last task may have
 * fewer). */
static void blocks_task(void *ctx, int b0, int b1) {
    const i8act_call *c = (const i8act_call *)ctx;
    const lutrt_mma_args *a = c->a;
#ifdef LUTRT_I8ACT_AMX
    i8act_call here;
    if (c->local_pack) { /* this thread's own packed A (NULL, out of memory: the VNNI tiles) */
        here = *c;
        here.apack = amx_local_pack(a, c->call);
        c = &here;
    }
#endif
    const int G = c->group;
    b0 *= G;
    b1 = min_int(a->NB, b1 * G);
    const size_t qbytes = a->code_bytes ? 0 : (size_t)a->J * 128;
    uint8_t *q = lutrt_unpack_scratch(G * (qbytes + (size_t)a->M * 128));
    if (!q) { /* out of memory */
        lutrt_mma_i8act_c_blocks(a, b0, b1); /* the same formula, no scratch */
        return;
    }
    float *acc = (float *)(q + G * qbytes); /* G x [M][32] */
#ifdef LUTRT_I8ACT_AMX
    if (c->apack) amx_begin(a);
#endif
    lutrt_unpacker u;
    if (!a->code_bytes) lutrt_unpacker_init(&u, a->bits, a->mirrored);
    const int steps = ahead_steps(c);
    for (int blk = b0; blk < b1; blk += G) {
        const int nb = min_int(G, b1 - blk);
        const uint8_t *qs[LUTRT_I8ACT_GROUP_MAX];
        float *accs[LUTRT_I8ACT_GROUP_MAX];
        for (int i = 0; i < nb; i++) {
            accs[i] = acc + (size_t)i * a->M * 32;
            if (a->code_bytes) { /* the weights are the unpacked layout already */
                qs[i] = a->w + (size_t)(blk + i) * a->J * 128;
            } else {
                lutrt_unpack_block(a, blk + i, &u, q + i * qbytes);
                qs[i] = q + i * qbytes;
            }
        }
        /* the next blocks, past this claim's end too: under owner-first scheduling they are
         * mostly this thread's next claim */
        const int next = min_int(G, a->NB - (blk + nb));
        lutrt_ahead ahead, *ah = NULL;
        if (!a->code_bytes && next > 0) {
            lutrt_ahead_init(&ahead, a, blk + nb, next, steps);
            ah = &ahead;
        }
        run_group(c, qs, blk, nb, accs, ah);
    }
#ifdef LUTRT_I8ACT_AMX
    if (c->apack) amx_end();
#endif
}

static int mma_i8act(const lutrt_mma_args *a) {
    i8act_call c = {a, NULL, 0, 0, 1};
#ifdef LUTRT_I8ACT_AMX
    static atomic_uint calls;
    c.call = atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) + 1;
    /* NULL: < 16 rows, groups not a multiple of 32, no memory, or packed per thread */
    c.apack = amx_pack(a, &c.local_pack);
#endif
    /* owner-first: each thread streams one run of consecutive weight blocks (its claims are
     * consecutive, so the prefetch of the next block carries over), the rest stolen where a
     * thread falls behind. Guided claims interleaved the threads' blocks: every claim started
     * on a block nobody had prefetched and the threads' streams broke into pieces. 2-core AMX
     * VM, 2026-12-07, SmolLM2's four layer GEMMs x 30 layers at M = 16 (AMX), interleaved
     * medians: 2 threads 11.6 -> 10.1 ms (1 thread 18.3: 1.58x -> 1.85x); static halves did
     * as well there but lost on 16 threads (a 3-layer 492M-shaped prefill-128 on the lent
     * 16-core Xeon: 8.1-8.3x over 1 thread guided, 6.5-7.2x static). */
    c.group = lutrt_i8act_blocks_per_task(a->M, a->K, a->N, lutrt_threads_for(a->d->num_threads));
    lutrt_parallel_for_owned(a->d->num_threads, (a->NB + c.group - 1) / c.group, 1, blocks_task, &c);
    return LUTRT_OK;
}

const lutrt_mma_call_fn I8ACT_PTR = mma_i8act;
#else
const lutrt_mma_call_fn lutrt_mma_i8act_ptr = 0;
#endif
