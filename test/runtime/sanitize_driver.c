/* sanitize_driver.c — runs lutrt on cases written by test_kernels.py, under
 * -fsanitize=address,undefined. Usage: sanitize_driver CASE_DIR...
 *
 * Each case directory holds meta.txt ("M N K bits group mirrored table_i8 scale_group zimp
 * has_zeros") and raw little-endian arrays x.bin, packed.bin, scales.bin, [zeros.bin],
 * expected.bin (out f32 [M, N]). Every available kernel is run with 1 and 2 threads, through
 * both lutrt_precompute and the per-row entry point; exit status 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt.h"

static void *read_file(const char *dir, const char *name, size_t *size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    if (size) *size = (size_t)n;
    return buf;
}

static int run_case(const char *dir) {
    char *meta = read_file(dir, "meta.txt", NULL);
    if (!meta) return fprintf(stderr, "%s: no meta.txt\n", dir), 1;
    lutrt_mma_desc d = {0};
    int has_zeros = 0;
    if (sscanf(meta, "%d %d %d %d %d %d %d %d %f %d", &d.M, &d.N, &d.K, &d.bits, &d.group,
               &d.mirrored, &d.table_i8, &d.scale_group, &d.zimp, &has_zeros) != 10)
        return fprintf(stderr, "%s: bad meta.txt\n", dir), 1;
    free(meta);
    float *x = read_file(dir, "x.bin", NULL), *scales = read_file(dir, "scales.bin", NULL);
    float *expected = read_file(dir, "expected.bin", NULL);
    uint8_t *packed = read_file(dir, "packed.bin", NULL);
    float *zeros = has_zeros ? read_file(dir, "zeros.bin", NULL) : NULL;
    if (!x || !scales || !expected || !packed || (has_zeros && !zeros))
        return fprintf(stderr, "%s: missing arrays\n", dir), 1;

    size_t rb = lutrt_table_row_bytes(&d);
    int ns = lutrt_num_scale_groups(&d), ng = lutrt_num_groups(&d);
    /* exact-size heap buffers: ASan reports any out-of-bounds access */
    uint8_t *tables = malloc(rb * d.M), *tables_row = malloc(rb * d.M);
    float *tscale = malloc(sizeof(float) * (ns ? ns : 1) * d.M);
    float *tscale_row = malloc(sizeof(float) * (ns ? ns : 1) * d.M);
    float *sums = malloc(sizeof(float) * ng * d.M), *sums_row = malloc(sizeof(float) * ng * d.M);
    float *out = malloc(sizeof(float) * d.M * d.N);

    float mx = 0.0f;
    for (int i = 0; i < d.M * d.N; i++) mx = fmaxf(mx, fabsf(expected[i]));
    const char *names[] = {"ref", "avx2", "avx512"};
    int failures = 0;
    for (int k = 0; k < 3; k++) {
        if (!lutrt_kernel_available(names[k])) continue;
        lutrt_set_kernel(names[k]);
        for (int threads = 1; threads <= 2; threads++) {
            d.num_threads = threads;
            if (lutrt_precompute(&d, x, tables, tscale, sums)) return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
            for (int m = 0; m < d.M; m++)
                lutrt_precompute_row(&d, x + (size_t)m * d.K, tables_row + rb * m,
                                     tscale_row + (size_t)m * ns, sums_row + (size_t)m * ng);
            if (memcmp(tables, tables_row, rb * d.M) || memcmp(sums, sums_row, sizeof(float) * ng * d.M)) {
                fprintf(stderr, "%s: %s: per-row precompute differs\n", dir, names[k]);
                failures++;
            }
            /* per-token, then Vec-LUT (int8 tables on the SIMD kernels; ignored otherwise) */
            for (int st = LUTRT_STRATEGY_PER_TOKEN; st <= LUTRT_STRATEGY_VEC_LUT; st++) {
                d.strategy = st;
                if (lutrt_mma(&d, tables, tscale, sums, packed, scales, zeros, out))
                    return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
                float err = 0.0f;
                for (int i = 0; i < d.M * d.N; i++) err = fmaxf(err, fabsf(out[i] - expected[i]));
                if (err > 1e-5f * mx) {
                    fprintf(stderr, "%s: %s x%d threads strategy %d: max error %g (max |out| %g)\n",
                            dir, names[k], threads, st, err, mx);
                    failures++;
                }
            }
        }
    }
    free(x), free(scales), free(expected), free(packed), free(zeros), free(tables);
    free(tables_row), free(tscale), free(tscale_row), free(sums), free(sums_row), free(out);
    return failures;
}

