/* lutrt.h — the lutc C runtime: LUT-based low-bit mpGEMM (lut.precompute + lut.mma).
 *
 * Semantics (docs/design.md §2-3; the numpy meaning is lutc/dialects/lut_semantics.py):
 *
 *   x[M, K] f32 activations, K % 4 == 0; J = K/4 tables per row, table j covers x[m, 4j..4j+3].
 *   16 entries ("plain"):    T[m, j, p] = sum_i x[m, 4j+i] * bit_i(p)             p in 0..15
 *    8 entries ("mirrored"): T[m, j, p] = sum_i x[m, 4j+i] * (2 bit_i(p) - 1)     p in 0..7
 *                            code c looks up +T[c] if c < 8, -T[c & 7] if c >= 8.
 *   int8 tables: tscale[m, t] = max_{j in t} (sum_i |x[m, 4j+i]|) / 127 over each scale group
 *                t of `scale_group` activations (the last one may be partial);
 *                Tq = round_half_even(T * (127 / max)) as int8 (0 when max == 0).
 *                Per-table scales (scale_group == 4, the default) lie on a grid instead: in
 *                each aligned block of 8 tables, u = 2^(ilogb(m) - 6) for the block's largest
 *                scale m = max|sum| / 127 (2u when ceil(m / u) would reach 2^7), every scale
 *                is rounded UP to a multiple of u, tscale = mult * u with integer mult < 2^7,
 *                and Tq = round_half_even(T / tscale) (still within +-127). The AVX-512
 *                kernels then multiply the lookup bytes by mult (a u8 operand of vpdpbusd),
 *                sum in int32 and convert once per block (lmma_avx512vbmi.c, lmma_avx512.c);
 *                the rounding up adds at most 2^-6 of the block's largest scale to a scale,
 *                i.e. a table's quantization step is at most (1 + 1/mult) times its own
 *                max|sum| / 127 (the error bound of one table: half that step per lookup).
 *                Non-finite inputs (issue 11.4): a scale group holding +-inf or NaN, or whose
 *                sum_i |x| overflows float (e.g. 4 x 3e38), gets tscale = NaN and entries 0 (no
 *                float -> int8 cast of inf / NaN ever happens), so every output of that row is
 *                NaN on every kernel — like a float GEMM, non-finite, and identical across
 *                kernels. A group with max < 2^-100 (127 / max would overflow) gets tscale 0 and
 *                entries 0: it contributes exactly 0 (at most 2^-100 sum |w| is dropped).
 *   sums[m, g] = sum_{k in weight group g} x[m, k].
 *
 *   Weights: codes c[b, n, j] (4-bit bit-plane patterns, mirrored convention if mirrored),
 *   scales s[n, g], zeros z[n, g] or the scalar zimp. For mirrored formats s, z and zimp are the
 *   symmetrized values s' = s/2, z' = 2z + 1 - 2^B (§3.3): the runtime applies the formula as is.
 *   F[m, j] = the all-ones entry of table j as stored: plain T[m, j, 15], mirrored -T[m, j, 0]
 *   (= x[4j] + .. + x[4j+3] up to the table's rounding).
 *     out[m, n] = sum_g s[n, g] * sum_{j in g} ( sum_b 2^b L(m, j, c[b, n, j]) - z[n, g] F[m, j] )
 *   f32 tables: the inner term is formed per table in double (lmma_ref.c); the vpermps kernels
 *   (lmma_f32_*.c, B <= 4) sum it in float per plane pair and take z F from sums of the same
 *   F in the same order (equal up to float32 rounding).
 *   int8 tables: each scale group t contributes tscale[m, t] * fma(-z, S[m, t], I), I the
 *   integer lookup sum, S[m, t] = sum_{j in t} Fq[m, j] (integers; lutrt_mma derives them from
 *   the tables). I is accumulated in int16 (see lmma_avx2.c for the bound; B > 4 keeps planes
 *   0..3 and 4..B-1 in two int16 sums, combined in int32 as lo + 16 hi).
 *   The zero-point term thus sees the same rounded entries as the lookups: codes that all equal
 *   an integer zero point (W = 0) give exactly 0 on every kernel, in both table modes, and the
 *   int8 error is |out - exact| <= sum_g |s| sum_{j in g} tscale[m, t(j)] / 2 * (2^B - 1 + |z|).
 *   `sums` is written by lutrt_precompute but not read by lutrt_mma (it stays in the ABI).
 *
 *   Large M: int8 activations instead of int8 tables. A LUT kernel pays B lookups per weight
 *   and token; an int8 multiply-accumulate costs the same for any B, so from
 *   lutrt_i8act_min_m(B) tokens on (see below) lutrt_mma, for int8 tables with strategy AUTO
 *   or PER_TOKEN (what lut-tile emits), runs an AVX512-VNNI kernel (mma_i8act_avx512vnni.c; AVX2 CPUs: mma_i8act_avx2.c)
 *   on the two-pass ("int16-equivalent", where needed) int8 activations that lut.precompute stores after
 *   each int8 table row, one scale per ACTIVATION group t of AG activations, AG =
 *   lutrt_act_group: the largest multiple of 4 that is <= 128 and divides G (128 when G >= K;
 *   until 2026-12-07 the cap was 32: each group costs the kernels an int32 -> float epilogue,
 *   and 128 keeps every integer sum below 2^24), independent of the table scale group:
 *     ascale[m, t] = max_{k in t} |x[m, k]| / 16256 (NaN when a table scale group overlapping
 *                    t has a NaN tscale, so a non-finite row gives NaN outputs as on the LUT
 *                    kernels; 0 below 2^-100, the group then contributing exactly 0),
 *     xq = round_half_even(x * 16256 / max) in [-16256, 16256] (= 127 * 128),
 *     hi = round_half_even(xq / 128) in [-127, 127],  lo = xq - 128 hi in [-64, 64]  (int8),
 *     S_hi[m, t] = sum_{k in t} hi,  S_lo[m, t] = sum_{k in t} lo   (integers, stored as f32),
 *     except in a ONE-PASS group, whose crest factor max|xq| / rms(xq) is at most 3.5
 *     (lutrt_act_one_pass: 4 max|xq|^2 n <= 49 sum xq^2, exact integers) in a table whose
 *     readers have at most b-bit weights (consumer_bits 1..b, b = lutrt_one_pass_max_bits(),
 *     0 by default, so no group is one-pass unless asked for; below): lo = 0 and
 *     S_lo = -0.0f, the mark that lets the VNNI kernel skip the low pass (half the
 *     vpdpbusd); xq is then rounded to a multiple of 128, plain int8 activations,
 *     out[m, n] = sum_g s[n, g] * sum_{t in g} ascale[m, t] *
 *                 (128 fma(-z, S_hi[m, t], I_hi) + fma(-z, S_lo[m, t], I_lo)),
 *     I_hi = sum_{k in t} q[n, k] hi[m, k], I_lo = sum_{k in t} q[n, k] lo[m, k] in int32
 *     (two vpdpbusd per 4 activations), q the unsigned code (mirrored formats use
 *     s = 2 s', z = (z' + 2^B - 1) / 2, the same weights).
 *   Every fma operand is an integer below 2^24, so codes that equal an integer zero point give
 *   exactly 0 (W = 0). Error: in a two-pass group xq is one rounding of x, |x - ascale xq| <=
 *   ascale / 2 = max|x| / 32512 (~128x finer than int8 activations); in a one-pass group
 *   |x - 128 ascale hi| <= 64.5 ascale; so |out - exact| <= sum_g |s| sum_{t in g} e[m, t]
 *   sum_{k in t} |q[n, k] - z| (+ float32 summation), e = ascale / 2 or 64.5 ascale. A one-pass
 *   group's expected relative error is at most 3.5^2 / (12 * 127^2) = 6.3e-5: groups with an
 *   outlier, where one int8 scale would flatten the other activations, keep two passes.
 *   Why the rule: one int8 pass everywhere cost SmolLM2-135M +0.30% perplexity (its
 *   RMSNorm outputs have outlier channels), two passes everywhere +0.000% at twice the
 *   vpdpbusd; with the rule 20-30% of its groups keep two passes, perplexity +0.026% over
 *   8,183 tokens (transformers 21.66737: 21.67306). GEMM M = 128, N = K = 4096, w4, 1 thread
 *   on the 2-core Xeon VM: 22.4 ms with two passes everywhere, 14.4 ms on Gaussian
 *   activations (nearly all groups one-pass), 23-25 ms when every group has an outlier.
 *   lutrt_precompute derives AG from its descriptor's `group` (the sum group, min(G, K) as
 *   lut-lower-mpgemm writes it), which gives the same AG as the lut.mma's G. The interpreter
 *   (dialects/lut_semantics.py) follows lutrt_i8act_min_m, so compiled C and interpreted IR
 *   compute the same formula at every M.
 *
 * Memory layouts (all row-major, no padding unless said):
 *   x        f32 [M, K]
 *   tables   M rows of lutrt_table_row_bytes() bytes. f32: [J, E] entries, E = 8 (mirrored)
 *            or 16. int8: [J, E] int8 entries, then int8 hi[K], int8 lo[K], f32 ascale[J],
 *            f32 S_hi[J], f32 S_lo[J] (the two-pass activations above; the first
 *            NA = ceil(K / AG) of each f32 array are used, the rest are 0: sized for the finest
 *            activation group, the row size depends on K and E only; J * E + 2K + 12 J bytes).
 *   tscale   f32 [M, NS], NS = ceil(K / scale_group)            (int8 tables only)
 *   sums     f32 [M, NG], NG = ceil(K / group)
 *   packed_w uint8 [NB][J][16*B] with NB = ceil(N/32) blocks of 32 weight rows — produced offline
 *            by lutc.runtime.packing.pack_weights (its docstring details the byte order).
 *   scales   f32 [NB][NG][32] — lutc.runtime.packing.pack_scales(s); rows n >= N are padding.
 *   zeros    f32 [NB][NG][32] — pack_scales(z), or NULL to use desc->zimp.
 *   out      f32 [M, N]
 */
