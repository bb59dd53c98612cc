/* mma_i8act_avx2.c — lut.mma at large M from the rows' int8 activations, for AVX2 CPUs
 * without AVX512-VNNI (mma_i8act_avx512vnni.c is the same path there).
 *
 * The formula is lutrt.h's "Large M" one. The two-pass activations of a token row are joined
 * back into xq = 128 hi + lo (int16, |xq| <= 16256) once per call, so one vpmaddwd
 * (int16 x int16 -> int32 pairs) takes 16 products of any code width (q <= 255):
 *
 *   I = sum_{k in t} q[n, k] xq[m, k]      (int32: |I| <= 32 * 255 * 16256 < 2^28)
 *   S = 128 S_hi[m, t] + S_lo[m, t]         (int32, the quantized activations' sum)
 *   out[m, n] += s[n, g] ascale[m, t] * (float(I - zi S) - zf S),   z = zi + zf
 *
 * with zi = z rounded to an integer (clamped to +-1024, so zi S fits int32) and zf the rest.
 * I - zi S is exact, so codes equal to an integer zero point give exactly 0 (W = 0), and for
 * integer z the value equals the VNNI kernel's 128 (I_hi - z S_hi) + (I_lo - z S_lo) before
 * the same single rounding to float.
 *
 * Code-byte weights (LUTRT_LAYOUT_CODE_BYTES) are only widened to int16 (rows in order).
 * Work: a thread takes one block of 32 weight rows at a time and unpacks its codes once into
 * int16 [J][32 rows][4 k] (the bit planes of lutrt_internal.h's layout, mirrored patterns
 * mapped back to unsigned codes: s = 2 s', z = (z' + 2^B - 1) / 2), then runs every token
 * against it, 2 tokens x 16 rows at a time: per table one 64-bit broadcast of the token's 4
 * activations and 4 vpmaddwd over [4 rows x 4 k] vectors. Accumulator lane (row, k pair)
 * sums are joined by vphaddd into the row order 0,1,4,5,2,3,6,7 (ROW_PERM), which the scales
 * and zero points are permuted to, and undone at the store.
 * Compiled with -mavx2 -mfma -mf16c (build.py, "*_avx2.c"); dispatch.c picks it when the CPU has
 * AVX2 and FMA but no AVX512-VNNI.
 */
#include "lutrt_internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "unpack_avx2.h"
#include "unpack_scratch.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define ZI_MAX 1024.0f

static int min_int(int a, int b) { return a < b ? a : b; }

typedef struct {
    const int16_t *xq;  /* the row's activations, 128 hi + lo */
    const float *ascale, *shi, *slo;
} act_row;

