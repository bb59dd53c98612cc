/* table_prologue_driver.c — lut.mma's per-table prologue with AVX2 (table_prologue_avx2.c)
 * against the portable code (mma.c's lutrt_table_prologue_block), bit for bit, on random and
 * hostile rows: NaN, zero, tiny (exponent <= LUTRT_GRID_SHIFT), huge and subnormal scales,
 * partial last grid blocks, plain and mirrored tables, several rows. Built with the runtime
 * under -fsanitize=address,undefined (test_table_prologue.py). Exit status 1 on a mismatch;
 * prints "cases N" on success. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(state >> 33);
}

/* a scale of kind 0..7: ordinary, NaN, 0, tiny, huge, subnormal, a power of two, grid max */
static float scale_of(int kind) {
    const float u = (float)(next() % 1000000) / 1e6f;
    switch (kind) {
    case 1: return __builtin_nanf("");
    case 2: return 0.0f;
    case 3: return ldexpf(1.0f + u, -121);
    case 4: return ldexpf(1.0f + u, 120);
    case 5: return ldexpf(u, -130);
    case 6: return ldexpf(1.0f, (int)(next() % 40) - 20);
    case 7: return 127.0f * ldexpf(1.0f, -7);
    default: return 0.001f + u;
    }
}

int main(void) {
    if (!lutrt_cpu_has_avx2()) {
        printf("cases 0 (no AVX2)\n");
        return 0;
    }
    int cases = 0;
    const int Js[] = {8, 16, 144, 250, 3, 13};
    for (int t = 0; t < 400; t++) {
        const int J = Js[t % 6], M = 1 + (int)(next() % 3), mirrored = t % 2;
        const int E = mirrored ? 8 : 16, nb = (J + 7) / 8;
        const size_t row_bytes = (size_t)J * E + 64;
        int8_t *tables = malloc((size_t)M * row_bytes);
        float *tscale = malloc((size_t)M * J * sizeof(float));
        for (size_t i = 0; i < (size_t)M * row_bytes; i++) tables[i] = (int8_t)(next() & 0xff);
        const int special = t % 8; /* the kind mixed into this case, or none */
        for (int i = 0; i < M * J; i++) tscale[i] = scale_of(next() % 4 == 0 ? special : 0);
        if (t % 5 == 0) /* a block of one kind only */
            for (int i = 0; i < (J < 8 ? J : 8); i++) tscale[i] = scale_of(special);
        lutrt_mma_desc d;
        memset(&d, 0, sizeof d);
        lutrt_mma_args a;
        memset(&a, 0, sizeof a);
        a.d = &d, a.M = M, a.J = J, a.NS = J, a.jt = 1, a.entries = E, a.mirrored = mirrored;
        a.row_bytes = row_bytes, a.tables = tables, a.tscale = tscale;
        float *tsum[2], *unit[2];
        int16_t *mult[2];
        int32_t *zs[2];
        for (int v = 0; v < 2; v++) {
            tsum[v] = calloc((size_t)M * J, sizeof(float));
            unit[v] = calloc((size_t)M * nb, sizeof(float));
            mult[v] = calloc((size_t)M * J, sizeof(int16_t));
            zs[v] = calloc((size_t)M * J, sizeof(int32_t));
        }
        lutrt_table_prologue_avx2(&a, tsum[0], mult[0], unit[0], zs[0], 0, 1); /* in two calls */
        lutrt_table_prologue_avx2(&a, tsum[0], mult[0], unit[0], zs[0], 1, M);
        for (int m = 0; m < M; m++)
            for (int b = 0; b < nb; b++) lutrt_table_prologue_block(&a, m, b, tsum[1], mult[1], unit[1], zs[1]);
        if (memcmp(tsum[0], tsum[1], (size_t)M * J * sizeof(float)) ||
            memcmp(unit[0], unit[1], (size_t)M * nb * sizeof(float)) ||
            memcmp(mult[0], mult[1], (size_t)M * J * sizeof(int16_t)) ||
            memcmp(zs[0], zs[1], (size_t)M * J * sizeof(int32_t))) {
            printf("mismatch: case %d J=%d M=%d mirrored=%d kind=%d\n", t, J, M, mirrored, special);
            return 1;
        }
        for (int v = 0; v < 2; v++) free(tsum[v]), free(unit[v]), free(mult[v]), free(zs[v]);
        free(tables);
        free(tscale);
        cases++;
    }
    printf("cases %d\n", cases);
    return 0;
}