#ifndef LUTRT_H
#define LUTRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LUTRT_BLOCK_N 32 /* weight rows per packed block */
#define LUTRT_MAX_BITS 8 /* widest weight code (GGUF Q8_0); B bit planes, bit-serially */

/* Describes one lut.precompute / lut.mma pair. The same descriptor serves both calls. */
typedef struct lutrt_mma_desc {
    int32_t M;           /* activation rows (tokens), >= 1 */
    int32_t N;           /* output features = weight rows, >= 1 (ignored by precompute) */
    int32_t K;           /* reduction length, > 0, multiple of 4 */
    int32_t bits;        /* weight bits B in 1..8 (ternary weights: 2; ignored by precompute) */
    int32_t group;       /* weight scale group G along K: multiple of 4; G >= K means one group */
    int32_t mirrored;    /* 1: 8-entry symmetrized tables and mirrored codes; 0: 16-entry */
    int32_t table_i8;    /* 1: int8 tables with tscale; 0: f32 tables (lossless) */
    int32_t scale_group; /* int8 tables: activations per table scale, multiple of 4 in 4..64,
                            dividing G unless there is a single weight group; ignored for f32 */
    float zimp;          /* zero point used when zeros == NULL, in the formula's domain
                            (mirrored: already 2z+1-2^B, e.g. 0 for ternary/no-zero-point) */
    int32_t num_threads; /* threads for this lutrt_mma call: 0 = pool default
                            (lutrt_set_num_threads / LUTRT_NUM_THREADS / online CPUs) */
    /* Tile choice (lut-tile's #lut.tile<m, n, k, strategy>); 0 everywhere = runtime decides.
     * Only int8 tables with B <= 4 on the avx2/avx512 kernels have a Vec-LUT kernel; otherwise
     * these fields are ignored (the per-token kernel runs). Results agree up to float
     * summation order. */
    int32_t strategy;    /* LUTRT_STRATEGY_AUTO (0): per-token below LUTRT_VEC_LUT_MIN_M tokens
                            (if nonzero), Vec-LUT from there on; 1 per-token; 2 Vec-LUT */
    int32_t tile_m;      /* Vec-LUT: tokens per table tile, rounded up to a multiple of 16 and
                            capped at 64 (0: 64) */
    int32_t tile_n;      /* Vec-LUT: weight rows per unit of work (and thread grain), rounded
                            up to a multiple of 32 (0: 256) */
    int32_t tile_k;      /* reserved: both kernels step K by table scale groups (0) */
    /* Precompute only (lutrt_mma ignores it). 0: the tables' readers are unknown, every entry
     * is written. B in 1..8: the caller promises that every lutrt_mma reading these int8
     * tables has bits = B and strategy AUTO or PER_TOKEN; from M >= lutrt_i8act_min_m(B) > 0
     * tokens on those calls run the int8-activation kernel, which reads only the activation
     * section, so precompute then writes that section alone (the prefill cost of building
     * tables nobody reads): the entries and sums are left as they were, and tscale[m, s] only
     * marks whether table scale group s is finite (NaN) or not (0), which the activation
     * section's NaN ascale follows. Below that M (or when lutrt_i8act_min_m(B) is 0) those
     * calls run a LUT kernel, which reads no activation section, so precompute then leaves
     * that section as it was (the decode cost of int8 activations nobody reads; entries,
     * tscale and sums are written as with consumer_bits 0). The precompute's `layout` (below)
     * is its readers' weight layout: with LUTRT_LAYOUT_CODE_BYTES every M reads the
     * activation section alone. lutrt_i8act_min_m must not change in between. */
    int32_t consumer_bits;
    /* lutrt_mma: the packed weights' layout (lutrt_packed_weight_bytes); precompute with
     * consumer_bits B: the layout of its readers' weights (see consumer_bits).
     * LUTRT_LAYOUT_BIT_PLANES (0): B bit planes of 4-bit patterns, read by the LUT kernels.
     * LUTRT_LAYOUT_CODE_BYTES (1): one byte per unsigned code q (mirrored formats: the code
     *   before mirroring, s = 2 s', z = (z' + 2^B - 1) / 2), block-major like the planes:
     *   block nb, table j holds bytes [2][16 rows][4 activations] (rows 16h + r), 128 bytes per
     *   (block, table) whatever B. Needs int8 tables; every M then runs the int8-activation
     *   formula ("Large M" below) on these bytes, with no unpacking: at B = 8 a lookup costs
     *   more than the multiply it replaces (8 bit planes, 8 lookups per 4 weights). */
    int32_t layout;
} lutrt_mma_desc;

