/* mma_i8act_avx2.c — lut.mma at large M from the rows' int8 activations, for AVX2 CPUs
 * without AVX512-VNNI (mma_i8act_avx512vnni.c is the same path there). Two kernels:
 *
 * Codes of at most 4 bits (bit planes, or code bytes put in its order): unsigned code bytes times the int8
 * hi (and, in two-pass groups, lo) activations with vpmaddubsw, int16 sums over up to 8 tables,
 * one vpmaddwd by ones per 8 tables; the passes and the float epilogue of
 * mma_i8act_avx512vnni.c, so the output is bit-identical to the VNNI and portable kernels
 * (test_mma_i8act). Details at "Codes of at most 4 bits" below.
 *
 * Wider codes (5..8 bits), whose int16 sums could overflow there: the
 * two-pass activations of a token row are joined back into xq = 128 hi + lo (int16,
 * |xq| <= 16256) once per call, so one vpmaddwd (int16 x int16 -> int32 pairs) takes 16
 * products of any code width (q <= 255):
 *   I = sum_{k in t} q[n, k] xq[m, k]      (int32: |I| <= 128 * 255 * 16256 < 2^30)
 *   S = 128 S_hi[m, t] + S_lo[m, t]         (int32, the quantized activations' sum)
 *   out[m, n] += s[n, g] ascale[m, t] * (float(I - zi S) - zf S),   z = zi + zf
 *
 * with zi = z rounded to an integer (clamped to +-512, so zi S and I - zi S, at most
 * (255 + 512) * 128 * 16256 < 2^31, fit int32) and zf the rest.
 * I - zi S is exact, so codes equal to an integer zero point give exactly 0 (W = 0), and for
 * integer z the value equals the VNNI kernel's 128 (I_hi - z S_hi) + (I_lo - z S_lo) before
 * the same single rounding to float.
 *
 * Code-byte weights (LUTRT_LAYOUT_CODE_BYTES) are only widened to int16 (rows in order).
 * Work of this int16 kernel: a thread takes one block of 32 weight rows at a time and unpacks
 * its codes once into int16 [J][32 rows][4 k] (the bit planes of lutrt_internal.h's layout, mirrored patterns
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
#define ZI_MAX 512.0f

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
                const float Sf = 128.0f * rows[r].shi[t] + rows[r].slo[t]; /* exact: < 2^22 */
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

/* ---- Codes of at most 4 bits: bytes and vpmaddubsw ----------------------------------------
 * u8 code x s8 activation, pairs summed in int16 (|pair| <= 2 * 15 * 127 = 3810), those int16
 * sums added over runs of <= 8 tables (|sum| <= 30480 < 2^15), then one vpmaddwd by ones per
 * run gives each row's int32 I (an activation group of 32 is one run). Per table and 16 rows
 * of MR tokens: MR vpmaddubsw + MR vpaddw on 32 products each, where the int16 path above spends 2 MR
 * vpmaddwd + 2 MR vpaddd. The passes and the float epilogue are mma_i8act_avx512vnni.c's:
 *   out += s * ascale * (128 fma(-z, S_hi, I_hi) + fma(-z, S_lo, I_lo)),
 * the low pass only where S_lo != -0 (lutrt_act_no_low_pass), so the result is bit-identical to
 * the VNNI kernel's. Unpacked block: uint8 q8[J][4][32], ymm w = rows ROWS(w) = 16 (w >> 1) +
 * 4 (w & 1) + {0..3, 8..11} x 4 k (lutrt_unpack_table_avx2); partial sums float [M][32] in that
 * row order, put back in order at the store. K chunk by K chunk (KC8 tables: 16 KiB of codes
 * stay in L1 while every token tile runs over them). */
#define KC8 128
#define MR8 4 /* tokens per tile: 8 int16 accumulators, 2 codes, 1 activation register */

typedef struct {
    const int8_t *hi, *lo;
    const float *ascale, *shi, *slo;
} act_row8;