/* The compiler's C helpers (quantize_rtn.c, pack_weights.c) on exactly sized buffers: every
 * mode and width, a padded last block, odd planes, and the rejections (bad codes, bad
 * arguments, a NaN weight). Their values are checked against numpy in the pytest suite. */
static int compile_helpers(void) {
    int failures = 0;
    enum { ROWS = 5, K = 96, GROUP = 32 };
    float *w = malloc(sizeof(float) * ROWS * K);
    uint8_t *codes = malloc(ROWS * K), *planes = malloc(8 * ROWS * (K / 4));
    float *scales = malloc(sizeof(float) * ROWS * (K / GROUP)), *zeros = malloc(sizeof(float) * ROWS * (K / GROUP));
    double err[2];
    for (int i = 0; i < ROWS * K; i++) w[i] = (float)((i * 37 % 101) - 50) / 17.0f;
    for (int mode = 0; mode < 3; mode++)
        for (int bits = 2; bits <= 8; bits++) {
            if (mode == 2 && bits != 2) continue;
            if (lutrt_quantize_rtn(w, ROWS, K, GROUP, bits, mode, codes, scales, mode == 0 ? zeros : NULL, err))
                failures++, fprintf(stderr, "quantize_rtn mode %d bits %d failed\n", mode, bits);
            for (int i = 0; i < ROWS * K; i++)
                if (codes[i] >> bits) failures++, fprintf(stderr, "code out of range\n");
            if (lutrt_bit_planes(codes, ROWS, K, bits, bits & 1, planes))
                failures++, fprintf(stderr, "bit_planes bits %d failed\n", bits);
            const size_t nb = (ROWS + 31) / 32, bytes = nb * (K / 4) * 16 * (size_t)bits;
            uint8_t *packed = malloc(bytes);
            if (lutrt_pack_weights(planes, bits, ROWS, K / 4, packed))
                failures++, fprintf(stderr, "pack_weights bits %d failed\n", bits);
            free(packed);
        }
    w[7] = NAN;
    if (lutrt_quantize_rtn(w, ROWS, K, GROUP, 4, 0, codes, scales, zeros, err) != 1)
        failures++, fprintf(stderr, "quantize_rtn took a NaN\n");
    if (lutrt_quantize_rtn(w, ROWS, K, 40, 4, 0, codes, scales, zeros, err) != -1)
        failures++, fprintf(stderr, "quantize_rtn took k %% group != 0\n");
    codes[3] = 200;
    if (lutrt_bit_planes(codes, ROWS, K, 4, 0, planes) != -1) failures++, fprintf(stderr, "bit_planes took 200\n");
    planes[1] = 16;
    if (lutrt_pack_weights(planes, 1, ROWS, K / 4, codes) != -1) failures++, fprintf(stderr, "pack took 16\n");
    free(w), free(codes), free(planes), free(scales), free(zeros);
    return failures;
}

int main(int argc, char **argv) {
    int failures = compile_helpers();
    for (int i = 1; i < argc; i++) failures += run_case(argv[i]);
    lutrt_shutdown(); /* join the pool so LeakSanitizer sees a clean exit */
    if (!failures) printf("OK %d cases\n", argc - 1);
    return failures ? 1 : 0;
}