enum {
    LUTRT_LAYOUT_BIT_PLANES = 0,
    LUTRT_LAYOUT_CODE_BYTES = 1,
};

enum {
    LUTRT_STRATEGY_AUTO = 0,
    LUTRT_STRATEGY_PER_TOKEN = 1,
    LUTRT_STRATEGY_VEC_LUT = 2,
};
/* Tokens from which strategy AUTO runs the Vec-LUT kernel; 0 = never. Measured on the
 * 2-core AVX2 (Zen) machine with bench/bench_kernels.py (2-bit and ternary, K = N = 4096,
 * M = 16..256, 1 and 2 threads): the Vec-LUT kernel ran at 0.55-0.9x of the per-token vpshufb
 * kernel everywhere, so there is no crossover and AUTO keeps the per-token kernel. */
#define LUTRT_VEC_LUT_MIN_M 0

/* Return codes. */
enum {
    LUTRT_OK = 0,
    LUTRT_EINVAL = -1, /* invalid descriptor or NULL pointer; lutrt_last_error() says which */
};

/* Message describing the last LUTRT_EINVAL in this thread ("" if none). */
const char *lutrt_last_error(void);

/* ---- sizes derived from a descriptor -------------------------------------------------- */
int lutrt_num_tables(const lutrt_mma_desc *d);       /* J = K/4 */
int lutrt_num_groups(const lutrt_mma_desc *d);       /* NG = ceil(K/G) */
int lutrt_num_scale_groups(const lutrt_mma_desc *d); /* NS = ceil(K/scale_group), 0 for f32 */
int lutrt_num_act_groups(const lutrt_mma_desc *d);   /* NA = ceil(K/AG), AG the activation
                                                        group (large M), 0 for f32 */