ALWAYS_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* floats of ROWS(w) from a 32-row array */
ALWAYS_INLINE __m256 rows_w(const float *p, int w) {
    const float *b = p + 16 * (w >> 1) + 4 * (w & 1);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(b)), _mm_loadu_ps(b + 8), 1);
}

/* acc + vpmaddubsw(w, x) (int16). Through asm: gcc otherwise copies every accumulator once
 * per iteration (vmovdqa) and spills one at 4 token rows, which held the loop to a quarter of
 * its vpmaddubsw rate. */
ALWAYS_INLINE __m256i madd16(__m256i acc, __m256i w, __m256i x) {
    __m256i p;
    __asm__("vpmaddubsw %3, %2, %1\n\tvpaddw %1, %0, %0" : "+x"(acc), "=&x"(p) : "x"(w), "x"(x));
    return acc;
}

/* int32 sums over tables js..je-1 of ymm 2h, 2h + 1 times the activations x (hi or lo): int16
 * sums over runs of <= 8 tables (|sum| <= 30480), each widened by one vpmaddwd by ones */
ALWAYS_INLINE void pass8(const uint8_t *q, int h, int js, int je, const int8_t *const *x,
                         const int MR, __m256i acc[][2]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int j0 = js; j0 < je; j0 += 8) {
        __m256i a16[MR8][2];
        UNROLL for (int r = 0; r < MR; r++) a16[r][0] = a16[r][1] = _mm256_setzero_si256();
        for (int j = j0; j < min_int(je, j0 + 8); j++) {
            const __m256i *w = (const __m256i *)(q + (size_t)j * 128) + 2 * h;
            const __m256i w0 = _mm256_load_si256(w), w1 = _mm256_load_si256(w + 1);
            UNROLL for (int r = 0; r < MR; r++) {
                const __m256i xr = bcast4(x[r] + 4 * j);
                a16[r][0] = madd16(a16[r][0], w0, xr);
                a16[r][1] = madd16(a16[r][1], w1, xr);
            }
        }
        UNROLL for (int r = 0; r < MR; r++) UNROLL for (int c = 0; c < 2; c++) {
            const __m256i w = _mm256_madd_epi16(a16[r][c], ones);
            acc[r][c] = j0 == js ? w : _mm256_add_epi32(acc[r][c], w);
        }
    }
}

/* Token rows m0..m0+MR-1, rows 16h..16h+15 of block blk, activation groups t0..t1-1:
 * acc[r][16 h ..] += their contributions (W order). */
