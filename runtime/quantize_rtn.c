/* quantize_rtn.c — round-to-nearest quantization of float weights into lutc's low-bit format,
 * for the compiler (lutc.compiler.frontends.quantize, whose module docstring gives the
 * formulas). It computes exactly what that module's numpy path computes, in the same double
 * precision and the same order of operations per weight, so codes, scales and zero points are
 * bit-identical; only the summation order of the reported error differs. About 20x faster than
 * the numpy passes, which made quantization most of a 492M-parameter model's compile time.
 *
 * Rounding: numpy's rint is round-half-to-even; for 0 <= x < 2^52, (x + 2^52) - 2^52 is that
 * rounding in the default rounding mode (no fast-math here), and the integer bounds of every
 * clip commute with it: clip(rint(x), lo, hi) = rint(clip(x, lo, hi)).
 */
#include <math.h>
#include <stdint.h>

#include "lutrt.h"

#define MAGIC 0x1p52

/* round half to even of x, |x| <= 2^30 (no branch: the signs of weights are random) */
static inline double rint_even(double x) { return copysign((fabs(x) + MAGIC) - MAGIC, x); }

/* sum_i |g_i| in double, in NumPy's pairwise order (numpy/_core/src/umath/loops_utils.h.src,
 * DOUBLE_pairwise_sum: 8 accumulators up to 128 terms, halves above), so that the ternary
 * scale mean|w| equals np.mean(np.abs(w), axis=-1) bit for bit */
static double pairwise_abs_sum(const float *g, int64_t n) {
    if (n < 8) {
        double res = 0.0;
        for (int64_t i = 0; i < n; i++) res += fabs((double)g[i]);
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int u = 0; u < 8; u++) r[u] = fabs((double)g[u]);
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int u = 0; u < 8; u++) r[u] += fabs((double)g[i + u]);
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += fabs((double)g[i]);
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_abs_sum(g, n2) + pairwise_abs_sum(g + n2, n - n2);
}

static inline double clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* the codes of one group and its sums of squared errors / weights (MODE a constant) */
static inline __attribute__((always_inline)) void codes_of_group(
    const float *g, int64_t group, const int MODE, double s, double z, double qmax, double half,
    double sf, double zf, uint8_t *q, double sq[2]) {
    double num[4] = {0.0, 0.0, 0.0, 0.0}, den[4] = {0.0, 0.0, 0.0, 0.0}; /* 4 chains */
    for (int64_t t = 0; t < group; t++) {
        const double x = g[t];
        double c;
        if (MODE == 0)
            c = rint_even(clamp(x / s + z, 0.0, qmax));
        else if (MODE == 1)
            c = clamp(rint_even(clamp(x / s, -0x1p30, 0x1p30)) + half, 0.0, qmax);
        else
            c = rint_even(clamp(x / s, -1.0, 1.0)) + 1.0;
        q[t] = (uint8_t)c;
        const double d = x - sf * (c - zf);
        num[t & 3] += d * d;
        den[t & 3] += x * x;
    }
    sq[0] = (num[0] + num[1]) + (num[2] + num[3]);
    sq[1] = (den[0] + den[1]) + (den[2] + den[3]);
}

int lutrt_quantize_rtn(const float *w, int64_t rows, int64_t k, int64_t group, int bits, int mode,
                       uint8_t *codes, float *scales, float *zeros,
                       double *err) {
    if (!w || !codes || !scales || !err || rows < 0 || k <= 0 || group <= 0 || k % group ||
        bits < 1 || bits > 8 || mode < 0 || mode > 2 || (mode == 0 && (!zeros || bits < 2)) ||
        (mode == 1 && bits < 2))
        return -1;
    const int64_t ng = k / group;
    const double qmax = (double)((1 << bits) - 1), half = (double)(1 << (bits - 1));
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < rows * ng; i++) {
        const float *g = w + i * group;
        uint8_t *q = codes + i * group;
        float lo = g[0], hi = g[0], amax = 0.0f; /* (exact in float: weights are floats) */
        int finite = 1;
        for (int64_t t = 0; t < group; t++) {
            const float x = g[t];
            finite &= (x - x) == 0.0f; /* inf - inf and NaN - NaN are NaN */
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            amax = fabsf(x) > amax ? fabsf(x) : amax;
        }
        if (!finite) return 1; /* the caller's numpy path defines what happens */
        double s, z = 0.0;
        if (mode == 0) { /* asym: s = (max - min) / (2^W - 1), z = -min / s */
            s = ((double)hi - (double)lo) / qmax;
            s = s > 0.0 ? s : 1.0;
            z = -(double)lo / s;
            zeros[i] = (float)z;
        } else if (mode == 1) { /* sym: s = max|w| / 2^(W-1) */
            s = (double)amax / half;
            s = s > 0.0 ? s : 1.0;
        } else { /* ternary: s = mean|w| of the group (BitNet b1.58 absmean) */
            s = pairwise_abs_sum(g, group) / (double)group;
            s = s > 0.0 ? s : 1.0;
        }
        scales[i] = (float)s;
        /* the error of what is stored: float32 scale and zero point */
        const double sf = (float)s;
        const double zf = mode == 0 ? (double)(float)z : (mode == 1 ? half : 1.0);
        double sq[2] = {0.0, 0.0};
        if (mode == 0)
            codes_of_group(g, group, 0, s, z, qmax, half, sf, zf, q, sq);
        else if (mode == 1)
            codes_of_group(g, group, 1, s, z, qmax, half, sf, zf, q, sq);
        else
            codes_of_group(g, group, 2, s, z, qmax, half, sf, zf, q, sq);
        num += sq[0];
        den += sq[1];
    }
    err[0] = num;
    err[1] = den;
    return 0;
}