int lutrt_num_blocks(const lutrt_mma_desc *d);       /* NB = ceil(N/32) */
size_t lutrt_table_row_bytes(const lutrt_mma_desc *d);  /* f32: J*E*4; int8: J*E + 2K + 12J */
size_t lutrt_packed_weight_bytes(const lutrt_mma_desc *d); /* NB * J * 16 * B; code bytes:
                                                              NB * J * 128 */
size_t lutrt_packed_scale_count(const lutrt_mma_desc *d);  /* NB * NG * 32 floats */

/* ---- lut.precompute ------------------------------------------------------------------- */
/* Tables, tscale (int8 only; may be NULL for f32) and sums for all M rows of x. */
int lutrt_precompute(const lutrt_mma_desc *d, const float *x, void *tables, float *tscale,
                     float *sums);

/* One row (fused precompute: generated code calls this right after it produces a normalized
 * activation row). Writes lutrt_table_row_bytes(d) bytes of tables, NS tscales and NG sums. */
int lutrt_precompute_row(const lutrt_mma_desc *d, const float *x_row, void *tables_row,
                         float *tscale_row, float *sums_row);

/* ---- lut.mma -------------------------------------------------------------------------- */
/* out[M, N] = the formula above. Multi-threaded over N (blocks of 32 rows). tscale may be
 * NULL for f32 tables; zeros may be NULL (then desc->zimp is used). */
int lutrt_mma(const lutrt_mma_desc *d, const void *tables, const float *tscale, const float *sums,
              const uint8_t *packed_w, const float *scales, const float *zeros, float *out);

/* ---- kernel selection (dispatch.c) ----------------------------------------------------- */
/* Kernels: "ref" (portable C), "avx2" (AVX2+FMA), "avx512" (AVX-512BW); they differ for int8
 * tables (the fast path) and precompute. f32 tables (lossless): vpermps kernels on avx2 and
 * avx512 for B <= 4, the scalar reference otherwise. Kernels agree up to float summation
 * order; precomputed tables and tscales are bit-identical across kernels (group sums may
 * differ in rounding). The default is the best one the CPU supports, unless the environment
 * variable LUTRT_KERNEL names one. lutrt_set_kernel(NULL or "auto") restores the default.
 * Returns LUTRT_OK, or LUTRT_EINVAL if the name is unknown, the kernel was not compiled in, or
 * the CPU lacks its instructions. */
int lutrt_set_kernel(const char *name);
const char *lutrt_kernel_name(void);
int lutrt_kernel_available(const char *name); /* 1 if compiled in and supported by this CPU */

/* ---- the large-M int8-activation path (mma_i8act_avx512vnni.c, mma_i8act_avx512amx.c) ---- */
/* Tokens from which lutrt_mma (int8 tables, strategy AUTO or PER_TOKEN) runs the
 * int8-activation kernel (see the semantics above) instead of the LUT kernel, on CPUs with
 * AVX512-VNNI. Measured 2026-12-01 on the 2-core Xeon (AVX512-VNNI, shared), 1 thread, with
 * `bench/bench_large_m.py --sweep --repeats 7`: process CPU time, medians of 7 interleaved
 * calls, LUT kernel on per-table int8 tables (scale group 4, the default) / two-pass VNNI,
 * at M = 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 128:
 *   N=K=4096    w2 0.90 1.23 1.21 1.29 1.47 1.79 1.74 1.82 2.08 2.15 2.28
 *               w4 0.98 1.11 1.19 1.26 1.34 1.63 1.78 2.08 2.08 2.24 2.45
 *               w8 0.85 1.20 1.45 1.38 1.62 1.85 2.37 3.11 3.93 3.32 3.54
 *   N=576 K=576 w2 0.99 1.19 1.42 1.36 1.41 1.27 1.92 1.59 1.68 1.92 2.18
 *               w4 0.89 1.29 1.34 1.41 1.83 1.64 2.24 2.14 2.12 2.21 2.36
 *               w8 1.04 1.76 1.83 2.16 1.81 2.57 3.39 2.86 3.48 3.38 3.76
 *   N=1536      w2 0.91 1.47 1.37 1.51 1.46 1.65 1.88 1.76 1.96 1.95 2.03
 *   K=576       w4 0.67 1.49 1.56 1.64 1.70 1.98 2.27 2.38 2.46 2.40 2.62
 *               w8 1.05 1.91 2.03 2.35 2.38 2.92 3.32 3.57 3.06 3.43 4.01
 *   N=49152     w2 0.96 1.42 1.37 1.53 1.51 1.94 1.83 1.91 2.15 1.94 1.99
 *   K=576       w4 0.86 1.13 1.30 1.41 1.39 1.50 1.81 2.00 2.13 2.16 2.05
 *               w8 0.83 1.23 1.46 1.83 1.84 2.08 2.32 2.84 3.05 3.15 3.42
 * The kernel wins from 3 tokens on for every width and shape (and is the more accurate one),
 * so both thresholds are 3; the narrow one (B <= 2, the cheapest LUT kernel) stays separate. */
