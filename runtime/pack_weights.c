/* pack_weights.c — the packed weight layout of lutrt_mma from bit-plane codes, in C for the
 * compiler (lutc.runtime.packing.pack_weights calls it; its docstring defines the byte order,
 * and its numpy code is the reference this must equal byte for byte). */
#include <stdint.h>
#include <string.h>

#include "lutrt.h"

/* code of plane b, row n (0 past the last row), table j */
static inline unsigned code_at(const uint8_t *codes, int64_t n_rows, int64_t J, int b, int64_t n,
                               int64_t j) {
    return n < n_rows ? codes[((int64_t)b * n_rows + n) * J + j] : 0u;
}

int lutrt_pack_weights(const uint8_t *codes, int bits, int64_t n, int64_t J, uint8_t *out) {
    if (!codes || !out || bits < 1 || bits > LUTRT_MAX_BITS || n < 0 || J < 0) return -1;
    for (int64_t i = 0; i < (int64_t)bits * n * J; i++)
        if (codes[i] > 15) return -1;
    const int64_t nb = (n + LUTRT_BLOCK_N - 1) / LUTRT_BLOCK_N, chunk = 16 * (int64_t)bits;
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t r0 = blk * LUTRT_BLOCK_N;
        for (int64_t j = 0; j < J; j++) {
            uint8_t *c = out + (blk * J + j) * chunk;
            for (int p = 0; p < bits / 2; p++) /* plane pair p: A_{2i+s} | B_{2i+s} << 4 */
                for (int t = 0; t < 32; t++) {
                    const int i = t >> 1, b = 2 * p + (t & 1);
                    c[32 * p + t] = (uint8_t)(code_at(codes, n, J, b, r0 + i, j) |
                                              code_at(codes, n, J, b, r0 + 16 + i, j) << 4);
                }
            if (bits & 1) /* the last plane: C_t | D_t << 4 */
                for (int t = 0; t < 16; t++) {
                    const int i = t >> 1, s = t & 1;
                    c[32 * (bits / 2) + t] =
                        (uint8_t)(code_at(codes, n, J, bits - 1, r0 + 16 * s + i, j) |
                                  code_at(codes, n, J, bits - 1, r0 + 8 + 16 * s + i, j) << 4);
                }
        }
    }
    return 0;
}

int lutrt_bit_planes(const uint8_t *q, int64_t n, int64_t k, int bits, int mirrored, uint8_t *codes) {
    if (!q || !codes || n < 0 || k < 0 || k % 4 || bits < 1 || bits > LUTRT_MAX_BITS) return -1;
    const int64_t J = k / 4;
    unsigned high = 0;
    for (int64_t i = 0; i < n * k; i++) high |= q[i] >> bits;
    if (high) return -1;
    const uint32_t mir = mirrored ? 1u : 0u;
    for (int b = 0; b < bits; b++)
        for (int64_t r = 0; r < n; r++) {
            const uint8_t *x = q + r * k;
            uint8_t *c = codes + ((int64_t)b * n + r) * J;
            for (int64_t j = 0; j < J; j++) {
                /* the 4 codes as one little-endian word: bit b of code i lands at bit 8i, and
                 * the multiply gathers those four bits at 21..24 without carries */
                uint32_t v;
                memcpy(&v, x + 4 * j, 4);
                const uint32_t p = (((v >> b) & 0x01010101u) * 0x204081u) >> 21 & 15u;
                /* mirrored: bit 3 set -> 8 | (~p & 7) = p ^ 7 (packing.mirror_codes) */
                c[j] = (uint8_t)(p ^ (((p >> 3) & mir) * 7u));
            }
        }
    return 0;
}