/* 8 floats of rows 8c..8c+7 in ROW_PERM order */
ALWAYS_INLINE __m256 perm8(const float *p) {
    return _mm256_permutevar8x32_ps(_mm256_loadu_ps(p), _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
}

/* Token rows m0..m0+MR-1 (MR <= 2) against rows 16h..16h+15 of the unpacked block. */
ALWAYS_INLINE void tile(const lutrt_mma_args *a, const int16_t *q16, int blk, int h,
                        const act_row *rows, int m0, const int MR) {
    const float sfac = a->mirrored ? 2.0f : 1.0f;
    const float zadd = a->mirrored ? (float)((1 << a->bits) - 1) : 0.0f;
    __m256 oacc[2][2];
    UNROLL for (int r = 0; r < MR; r++) oacc[r][0] = oacc[r][1] = _mm256_setzero_ps();
    for (int g = 0; g < a->NG; g++) {
        const int j0 = g * a->jg, j1 = min_int(a->J, j0 + a->jg);
        const size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N + 16 * (size_t)h;
        __m256 s[2], zf[2];
        __m256i zi[2];
        UNROLL for (int c = 0; c < 2; c++) {
            __m256 z = a->zeros ? perm8(a->zeros + si + 8 * c) : _mm256_set1_ps(a->zimp);
            if (a->mirrored) z = _mm256_mul_ps(_mm256_add_ps(z, _mm256_set1_ps(zadd)), _mm256_set1_ps(0.5f));
            __m256 zr = _mm256_round_ps(z, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            zr = _mm256_min_ps(_mm256_max_ps(zr, _mm256_set1_ps(-ZI_MAX)), _mm256_set1_ps(ZI_MAX));
            zi[c] = _mm256_cvtps_epi32(zr);
            zf[c] = _mm256_sub_ps(z, zr); /* NaN z stays NaN */
            s[c] = _mm256_mul_ps(perm8(a->scales + si + 8 * c), _mm256_set1_ps(sfac));
        }
        for (int js = j0, t = j0 / a->ja; js < j1; js += a->ja, t++) {
            const int je = min_int(j1, js + a->ja);
            __m256i acc[2][4];
            UNROLL for (int r = 0; r < MR; r++)
                UNROLL for (int u = 0; u < 4; u++) acc[r][u] = _mm256_setzero_si256();
            for (int j = js; j < je; j++) {
                const __m256i *w = (const __m256i *)(q16 + (size_t)j * 128) + 4 * h;
                __m256i x[2];
                UNROLL for (int r = 0; r < MR; r++) {
                    int64_t v;
                    memcpy(&v, rows[r].xq + 4 * j, 8);
                    x[r] = _mm256_set1_epi64x(v);
                }
                UNROLL for (int u = 0; u < 4; u++) {
                    const __m256i wu = _mm256_load_si256(w + u);
                    UNROLL for (int r = 0; r < MR; r++)
                        acc[r][u] = _mm256_add_epi32(acc[r][u], _mm256_madd_epi16(wu, x[r]));
                }
            }
            UNROLL for (int r = 0; r < MR; r++) {
                const float Sf = 128.0f * rows[r].shi[t] + rows[r].slo[t]; /* exact: < 2^20 */
                const __m256i S = _mm256_set1_epi32((int32_t)Sf);
                const __m256 Sv = _mm256_set1_ps(Sf), as = _mm256_set1_ps(rows[r].ascale[t]);
                UNROLL for (int c = 0; c < 2; c++) {
                    const __m256i I = _mm256_hadd_epi32(acc[r][2 * c], acc[r][2 * c + 1]);
                    const __m256i v = _mm256_sub_epi32(I, _mm256_mullo_epi32(zi[c], S));
                    const __m256 vf = _mm256_fnmadd_ps(zf[c], Sv, _mm256_cvtepi32_ps(v));
                    oacc[r][c] = _mm256_fmadd_ps(vf, _mm256_mul_ps(s[c], as), oacc[r][c]);
                }
            }
        }
    }
    const int n0 = blk * LUTRT_BLOCK_N + 16 * h, rows_n = min_int(16, a->N - n0);
    if (rows_n <= 0) return;
    const __m256i unperm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7); /* its own inverse */
    UNROLL for (int r = 0; r < MR; r++) {
        float tmp[16];
        _mm256_storeu_ps(tmp, _mm256_permutevar8x32_ps(oacc[r][0], unperm));
        _mm256_storeu_ps(tmp + 8, _mm256_permutevar8x32_ps(oacc[r][1], unperm));
        memcpy(a->out + (size_t)(m0 + r) * a->N + n0, tmp, (size_t)rows_n * sizeof(float));
    }
}

static __attribute__((noinline)) void tile_1(const lutrt_mma_args *a, const int16_t *q, int blk,
                                             int h, const act_row *rows, int m0) {
    tile(a, q, blk, h, rows, m0, 1);
}
static __attribute__((noinline)) void tile_2(const lutrt_mma_args *a, const int16_t *q, int blk,
                                             int h, const act_row *rows, int m0) {
    tile(a, q, blk, h, rows, m0, 2);
}

typedef struct {
    const lutrt_mma_args *a;
    const act_row *rows;
} job_t;

static void blocks_task(void *ctx, int b0, int b1) {
    const job_t *job = (const job_t *)ctx;
    const lutrt_mma_args *a = job->a;
    int16_t *q16 = (int16_t *)lutrt_unpack_scratch((size_t)a->J * 256);
    if (!q16) { /* out of memory */
        lutrt_mma_i8act_c_blocks(a, b0, b1); /* the same formula, no scratch */
        return;
    }
    for (int blk = b0; blk < b1; blk++) {
        lutrt_unpack_block_avx2(a, blk, q16);
        for (int h = 0; h < 2; h++) {
            int m = 0;
            for (; m + 2 <= a->M; m += 2) tile_2(a, q16, blk, h, job->rows + m, m);
            if (m < a->M) tile_1(a, q16, blk, h, job->rows + m, m);
        }
    }
}

static int mma_i8act_avx2(const lutrt_mma_args *a) {
    const size_t K = (size_t)a->K, M = (size_t)a->M;
    /* the calling thread's buffer, kept between calls (a fresh MiB is page faults each call) */
    const size_t xq_bytes = (M * K * sizeof(int16_t) + 63) / 64 * 64;
    uint8_t *buf = lutrt_scratch(1, xq_bytes + (M * sizeof(act_row) + 63) / 64 * 64);
    if (!buf) return lutrt_fail("lutrt_mma: out of memory");
    int16_t *xq = (int16_t *)buf;
    act_row *rows = (act_row *)(buf + xq_bytes);
    for (size_t m = 0; m < M; m++) {
        const lutrt_acts_section s =
            lutrt_row_acts(a->d, (const uint8_t *)a->tables + m * a->row_bytes);
        int16_t *row = xq + m * K;
        size_t k = 0;
        for (; k + 16 <= K; k += 16) {
            const __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(s.hi + k)));
            const __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(s.lo + k)));
            _mm256_storeu_si256((__m256i *)(row + k), _mm256_add_epi16(_mm256_slli_epi16(hi, 7), lo));
        }
        for (; k < K; k++) row[k] = (int16_t)(128 * s.hi[k] + s.lo[k]);
        rows[m] = (act_row){row, s.ascale, s.shi, s.slo};
    }
    job_t job = {a, rows};
    lutrt_parallel_for(a->d->num_threads, a->NB, 1, blocks_task, &job);
    return LUTRT_OK;
}

const lutrt_mma_call_fn lutrt_mma_i8act_avx2_ptr = mma_i8act_avx2;
#else
const lutrt_mma_call_fn lutrt_mma_i8act_avx2_ptr = 0;
#endif