#define LUTRT_I8ACT_MIN_M 3
#define LUTRT_I8ACT_MIN_M_NARROW 3 /* B <= 2 */
/* CPUs with AVX2 but no AVX512-VNNI run mma_i8act_avx2.c (vpmaddubsw on the bytes for codes of
 * <= 4 bits, vpmaddwd on xq = 128 hi + lo for wider ones; the same formula;
 * lutrt_i8act_kernel_name says which) from these thresholds on. Measured on one Zen 3 core
 * with two-pass activations (the default since 2026-12-06), 2026-12-06, `bench/bench_large_m.py
 * --sweep --repeats 7` (bench/results/large_m_sweep_zen3.json; process CPU time, interleaved
 * medians, group 32, LUT / int8-activation time at M = 2, 3, 4, 5, 6, 8, 12, 16):
 *   N=K=4096    w2 0.68 0.86 0.99 0.95 0.87 1.02 1.14 1.16
 *               w4 0.63 0.83 0.92 0.97 1.08 1.12 1.17 1.32
 *               w8 0.65 0.83 0.99 1.12 1.22 1.40 1.60 1.79
 *   N=K=576     w2 0.74 0.93 1.05 1.06 1.11 1.25 1.29 1.93    w4 0.66 0.89 0.99 1.00 1.03 1.29 ...
 *   N=1536      w2 0.69 0.91 1.02 1.04 1.06 1.20 1.15 1.33    w4 0.66 0.87 1.01 1.05 1.12 1.37 ...
 *   N=49152     w2 0.70 0.95 1.04 1.03 1.06 1.28 1.27 1.32    w4 0.71 1.26 1.01 1.07 1.15 1.50 ...
 *   (K=576 w8: 1.05-1.09 at 4, 1.16-1.20 at 5, 1.25-1.32 at 6)
 * so <= 4-bit codes switch at 8 tokens (at 6 the 4096^2 w2 GEMM loses 13%) and wider ones at
 * 6. With one-pass groups (opt-in) the narrow kernel had won from 3-4 tokens (2026-12-05,
 * Student-t(5): N=K=4096 w2 1.07 1.17 1.30 at M = 3, 4, 6) and GEMM M=128 N=K=4096 w2 g64 ran
 * 44 ms on Gaussian activations, 60 ms on Student-t(3), against 72 ms for the LUT kernel. */
#define LUTRT_I8ACT_MIN_M_AVX2 6        /* B > LUTRT_I8ACT_AVX2_BYTES_MAX_BITS: vpmaddwd */
#define LUTRT_I8ACT_MIN_M_AVX2_NARROW 8 /* B <= LUTRT_I8ACT_AVX2_BYTES_MAX_BITS: vpmaddubsw */
/* Widest codes of the AVX2 vpmaddubsw kernel: int16 sums of 8 tables stay below 2^15. */
#define LUTRT_I8ACT_AVX2_BYTES_MAX_BITS 4
/* One-pass activation groups (see "Large M" above) are OFF by default: every group keeps two
 * passes. lutrt_set_one_pass_max_bits(b) (b in 0..LUTRT_ONE_PASS_MAX_BITS; -1 restores the
 * default) or $LUTRT_ONE_PASS_MAX_BITS=b allows them in tables whose consumer_bits is 1..b.
 * Why off (2026-12-06): a one-pass group's expected relative error (<= 6.3e-5 NMSE) is below
 * 4-bit weights' rounding error, but the perplexity target compares against float compute on
 * the same weights, and there one pass is noise of its own: on SmolLM2-135M (Q4_1 codes,
 * 512-token windows of test/llm/data) the default pipeline's per-window perplexity moved
 * -0.5..+0.3% from the lossless one's with b = 4 (and by as much again between an f32 and an
 * f16 KV cache, each drawing other roundings), over 9,862 tokens -0.011% (f32 cache) and
 * +0.058% (f16 cache) on Zen 3, against the 0.05% bound; with two passes everywhere the
 * windows sit within +0.006% / -0.001% of lossless. Wider readers (the 8-bit code-byte head:
 * 0.4% max error against 2e-4 with two passes) never take one pass. The setting must not
 * change between a precompute and the lutrt_mma calls that read its tables. */
