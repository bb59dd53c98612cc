/* attention_sanitize_driver.c — runs lutrt_attention_kv / lutrt_attention on cases written by
 * test_attention.py, under -fsanitize=address,undefined. Usage: driver CASE_DIR...
 *
 * meta.txt: "mode H KVH D max_context window scale softcap start S Sq Skv causal has_mask".
 * mode 0 (kv cache): q.bin, k_new.bin, v_new.bin, k_cache.bin, v_cache.bin (the caches before
 * the call), expected.bin (out), k_after.bin, v_after.bin (the caches after).
 * mode 1 (no cache): q.bin, k.bin, v.bin, [mask.bin], expected.bin.
 * mode 2: mode 0 with an f16 cache (lutrt_attention_kv_f16; the cache files hold uint16).
 * Every available kernel runs with 1 and 2 threads; exit status 1 on any mismatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt.h"

static void *load_raw(const char *dir, const char *name, size_t count, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *buf = malloc(count * size + 1);
    size_t got = fread(buf, size, count, f);
    fclose(f);
    if (got != count) {
        free(buf);
        return NULL;
    }
    return buf;
}

static float *load(const char *dir, const char *name, size_t count) {
    return load_raw(dir, name, count, sizeof(float));
}

static int close_to(const float *got, const float *want, size_t n, const char *what) {
    float scale = 0.0f, err = 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (fabsf(want[i]) > scale) scale = fabsf(want[i]);
        float e = fabsf(got[i] - want[i]);
        if (!(e <= err)) err = e; /* NaN counts */
    }
    if (err <= 1e-5f * scale + 1e-30f) return 0;
    fprintf(stderr, "%s: max error %g (scale %g)\n", what, (double)err, (double)scale);
    return 1;
}

static int run_case(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return fprintf(stderr, "%s: no meta.txt\n", dir), 1;
    lutrt_attn_desc d = {0};
    int mode, start, S, Sq, Skv, causal, has_mask;
    int n = fscanf(f, "%d %d %d %d %d %d %f %f %d %d %d %d %d %d", &mode, &d.n_heads,
                   &d.n_kv_heads, &d.head_dim, &d.max_context, &d.sliding_window, &d.scale,
                   &d.softcap, &start, &S, &Sq, &Skv, &causal, &has_mask);
    fclose(f);
    if (n != 14) return fprintf(stderr, "%s: bad meta.txt\n", dir), 1;
    const size_t H = d.n_heads, KVH = d.n_kv_heads, D = d.head_dim;
    const char *names[] = {"ref", "avx2", "avx512"};
    int bad = 0;
    if (mode == 0 || mode == 2) {
        const size_t es = mode == 2 ? 2 : sizeof(float); /* cache element bytes */
        size_t nq = S * H * D, nkv = S * KVH * D, nc = KVH * d.max_context * D;
        float *q = load(dir, "q.bin", nq), *kn = load(dir, "k_new.bin", nkv),
              *vn = load(dir, "v_new.bin", nkv), *want = load(dir, "expected.bin", nq);
        void *kc0 = load_raw(dir, "k_cache.bin", nc, es), *vc0 = load_raw(dir, "v_cache.bin", nc, es),
             *ka = load_raw(dir, "k_after.bin", nc, es), *va = load_raw(dir, "v_after.bin", nc, es);
        if (!q || !kn || !vn || !kc0 || !vc0 || !want || !ka || !va)
            return fprintf(stderr, "%s: missing arrays\n", dir), 1;
        void *kc = malloc(nc * es), *vc = malloc(nc * es);
        float *out = malloc(nq * sizeof(float));
        for (int kern = 0; kern < 3; kern++) {
            if (!lutrt_kernel_available(names[kern])) continue;
            lutrt_set_kernel(names[kern]);
            for (int t = 1; t <= 2; t++) {
                d.num_threads = t;
                memcpy(kc, kc0, nc * es);
                memcpy(vc, vc0, nc * es);
                if ((mode == 2 ? lutrt_attention_kv_f16(&d, q, kn, vn, kc, vc, start, S, out)
                               : lutrt_attention_kv(&d, q, kn, vn, kc, vc, start, S, out)) != 0) {
                    fprintf(stderr, "%s: %s\n", dir, lutrt_last_error());
                    bad = 1;
                    continue;
                }
                bad |= close_to(out, want, nq, names[kern]);
                bad |= memcmp(kc, ka, nc * es) != 0 || memcmp(vc, va, nc * es) != 0;
            }
        }
        /* an error leaves the cache alone */
        if ((mode == 2 ? lutrt_attention_kv_f16(&d, q, kn, vn, kc, vc, d.max_context - S + 1, S, out)
                       : lutrt_attention_kv(&d, q, kn, vn, kc, vc, d.max_context - S + 1, S, out)) == 0)
            bad = 1;
        free(q), free(kn), free(vn), free(kc0), free(vc0), free(want), free(ka), free(va);
        free(kc), free(vc), free(out);
    } else {
        size_t nq = H * Sq * D, nkv = KVH * Skv * D;
        float *q = load(dir, "q.bin", nq), *k = load(dir, "k.bin", nkv), *v = load(dir, "v.bin", nkv),
              *want = load(dir, "expected.bin", nq);
        float *mask = has_mask ? load(dir, "mask.bin", (size_t)Sq * Skv) : NULL;
        if (!q || !k || !v || !want || (has_mask && !mask))
            return fprintf(stderr, "%s: missing arrays\n", dir), 1;
        float *out = malloc(nq * sizeof(float));
        for (int kern = 0; kern < 3; kern++) {
            if (!lutrt_kernel_available(names[kern])) continue;
            lutrt_set_kernel(names[kern]);
            for (int t = 1; t <= 2; t++) {
                d.num_threads = t;
                if (lutrt_attention(&d, q, k, v, Sq, Skv, causal, mask, out) != 0) {
                    fprintf(stderr, "%s: %s\n", dir, lutrt_last_error());
                    bad = 1;
                    continue;
                }
                bad |= close_to(out, want, nq, names[kern]);
            }
        }
        free(q), free(k), free(v), free(want), free(mask), free(out);
    }
    lutrt_set_kernel(NULL);
    if (bad) fprintf(stderr, "%s: FAILED\n", dir);
    return bad;
}

int main(int argc, char **argv) {
    int bad = 0;
    for (int i = 1; i < argc; i++) bad |= run_case(argv[i]);
    lutrt_shutdown();
    if (bad) return 1;
    printf("OK %d cases\n", argc - 1);
    return 0;
}