ALWAYS_INLINE void tile8(const lutrt_mma_args *a, const uint8_t *q, int blk, int h,
                         const act_row8 *rows, const int MR, int t0, int t1,
                         float *restrict acc) {
    /* locals: the stores to acc may not alias them, so nothing is reloaded per group; one
     * pointer per token row (its hi; lo, ascale, S_hi, S_lo at fixed offsets, lutrt_row_acts) */
    const float sfac = a->mirrored ? 2.0f : 1.0f;
    const float zadd = a->mirrored ? (float)((1 << a->bits) - 1) : 0.0f, zimp = a->zimp;
    const int J = a->J, ja = a->ja, jg = a->jg, mirrored = a->mirrored;
    const size_t K = 4 * (size_t)J; /* lo at hi + K, floats at hi + 2K */
    const float *zeros = a->zeros, *scales = a->scales + (size_t)blk * a->NG * LUTRT_BLOCK_N;
    if (zeros) zeros += (size_t)blk * a->NG * LUTRT_BLOCK_N;
    const int8_t *xh[MR8];
    UNROLL for (int r = 0; r < MR; r++) xh[r] = rows[r].hi;
#define ROW_F(r) ((const float *)(xh[r] + 2 * K)) /* ascale; S_hi at + J, S_lo at + 2J */
    __m256 z[2], s[2];
    int g_loaded = -1;
    for (int t = t0; t < t1; t++) {
        const int js = t * ja, je = min_int(J, js + ja), g = js / jg;
        if (g != g_loaded) { /* the weight group's scales and zero points, ROWS(2h + c) */
            g_loaded = g;
            UNROLL for (int c = 0; c < 2; c++) {
                const size_t si = (size_t)g * LUTRT_BLOCK_N;
                const __m256 zz = zeros ? rows_w(zeros + si, 2 * h + c) : _mm256_set1_ps(zimp);
                z[c] = mirrored ? _mm256_mul_ps(_mm256_add_ps(zz, _mm256_set1_ps(zadd)), _mm256_set1_ps(0.5f)) : zz;
                s[c] = _mm256_mul_ps(rows_w(scales + si, 2 * h + c), _mm256_set1_ps(sfac));
            }
        }
        __m256i ih[MR8][2], il[MR8][2];
        pass8(q, h, js, je, xh, MR, ih);
        /* the low pass, for the rows that have one (S_lo != -0) only */
        const int8_t *xl[MR8];
        int nl = 0, li[MR8];
        UNROLL for (int r = 0; r < MR; r++) {
            li[r] = -1;
            if (!lutrt_act_no_low_pass(ROW_F(r)[2 * J + t])) li[r] = nl, xl[nl++] = xh[r] + K;
        }
        switch (nl) { /* the chunk's codes are in L1 */
        case 0: break;
        case 1: pass8(q, h, js, je, xl, 1, il); break;
        case 2: pass8(q, h, js, je, xl, 2, il); break;
        case 3: pass8(q, h, js, je, xl, 3, il); break;
        default: pass8(q, h, js, je, xl, MR, il); break;
        }
        UNROLL for (int r = 0; r < MR; r++) {
            float *o = acc + 32 * r + 16 * h;
            const float *f = ROW_F(r);
            const __m256 Sh = _mm256_set1_ps(f[J + t]);
            if (li[r] < 0) { /* s * (128 ascale) * fma(-z, S_hi, I_hi) */
                const __m256 vas = _mm256_set1_ps(128.0f * f[t]);
                UNROLL for (int c = 0; c < 2; c++) {
                    const __m256 I = _mm256_cvtepi32_ps(ih[r][c]);
                    const __m256 vh = _mm256_fnmadd_ps(z[c], Sh, I);
                    _mm256_store_ps(o + 8 * c, _mm256_fmadd_ps(vh, _mm256_mul_ps(s[c], vas), _mm256_load_ps(o + 8 * c)));
                }
            } else {
                const __m256 Sl = _mm256_set1_ps(f[2 * J + t]), as = _mm256_set1_ps(f[t]);
                UNROLL for (int c = 0; c < 2; c++) {
                    const __m256 vh = _mm256_fnmadd_ps(z[c], Sh, _mm256_cvtepi32_ps(ih[r][c]));
                    const __m256 vl = _mm256_fnmadd_ps(z[c], Sl, _mm256_cvtepi32_ps(il[li[r]][c]));
                    const __m256 v = _mm256_fmadd_ps(vh, _mm256_set1_ps(128.0f), vl);
                    _mm256_store_ps(o + 8 * c, _mm256_fmadd_ps(v, _mm256_mul_ps(s[c], as), _mm256_load_ps(o + 8 * c)));
                }
            }
        }
    }
#undef ROW_F
}

#define TILE8(MR)                                                                              \
    static __attribute__((noinline)) void tile8_##MR(const lutrt_mma_args *a, const uint8_t *q, \
                                                     int blk, int h, const act_row8 *rows,     \
                                                     int t0, int t1, float *acc) {            \
        tile8(a, q, blk, h, rows, MR, t0, t1, acc);                                            \
    }
TILE8(1) TILE8(2) TILE8(3) TILE8(4)
typedef void (*tile8_fn)(const lutrt_mma_args *, const uint8_t *, int, int, const act_row8 *, int,
                         int, float *);
static const tile8_fn tiles8[MR8 + 1] = {NULL, tile8_1, tile8_2, tile8_3, tile8_4};