#define LUTRT_ONE_PASS_MAX_BITS 4
void lutrt_set_one_pass_max_bits(int bits);
int lutrt_one_pass_max_bits(void); /* the setting in force, 0 = one pass nowhere */
/* The threshold in force for B-bit weights, 0 = never: lutrt_set_i8act_min_m's value if set,
 * else $LUTRT_I8ACT_MIN_M if set (0 disables), else 0 when the LUT kernel was forced
 * (LUTRT_KERNEL or lutrt_set_kernel with a name: a forced kernel runs at every M), else the
 * defaults above; always 0 without AVX512-VNNI or AVX2. Strategy VEC_LUT forces the Vec-LUT kernel
 * (and thus the tables) too. */
int lutrt_i8act_min_m(int bits);
void lutrt_set_i8act_min_m(int m); /* m >= 1: from m tokens on; 0: never; < 0: unset */
/* The int8-activation kernel in use: "amx", "avx512vnni", "avx2", "c" or "none";
 * lutrt_set_i8act_kernel picks one this CPU runs (NULL or "auto": the best), else fails with
 * lutrt_last_error; without a call, $LUTRT_I8ACT_KERNEL (same names) picks one. "amx"
 * (mma_i8act_avx512amx.c: AMX-INT8 tiles for every 16 token rows, the VNNI kernel for the rest;
 * bit-identical to "avx512vnni") is auto's choice where the CPU has AMX-INT8 and Linux grants
 * the tile state (arch_prctl ARCH_REQ_XCOMP_PERM); measured on the 2-core Sapphire-Rapids-class
 * Xeon VM, 2026-12-06, bench/bench_large_m.py: GEMM M = 128, N = K = 4096, w2 / w4, 1.5-1.7x
 * the VNNI kernel on 1 and 2 threads at weight group 32 (the per-group float epilogue is what
 * is left: 16 rows x 32 columns of int32 -> f32 per activation group), 2.4x at group 128 and
 * per tensor (activation groups of 128). Below 16 tokens both are the same code, so
 * the thresholds above hold for both. "c" is the portable C kernel (mma_i8act_c.c: slow,
 * bit-identical to "avx512vnni"), which auto picks only for code bytes on CPUs without AVX2. */
const char *lutrt_i8act_kernel_name(void);
int lutrt_set_i8act_kernel(const char *name);
/* Weight blocks (32 output columns each) that one task of the "amx" and "avx512vnni" kernels
 * runs together on an M x K x N call on `threads` threads: from 2 MiB of A (M x K activations,
 * hi and lo bytes: more than a core's L2) up to LUTRT_I8ACT_GROUP_MAX while every thread still
 * gets two tasks; else 1. Together, each row tile of A is read once per group of blocks
 * instead of once per block (A streamed from L3 per block was the AMX kernel's main stall at
 * 512 tokens); the outputs are bitwise the same. */
#define LUTRT_I8ACT_GROUP_MAX 4
int lutrt_i8act_blocks_per_task(int m, int k, int n, int threads);
/* The kernel code-byte weights (LUTRT_LAYOUT_CODE_BYTES) run on: "amx", "avx512vnni", "avx2" or "c"
 * (portable; every CPU), following lutrt_set_i8act_kernel; auto: the fastest this CPU runs. */
const char *lutrt_code_bytes_kernel_name(void);

/* ---- the large-M f32 path of the lossless mode (mma_f32dq_avx512.c, _avx2.c) ---------- */
/* Tokens from which lutrt_mma on f32 tables (strategy AUTO or PER_TOKEN) multiplies
 * dequantized weights, w = s (q - z) in f32, with the activations (rebuilt exactly from the
 * tables) by FMA instead of looking up the tables: the float matmul of the dequantized
 * weights, exact up to float32 rounding like the table kernels. Crossover against the f32-table
 * kernels, measured 2026-12-01 on the 16-core Xeon (N=K=4096 and N=1536 K=576, 1 and 16
 * threads, medians of interleaved calls): B = 3..4 from M = 8, B <= 2 from M = 16..32; for
 * B > 4 the f32-table kernel is the scalar one (4096^2 GEMV: 268 ms vs 4.5 ms), so always.
 * At M = 128 (4096^2) it runs 2.2-2.7x faster than f32 tables, 1.15-1.25x the default
 * int8-activation path on 1 thread and 1.06-1.25x on 16. The AVX2 kernel on a 2-core AMD
 * EPYC (Zen 3) VM, N = K = 2048, 1 thread, f32-table / dequantize time (2026-12-05): B = 2:
 * 0.91 at M = 16, 1.19 at 32, 1.60 at 128; B = 4: 1.04 at M = 8, 1.68 at 16, 3.1 at 128;
 * B = 8: 23x at M = 1 (the f32-table kernel is scalar there too), so the same thresholds.
 * The threshold in force:
 * lutrt_set_f32dq_min_m's value if set, else $LUTRT_F32DQ_MIN_M (0 disables), else 0 when a
 * kernel was forced, else LUTRT_F32DQ_MIN_M (_NARROW for B <= 2, _WIDE for B > 4); always 0
 * on CPUs without AVX-512BW or AVX2 + FMA. */
