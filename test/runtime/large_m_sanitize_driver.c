/* large_m_sanitize_driver.c — runs lut.precompute and the large-M lut.mma paths from one token
 * on (int8 tables: the int8-activation path, lutrt_set_i8act_min_m(1); f32 tables: the
 * dequantize-FMA path, lutrt_set_f32dq_min_m(1), and at one token the digit GEMV,
 * lutrt_set_f32_gemv(1)) on cases written by test_mma_i8act.py (every int8-activation kernel
 * the CPU runs), test_mma_f32dq_avx512.py and test_mma_f32_gemv_avx512vbmi.py, under
 * -fsanitize=address,undefined. Usage: large_m_sanitize_driver CASE_DIR...
 *
 * Case directories as for sanitize_driver.c. Tables come from every available precompute
 * (ref, avx2), whole-matrix and per-row, into exact-size heap buffers; lut.mma runs with
 * strategy AUTO, 1 and 2 threads; exit status 1 on any mismatch. A case with code_bytes.bin
 * (test_mma_code_bytes.py) also runs the code-byte layout on every int8-activation kernel,
 * the portable C one included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt.h"

static void *read_file(const char *dir, const char *name) {
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
    return buf;
}

static int run_case(const char *dir) {
    char *meta = read_file(dir, "meta.txt");
    if (!meta) return fprintf(stderr, "%s: no meta.txt\n", dir), 1;
    lutrt_mma_desc d = {0};
    int has_zeros = 0;
    if (sscanf(meta, "%d %d %d %d %d %d %d %d %f %d", &d.M, &d.N, &d.K, &d.bits, &d.group,
               &d.mirrored, &d.table_i8, &d.scale_group, &d.zimp, &has_zeros) != 10)
        return fprintf(stderr, "%s: bad meta.txt\n", dir), 1;
    free(meta);
    float *x = read_file(dir, "x.bin"), *scales = read_file(dir, "scales.bin");
    float *expected = read_file(dir, "expected.bin");
    uint8_t *packed = read_file(dir, "packed.bin");
    uint8_t *code_bytes = read_file(dir, "code_bytes.bin"); /* optional: the code-byte layout */
    float *zeros = has_zeros ? read_file(dir, "zeros.bin") : NULL;
    if (!x || !scales || !expected || !packed || (has_zeros && !zeros))
        return fprintf(stderr, "%s: missing arrays\n", dir), 1;

    size_t rb = lutrt_table_row_bytes(&d);
    int ns = lutrt_num_scale_groups(&d), ng = lutrt_num_groups(&d);
    uint8_t *tables = malloc(rb * d.M), *tables_row = malloc(rb * d.M);
    float *tscale = malloc(sizeof(float) * ns * d.M), *tscale_row = malloc(sizeof(float) * ns * d.M);
    float *sums = malloc(sizeof(float) * ng * d.M), *sums_row = malloc(sizeof(float) * ng * d.M);
    float *out = malloc(sizeof(float) * d.M * d.N);

    float mx = 0.0f;
    for (int i = 0; i < d.M * d.N; i++) mx = fmaxf(mx, fabsf(expected[i]));
    const char *names[] = {"ref", "avx2", "avx512"};
    int failures = 0;
    for (int k = 0; k < 3; k++) {
        if (!lutrt_kernel_available(names[k])) continue;
        lutrt_set_kernel(names[k]);
        lutrt_set_i8act_min_m(1); /* set explicitly: wins over the forced kernel */
        lutrt_set_f32dq_min_m(1);
        if ((d.table_i8 ? lutrt_i8act_min_m(d.bits) : lutrt_f32dq_min_m(d.bits)) != 1)
            return fprintf(stderr, "large-M path unavailable\n"), 1;
        for (int threads = 1; threads <= 2; threads++) {
            d.num_threads = threads;
            d.strategy = LUTRT_STRATEGY_AUTO;
            if (lutrt_precompute(&d, x, tables, tscale, sums)) return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
            for (int m = 0; m < d.M; m++)
                lutrt_precompute_row(&d, x + (size_t)m * d.K, tables_row + rb * m,
                                     tscale_row + (size_t)m * ns, sums_row + (size_t)m * ng);
            if (memcmp(tables, tables_row, rb * d.M)) {
                fprintf(stderr, "%s: %s: per-row precompute differs\n", dir, names[k]);
                failures++;
            }
            /* int8 tables: every int8-activation kernel this CPU runs */
            const char *i8act[] = {"amx", "avx512vnni", "avx2"};
            for (int v = 0; v < (d.table_i8 ? 3 : 1); v++) {
                if (d.table_i8 && lutrt_set_i8act_kernel(i8act[v])) continue;
                if (lutrt_mma(&d, tables, tscale, sums, packed, scales, zeros, out))
                    return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
                float err = 0.0f;
                for (int i = 0; i < d.M * d.N; i++) err = fmaxf(err, fabsf(out[i] - expected[i]));
                if (err > 1e-5f * mx) {
                    fprintf(stderr, "%s: %s/%s x%d threads: max error %g (max |out| %g)\n", dir,
                            names[k], d.table_i8 ? i8act[v] : "f32dq", threads, err, mx);
                    failures++;
                }
            }
            lutrt_set_i8act_kernel(NULL);
            /* f32 tables at one token: the digit GEMV (test_mma_f32_gemv_avx512vbmi.py), forced */
            if (!d.table_i8 && d.M == 1) {
                lutrt_set_f32dq_min_m(0);
                lutrt_set_f32_gemv(1);
                if (lutrt_f32_gemv_enabled()) {
                    if (lutrt_mma(&d, tables, tscale, sums, packed, scales, zeros, out))
                        return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
                    float err = 0.0f;
                    for (int i = 0; i < d.N; i++) err = fmaxf(err, fabsf(out[i] - expected[i]));
                    if (err > 1e-5f * mx) {
                        fprintf(stderr, "%s: %s/f32 GEMV x%d threads: max error %g\n", dir, names[k],
                                threads, err);
                        failures++;
                    }
                }
                lutrt_set_f32_gemv(-1);
                lutrt_set_f32dq_min_m(1);
            }
            /* code bytes: every kernel that reads them, at every M (no threshold) */
            const char *cb[] = {"amx", "avx512vnni", "avx2", "c"};
            for (int v = 0; v < 4 && code_bytes && d.table_i8; v++) {
                if (lutrt_set_i8act_kernel(cb[v])) continue;
                lutrt_mma_desc db = d;
                db.layout = LUTRT_LAYOUT_CODE_BYTES;
                lutrt_set_i8act_min_m(0); /* the layout alone selects the path */
                if (lutrt_mma(&db, tables, tscale, sums, code_bytes, scales, zeros, out))
                    return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
                lutrt_set_i8act_min_m(1);
                float err = 0.0f;
                for (int i = 0; i < d.M * d.N; i++) err = fmaxf(err, fabsf(out[i] - expected[i]));
                if (err > 1e-5f * mx) {
                    fprintf(stderr, "%s: %s/code bytes %s x%d threads: max error %g\n", dir,
                            names[k], cb[v], threads, err);
                    failures++;
                }
            }
            lutrt_set_i8act_kernel(NULL);
        }
    }
    lutrt_set_i8act_min_m(-1);
    lutrt_set_f32dq_min_m(-1);
    free(x), free(scales), free(expected), free(packed), free(code_bytes), free(zeros), free(tables);
    free(tables_row), free(tscale), free(tscale_row), free(sums), free(sums_row), free(out);
    return failures;
}

int main(int argc, char **argv) {
    int failures = 0;
    for (int i = 1; i < argc; i++) failures += run_case(argv[i]);
    lutrt_shutdown(); /* join the pool so LeakSanitizer sees a clean exit */
    if (!failures) printf("OK %d cases\n", argc - 1);
    return failures ? 1 : 0;
}