typedef struct {
    const lutrt_mma_args *a;
    const act_row8 *rows;
} job8_t;

static void blocks_task8(void *ctx, int b0, int b1) {
    const job8_t *job = (const job8_t *)ctx;
    const lutrt_mma_args *a = job->a;
    const size_t qbytes = (size_t)a->J * 128;
    uint8_t *q = lutrt_unpack_scratch(qbytes + (size_t)a->M * 32 * sizeof(float));
    if (!q) { /* out of memory */
        lutrt_mma_i8act_c_blocks(a, b0, b1); /* the same formula, no scratch */
        return;
    }
    float *acc = (float *)(q + qbytes);
    const int tc = a->ja >= KC8 ? 1 : KC8 / a->ja;
    for (int blk = b0; blk < b1; blk++) {
        if (a->code_bytes) { /* [J][32 rows][4] in row order (row r at 4r) to ROWS(w) order */
            const uint8_t *src = a->w + (size_t)blk * a->J * 128;
            for (size_t j = 0; j < (size_t)a->J; j++)
                for (int w = 0; w < 4; w++) {
                    const int base = 16 * (w >> 1) + 4 * (w & 1);
                    memcpy(q + 128 * j + 32 * w, src + 128 * j + 4 * base, 16);
                    memcpy(q + 128 * j + 32 * w + 16, src + 128 * j + 4 * (base + 8), 16);
                }
        } else {
            lutrt_unpack_block_bytes_avx2(a, blk, q);
        }
        memset(acc, 0, (size_t)a->M * 32 * sizeof(float));
        for (int t0 = 0; t0 < a->NA; t0 += tc) {
            const int t1 = min_int(a->NA, t0 + tc);
            for (int h = 0; h < 2; h++) {
                int m = 0;
                for (; m + MR8 <= a->M; m += MR8) tiles8[MR8](a, q, blk, h, job->rows + m, t0, t1, acc + 32 * m);
                if (m < a->M) tiles8[a->M - m](a, q, blk, h, job->rows + m, t0, t1, acc + 32 * m);
            }
        }
        const int n0 = blk * LUTRT_BLOCK_N, rows_n = min_int(LUTRT_BLOCK_N, a->N - n0);
        for (int m = 0; m < a->M; m++) { /* W order back to row order */
            const float *src = acc + 32 * (size_t)m;
            float tmp[32];
            for (int w = 0; w < 4; w++) {
                const int base = 16 * (w >> 1) + 4 * (w & 1);
                memcpy(tmp + base, src + 8 * w, 4 * sizeof(float));
                memcpy(tmp + base + 8, src + 8 * w + 4, 4 * sizeof(float));
            }
            memcpy(a->out + (size_t)m * a->N + n0, tmp, (size_t)rows_n * sizeof(float));
        }
    }
}

/* int16 sums of <= 8 tables stay below 2^15 only for codes of at most 4 bits */
static int bytes_path(const lutrt_mma_args *a) {
    return a->bits <= LUTRT_I8ACT_AVX2_BYTES_MAX_BITS;
}

static int mma_i8act_avx2_bytes(const lutrt_mma_args *a) {
    act_row8 *rows = (act_row8 *)lutrt_scratch(1, ((size_t)a->M * sizeof(act_row8) + 63) / 64 * 64);
    if (!rows) return lutrt_fail("lutrt_mma: out of memory");
    for (int m = 0; m < a->M; m++) {
        const lutrt_acts_section s =
            lutrt_row_acts(a->d, (const uint8_t *)a->tables + (size_t)m * a->row_bytes);
        rows[m] = (act_row8){s.hi, s.lo, s.ascale, s.shi, s.slo};
    }
    job8_t job = {a, rows};
    lutrt_parallel_for(a->d->num_threads, a->NB, 1, blocks_task8, &job);
    return LUTRT_OK;
}

static int mma_i8act_avx2(const lutrt_mma_args *a) {
    if (bytes_path(a)) return mma_i8act_avx2_bytes(a);
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