#define LUTRT_F32DQ_MIN_M 8
#define LUTRT_F32DQ_MIN_M_NARROW 32 /* B <= 2: the cheapest table kernel */
#define LUTRT_F32DQ_MIN_M_WIDE 1 /* B > 4: the f32-table kernel is scalar there */
int lutrt_f32dq_min_m(int bits);
void lutrt_set_f32dq_min_m(int m); /* m >= 1: from m tokens on; 0: never; < 0: unset */
/* The f32-dequantize kernel in use: "avx512" (mma_f32dq_avx512.c, AVX-512BW CPUs), "avx2"
 * (mma_f32dq_avx2.c, AVX2 + FMA CPUs; the same outputs bit for bit) or "none";
 * lutrt_set_f32dq_kernel(name or NULL / "auto") picks one (LUTRT_OK, or LUTRT_ERR for a
 * name this CPU or build cannot run). */
const char *lutrt_f32dq_kernel_name(void);
int lutrt_set_f32dq_kernel(const char *name);

/* ---- the lossless mode's GEMV (lmma_f32_gemv_avx512vbmi.c) ---------------------------- */
/* At M = 1 with 4-bit bit-plane weights, lutrt_mma on f32 tables rounds each table, per run of
 * at most 64 tables within a weight group, to an integer in three balanced base-255 digits
 * (|T - unit v| <= 2^-24 of the run's largest |entry|: one float32 rounding of it) and sums the
 * lookups per digit in int32 (vpermb + vpdpbusd): exact zero points (W = 0 gives 0), NaN for
 * non-finite tables, like the f32-table kernels. It needs AVX-512 VBMI + VNNI; automatically
 * it runs where the f32-table kernel is the AVX-512 one and N is large enough for the
 * per-call conversion to pay (the kernel's header); lutrt_set_f32_gemv(1) or $LUTRT_F32_GEMV=1
 * force it at every N, 0 turns it off, and a forced kernel (LUTRT_KERNEL, lutrt_set_kernel)
 * turns it off unless one of those is set. */
void lutrt_set_f32_gemv(int on); /* 1: at every N, 0: off, < 0: automatic */
int lutrt_f32_gemv_enabled(void); /* 1 when lutrt_mma may take it now */

/* ---- threads (threadpool.c) ------------------------------------------------------------ */
/* Default thread count for lutrt_mma: LUTRT_NUM_THREADS if set, else the online CPUs.
 * n <= 0 restores that default. */
void lutrt_set_num_threads(int n);
int lutrt_get_num_threads(void);
/* Joins the pool's worker threads (they are restarted on demand) and frees the calling
 * thread's cached Vec-LUT table buffer. Optional. */
void lutrt_shutdown(void);
/* Parallel-loop profile, for measuring thread scaling (runtime/pool_profile.py reads it).
 * lutrt_pool_profile(1) clears it and starts recording, (0) stops. While on, every parallel
 * loop adds to the entry of its task function (at most LUTRT_POOL_PROFILE_FNS; later ones are
 * not recorded): out[0] loops, out[1] ns the caller spent in them, out[2] ns of all threads
 * inside task chunks, out[3] ns x the pool's thread count (the thread time the loops held:
 * out[3] - out[2] is time threads waited, idled or claimed). A loop of fewer chunks than
 * threads holds them all all the same; a loop nested in a chunk is part of that chunk and not
 * recorded. Entry i's task function
 * is stored in *fn; returns 0 past the last entry, else 1. Recording costs two clock reads
 * per loop and per chunk. */
#define LUTRT_POOL_PROFILE_FNS 256
void lutrt_pool_profile(int on);
int lutrt_pool_profile_entry(int i, const void **fn, int64_t out[4]);


/* ---- attention (attention.c) ------------------------------------------------------------ *
 * Scaled dot-product attention in f32 with an online (flash-attention style) softmax: keys are
 * visited in blocks with a running max and sum per query, so memory is O(S * D), never
 * O(S * context). Grouped-query attention reads kv head h / (H / KVH) for query head h without
 * copying K/V. The score of query i and key j is computed in this order:
 *   s = scale * (q_i . k_j);  if softcap: s = softcap * tanh(s / softcap);  s += mask[i, j]
 * then keys outside the causal / sliding-window range are dropped and out_i = softmax(s) . V.
 * A row whose visible scores are all -inf (or that sees no key) gives zeros, never NaN.
 * Kernels: the portable C path, or AVX2+FMA / AVX-512F, picked like lut.mma's kernel
 * (LUTRT_KERNEL / lutrt_set_kernel: "ref" -> portable, "avx2", "avx512*" -> AVX-512 when compiled
 * in, else AVX2). They agree up to float rounding (~1e-6 relative).
 * Threads: tasks are (kv head, block of query rows) with all query heads of the group, so each
 * K/V block is loaded once for the group; when there are fewer tasks than 2 per thread and the
 * context is long, the context is also split across threads (split-K) and the partial softmax
 * states are merged. out must not overlap q, k, v or the cache. */
typedef struct lutrt_attn_desc {
    int32_t n_heads;        /* H query heads, >= 1 */
    int32_t n_kv_heads;     /* KVH, >= 1, H % KVH == 0 (grouped-query attention: head h reads
                               kv head h / (H / KVH)) */
    int32_t head_dim;       /* D, >= 1 */
    int32_t max_context;    /* cache rows per kv head (lutrt_attention_kv only) */
    int32_t sliding_window; /* 0 = none; else key j visible from query position p iff
                               p - j < window (needs causal attention) */
    float scale;            /* multiplies q.k (usually 1/sqrt(D)) */
    float softcap;          /* 0 = none; else score = softcap * tanh(score / softcap) (Gemma 2) */
    int32_t num_threads;    /* 0 = pool default (lutrt_set_num_threads / LUTRT_NUM_THREADS) */
} lutrt_attn_desc;

