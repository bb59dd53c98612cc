/* bench_attention.c — times lutrt_attention_kv (built by bench_attention.py).
 * Usage: bench_attention H KVH D context S threads kernel [layers]
 * Runs the call for the last S positions of a `context`-row cache (S = 1: one decode step)
 * and prints the median and the minimum over 21 rounds of the mean time per call, in
 * microseconds (on a shared, busy machine the minimum is the better estimate). With `layers`
 * > 1, consecutive calls take the caches of that many layers in turn, as a model's decode
 * step does: caches larger than the CPU's caches are then read from memory. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lutrt.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 8 && argc != 9)
        return fprintf(stderr, "usage: %s H KVH D context S threads kernel [layers]\n", argv[0]), 2;
    const int layers = argc == 9 && atoi(argv[8]) > 0 ? atoi(argv[8]) : 1;
    int H = atoi(argv[1]), KVH = atoi(argv[2]), D = atoi(argv[3]), ctx = atoi(argv[4]);
    int S = atoi(argv[5]), threads = atoi(argv[6]);
    if (lutrt_set_kernel(argv[7])) return fprintf(stderr, "%s\n", lutrt_last_error()), 1;
    lutrt_attn_desc d = {H, KVH, D, ctx, 0, 0.125f, 0.0f, threads};
    size_t nc = (size_t)KVH * ctx * D;
    float *kc = malloc(nc * layers * sizeof(float)), *vc = malloc(nc * layers * sizeof(float));
    float *q = malloc((size_t)S * H * D * sizeof(float)), *out = malloc((size_t)S * H * D * sizeof(float));
    float *kn = malloc((size_t)S * KVH * D * sizeof(float)), *vn = malloc((size_t)S * KVH * D * sizeof(float));
    srand(1);
    for (size_t i = 0; i < nc * layers; i++) kc[i] = rand() / (float)RAND_MAX - 0.5f, vc[i] = rand() / (float)RAND_MAX - 0.5f;
    for (size_t i = 0; i < (size_t)S * H * D; i++) q[i] = rand() / (float)RAND_MAX - 0.5f;
    for (size_t i = 0; i < (size_t)S * KVH * D; i++) kn[i] = vn[i] = 0.25f;
    int start = ctx - S;
    double per_round = 0;
    int reps = 1;
    for (;;) { /* calibrate: rounds of ~2 ms */
        double t0 = now_us();
        for (int r = 0; r < reps; r++)
            lutrt_attention_kv(&d, q, kn, vn, kc + nc * (r % layers), vc + nc * (r % layers), start, S, out);
        per_round = now_us() - t0;
        if (per_round > 2000 || reps > (1 << 20)) break;
        reps *= 2;
    }
    double t[21];
    for (int i = 0; i < 21; i++) {
        double t0 = now_us();
        for (int r = 0; r < reps; r++)
            lutrt_attention_kv(&d, q, kn, vn, kc + nc * (r % layers), vc + nc * (r % layers), start, S, out);
        t[i] = (now_us() - t0) / reps;
    }
    qsort(t, 21, sizeof t[0], cmp);
    printf("%.2f %.2f\n", t[10], t[0]);
    lutrt_shutdown();
    return 0;
}