/* Appends this chunk's keys/values to the cache, then causal attention of the chunk's queries
 * over cache positions [0, start + s] for query row s (absolute position start + s).
 *   q      f32 [S, H, D]       k_new, v_new  f32 [S, KVH, D]
 *   k_cache, v_cache  f32 [KVH, max_context, D]  (rows start..start+S-1 are overwritten, no
 *                                                 other row is written)
 *   out    f32 [S, H, D]
 * Work is proportional to the current context (start + S), never to max_context.
 * Returns LUTRT_OK, or LUTRT_EINVAL (lutrt_last_error) when start < 0, S < 1,
 * start + S > max_context, a pointer is NULL or the desc is invalid. */
int lutrt_attention_kv(const lutrt_attn_desc *d, const float *q, const float *k_new,
                       const float *v_new, float *k_cache, float *v_cache, int32_t start,
                       int32_t S, float *out);

/* The same with an f16 KV cache (IEEE binary16 bits), half the bytes of the f32 cache: new
 * rows are rounded to nearest even on append (|x| >= 65520 -> +-inf, NaN stays NaN), scores
 * and the P.V sums are computed in f32 from the widened cache rows.
 *   k_cache, v_cache  uint16 [KVH, max_context, D]
 * Returns what lutrt_attention_kv returns, and LUTRT_EINVAL when head_dim > 4096. */
int lutrt_attention_kv_f16(const lutrt_attn_desc *d, const float *q, const float *k_new,
                           const float *v_new, uint16_t *k_cache, uint16_t *v_cache,
                           int32_t start, int32_t S, float *out);

/* Attention without a cache (graphs that compute attention on whole sequences):
 *   q f32 [H, Sq, D], k/v f32 [KVH, Skv, D], out f32 [H, Sq, D];
 *   causal == 1: query i sees keys j <= i + (Skv - Sq) (bottom-right aligned; a query with
 *                i + Skv - Sq < 0 sees nothing and gives zeros);
 *   causal == 2: keys j <= i (top-left aligned);  causal == 0: all keys.
 *   mask: optional additive f32 [Sq, Skv] (NULL = none), applied after scale and softcap
 *         (order above); -inf entries drop keys.
 *   sliding_window (needs causal 1 or 2): query i at position p = i + Skv - Sq (causal 1) or
 *         p = i (causal 2) sees keys j with p - j < window.
 * d->max_context is ignored. Returns LUTRT_OK or LUTRT_EINVAL (Sq < 1, Skv < 1, causal not in
 * 0..2, a window without causal, a NULL pointer, an invalid desc). */
int lutrt_attention(const lutrt_attn_desc *d, const float *q, const float *k, const float *v,
                    int32_t Sq, int32_t Skv, int32_t causal, const float *mask, float *out);

/* ---- weight quantization for the compiler (quantize_rtn.c) ---------------------------- */
/* Round-to-nearest quantization of rows x k float weights in groups of `group` along k
 * (k % group == 0), as lutc.compiler.frontends.quantize defines it: mode 0 asym (bits 2..8,
 * writes zeros), 1 sym (bits 2..8, implicit zero 2^(bits-1)), 2 ternary (bits 2, the group's
 * scale mean|w|, summed in NumPy's pairwise order). Writes codes uint8 [rows, k],
 * scales f32 [rows, k / group] and err[0] = sum (w - s (q - z))^2, err[1] = sum w^2.
 * Returns 0, 1 when a weight is not finite (nothing meaningful written), -1 on bad arguments. */
int lutrt_quantize_rtn(const float *w, int64_t rows, int64_t k, int64_t group, int bits, int mode,
                       uint8_t *codes, float *scales, float *zeros, double *err);

/* The packed weights of lutrt_mma (packed_w above) from bit-plane codes uint8 [bits, n, J]
 * (values 0..15; lutc.runtime.packing.pack_weights documents the byte order and is the numpy
 * reference); out holds NB * J * 16 * bits bytes. Returns 0, or -1 on bad arguments or a
 * code above 15 (nothing meaningful written). */
int lutrt_pack_weights(const uint8_t *codes, int bits, int64_t n, int64_t J, uint8_t *out);

/* Bit-plane codes uint8 [bits, n, k/4] of unsigned codes q uint8 [n, k] (k % 4 == 0, values
 * < 2^bits): bit i of codes[b, r, j] = bit b of q[r, 4j + i]; mirrored re-encodes patterns with
 * bit 3 set as 8 | (~p & 7) (lutc.runtime.packing.codes_from_q and mirror_codes, the numpy
 * reference). Returns 0, or -1 on bad arguments or a q value out of range. */
int lutrt_bit_planes(const uint8_t *q, int64_t n, int64_t k, int bits, int mirrored, uint8_t *codes);

#ifdef __cplusplus
}
#endif
#endif /* LUTRT_H */
