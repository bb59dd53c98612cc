/* attention.c — fused scaled-dot-product attention over a KV cache (lutrt_attention_kv) and on
 * whole sequences (lutrt_attention), with an online softmax; plus the portable kernels.
 *
 * Online softmax per query (flash attention): for each block of visible keys with scores s_j,
 *   m' = max(m, max_j s_j),  alpha = exp(m - m'),  p_j = exp(s_j - m'),
 *   l' = alpha l + sum_j p_j,  acc' = alpha acc + sum_j p_j v_j;   out = acc / l.
 * A task is (kv head, block of query rows, context split): every query head of the group and
 * every row of the block walk the same key blocks, so a K/V block is loaded once per task.
 * With split-K, each split leaves (m, l, acc) in scratch and the merge combines them with
 * weights exp(m_split - max m). Unnormalized accumulators live in `out` itself (no scratch)
 * unless the context is split.
 *
 * f16 KV cache (lutrt_attention_kv_f16): a task widens each key block's K and V rows to f32 in
 * a stack buffer once (ops->widen) and every query of the task reads them from there, so the
 * f32 kernels serve both caches and the cache is read from memory at half the bytes.
 *
 * Lanes (AVX-512, ops->lanes_block): a prefill task's 8..16 query vectors run together, one per
 * vector lane (lutrt_attn_lanes): each key element is broadcast once for all of them and the
 * softmax's max / exp / sums are lane-wise, where the per-query kernels reload every K and V
 * row per query and reduce each dot product across lanes. SmolLM2's attention shape (H 9, KVH 3,
 * D 64) over a 512-token prefill, 1 thread, bench/bench_attention.py on the 2-core AMX VM,
 * 2026-12-07: 5.9 -> 2.8-3.0 ms; H 16, KVH 4, D 128: 19.9 -> 8.8-9.3 ms. Decode steps (1..4
 * vectors per task), masks and softcaps keep the per-query kernels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"

#define KEY_BLOCK 64         /* most keys scored at once (scores stay on the stack) */
#define KV_BLOCK_FLOATS 4096 /* keys per block <= this / D: a K and a V block fit L1 together */
#define TILE_QUERIES 16      /* query vectors per task (GQA group x rows), at least a group */
#define MAX_GROUP 64         /* larger groups run as several tasks of MAX_GROUP heads */
#define MAX_QUERIES (MAX_GROUP > TILE_QUERIES ? MAX_GROUP : TILE_QUERIES)
#define MIN_SPLIT_KEYS 256   /* split-K only gives each thread at least this many keys */
#define MAX_F16_HEAD_DIM KV_BLOCK_FLOATS /* f16 cache: one widened key row fits the buffer */

/* ---- IEEE binary16 <-> f32 (F. Giesen's float_to_half_fast3_rtne / half_to_float) -------- */

uint16_t lutrt_f32_to_f16(float value) {
    const uint32_t f16max = (127u + 16u) << 23, denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    uint32_t f;
    memcpy(&f, &value, 4);
    const uint32_t sign = f & 0x80000000u;
    f ^= sign;
    uint16_t o;
    if (f >= f16max) { /* inf, NaN (quiet) or too large: inf */
        o = f > 0x7f800000u ? 0x7e00 : 0x7c00;
    } else if (f < (113u << 23)) { /* subnormal or zero: the float adder rounds (to even) */
        float ff, dm;
        memcpy(&ff, &f, 4);
        memcpy(&dm, &denorm_magic, 4);
        ff += dm;
        uint32_t r;
        memcpy(&r, &ff, 4);
        o = (uint16_t)(r - denorm_magic);
    } else { /* normal: rebias, round to nearest even on the 13 dropped bits */
        const uint32_t mant_odd = (f >> 13) & 1;
        f += ((uint32_t)(15 - 127) << 23) + 0xfff + mant_odd;
        o = (uint16_t)(f >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

float lutrt_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    uint32_t x;
    if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) { /* zero or subnormal: m * 2^-24 is exact in f32 */
        const float f = (float)m * 0x1p-24f;
        memcpy(&x, &f, 4);
        x |= sign;
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- portable kernels (plain C that gcc vectorizes with the baseline ISA) -------------- */

static void scores_ref(const float *restrict q, const float *restrict k, int n, int D,
                       float scale, float *restrict s) {
    for (int j = 0; j < n; j++) {
        const float *restrict kj = k + (size_t)j * D;
        float lane[8] = {0};
        int d = 0;
        for (; d + 8 <= D; d += 8)
            for (int l = 0; l < 8; l++) lane[l] += q[d + l] * kj[d + l];
        float t = 0.0f;
        for (; d < D; d++) t += q[d] * kj[d];
        for (int l = 0; l < 8; l++) t += lane[l];
        s[j] = scale * t;
    }
}

static float max_ref(const float *s, int n) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

static float exp_sum_ref(float *s, int n, float m) {
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        s[j] = expf(s[j] - m);
        sum += s[j];
    }
    return sum;
}

static void accumulate_ref(float *restrict acc, float alpha, const float *restrict p,
                           const float *restrict v, int n, int D) {
    for (int d = 0; d < D; d++) acc[d] *= alpha;
    for (int j = 0; j < n; j++) {
        const float *restrict vj = v + (size_t)j * D;
        float pj = p[j];
        for (int d = 0; d < D; d++) acc[d] += pj * vj[d];
    }
}

static void widen_ref(const uint16_t *h, float *f, size_t n) {
    for (size_t i = 0; i < n; i++) f[i] = lutrt_f16_to_f32(h[i]);
}

const lutrt_attn_ops lutrt_attn_ops_ref = {"ref", scores_ref, max_ref, exp_sum_ref,
                                            accumulate_ref, widen_ref, NULL, NULL, NULL};

/* The attention kernels follow lut.mma's choice (dispatch.c). */
static const lutrt_attn_ops *current_ops(void) {
#ifdef LUTRT_X86
    const char *name = lutrt_current_kernel()->name;
    if (!strncmp(name, "avx512", 6) && lutrt_attn_ops_avx512_ptr) return lutrt_attn_ops_avx512_ptr;
    if (strcmp(name, "ref")) return &lutrt_attn_ops_avx2;
#endif
    return &lutrt_attn_ops_ref;
}

/* ---- the shared driver ------------------------------------------------------------------ */

typedef struct attn_job {
    const lutrt_attn_ops *ops;
    const float *q, *k, *v, *mask;
    const uint16_t *kh, *vh; /* f16 cache (k, v NULL), else NULL */
    float *out;
    size_t q_head, q_row;  /* element strides of q and out: vector (h, r) at h*q_head + r*q_row */
    size_t kv_head;        /* element stride between kv heads (rows are D apart) */
    int H, G, D;
    int gsub, nsub;        /* heads per task (<= MAX_GROUP) and tasks per GQA group */
    int rows, nkeys;       /* query rows, keys (context) */
    int R, nrb;            /* rows per task, row blocks */
    int qpt;               /* query vectors per task: gsub * R <= MAX_QUERIES */
    int nsplit, split_len; /* context splits, keys per split (a multiple of KEY_BLOCK) */
    int kblock;            /* keys per block: KEY_BLOCK, fewer for large D */
    int causal;            /* 0: all keys; else row r sees keys j <= r + diag */
    int diag, window;
    size_t mask_row;       /* mask stride (Skv) */
    float scale, softcap;
    float *partial;        /* split-K: [task][query][D + 2] = acc, m, l */
} attn_job;

/* Visible keys [lo, hi) of query row r. */
static void key_range(const attn_job *j, int r, int *lo, int *hi) {
    int h = j->nkeys;
    if (j->causal && r + j->diag + 1 < h) h = r + j->diag + 1;
    int l = 0;
    if (j->window && r + j->diag - j->window + 1 > 0) l = r + j->diag - j->window + 1;
    *lo = l;
    *hi = h;
}

/* Whether a task's nq query vectors run in the lanes of ops->lanes_block: 8..16 of them (a
 * prefill's task: GQA group x rows; a decode step's 1..4 heads stay per query) and no mask
 * or softcap (their per-score work stays on the per-query kernels). */
static int use_lanes(const attn_job *j, int nq) {
    return j->ops->lanes_block && nq >= 8 && nq <= LUTRT_ATTN_LANES && j->D % 16 == 0 &&
           j->D <= LUTRT_ATTN_LANES_MAX_D && !j->mask && j->softcap == 0.0f;
}

/* The task's keys [klo, khi) for its nq query vectors qv in lanes (lutrt_attn_lanes); acc[i]
 * as the per-query path leaves it: normalized, or with (m, l) after it under split-K. K / V
 * (f32) or Kh / Vh (f16, widened a block at a time into kbuf / vbuf): the kv head's rows. */
static void lanes_task(const attn_job *j, int nq, const float *const *qv, float *const *acc,
                       const int *lo, const int *hi, int klo, int khi, const float *K,
                       const float *V, const uint16_t *Kh, const uint16_t *Vh, float *kbuf,
                       float *vbuf) {
    const int D = j->D;
    lutrt_attn_lanes st;
    st.D = D;
    st.scale = j->scale;
    for (int i = 0; i < LUTRT_ATTN_LANES; i++) {
        st.lo[i] = i < nq ? lo[i] : 0;
        st.hi[i] = i < nq ? hi[i] : 0;
        st.m[i] = -INFINITY;
        st.l[i] = 0.0f;
    }
    j->ops->lanes_load(&st, qv, nq);
    for (int kb = klo; kb < khi; kb += j->kblock) {
        const int n = khi - kb < j->kblock ? khi - kb : j->kblock;
        const float *Kb = K ? K + (size_t)kb * D : kbuf, *Vb = V ? V + (size_t)kb * D : vbuf;
        if (Kh) {
            j->ops->widen(Kh + (size_t)kb * D, kbuf, (size_t)n * D);
            j->ops->widen(Vh + (size_t)kb * D, vbuf, (size_t)n * D);
        }
        j->ops->lanes_block(&st, Kb, Vb, kb, n);
    }
    float mult[LUTRT_ATTN_LANES]; /* 1 / l, or 1 with (m, l) kept for the merge */
    for (int i = 0; i < nq; i++) mult[i] = j->nsplit > 1 ? 1.0f : st.l[i] > 0.0f ? 1.0f / st.l[i] : 0.0f;
    j->ops->lanes_store(&st, acc, nq, mult);
    if (j->nsplit > 1)
        for (int i = 0; i < nq; i++) {
            acc[i][D] = st.m[i];
            acc[i][D + 1] = st.l[i];
        }
}

static void attn_task(void *ctx, int begin, int end) {
    const attn_job *j = (const attn_job *)ctx;
    const lutrt_attn_ops *ops = j->ops;
    const int D = j->D;
    float s[KEY_BLOCK];
    float m[MAX_QUERIES], l[MAX_QUERIES];
    int lo[MAX_QUERIES], hi[MAX_QUERIES];
    float *acc[MAX_QUERIES];
    const float *qv[MAX_QUERIES];
    float kbuf[KV_BLOCK_FLOATS], vbuf[KV_BLOCK_FLOATS]; /* f16 cache: widened K / V block */
    for (int t = begin; t < end; t++) {
        int split = t % j->nsplit, rest = t / j->nsplit;
        int rb = rest % j->nrb, hs = rest / j->nrb; /* hs: head sub-group */
        int h0 = hs * j->gsub, hk = h0 / j->G;
        int g1 = j->gsub;
        if (h0 + g1 > (hk + 1) * j->G) g1 = (hk + 1) * j->G - h0; /* last sub-group */
        int r0 = rb * j->R, r1 = r0 + j->R < j->rows ? r0 + j->R : j->rows;
        int c0 = split * j->split_len;
        int c1 = c0 + j->split_len < j->nkeys ? c0 + j->split_len : j->nkeys;
        const float *K = NULL, *V = NULL;
        const uint16_t *Kh = NULL, *Vh = NULL;
        if (j->kh) {
            Kh = j->kh + (size_t)hk * j->kv_head;
            Vh = j->vh + (size_t)hk * j->kv_head;
        } else {
            K = j->k + (size_t)hk * j->kv_head;
            V = j->v + (size_t)hk * j->kv_head;
        }
        int nq = 0, klo = c1, khi = c0;
        for (int r = r0; r < r1; r++) {
            int a, b;
            key_range(j, r, &a, &b);
            if (a < c0) a = c0;
            if (b > c1) b = c1;
            for (int g = 0; g < g1; g++, nq++) {
                size_t off = (size_t)(h0 + g) * j->q_head + (size_t)r * j->q_row;
                qv[nq] = j->q + off;
                acc[nq] = j->nsplit == 1 ? j->out + off
                                         : j->partial + ((size_t)t * j->qpt + nq) * (D + 2);
                m[nq] = -INFINITY;
                l[nq] = 0.0f;
                lo[nq] = a;
                hi[nq] = b;
            }
            if (a < b && a < klo) klo = a;
            if (a < b && b > khi) khi = b;
        }
        if (use_lanes(j, nq)) {
            lanes_task(j, nq, qv, acc, lo, hi, klo, khi, K, V, Kh, Vh, kbuf, vbuf);
            continue;
        }
        for (int i = 0; i < nq; i++) memset(acc[i], 0, (size_t)D * sizeof(float));
        for (int kb = klo; kb < khi; kb += j->kblock) {
            const float *Kb = K, *Vb = V; /* row a of the block at Kb + (a - base) * D */
            int base = 0;
            if (Kh) { /* widen this block's rows once for every query of the task */
                const int b = khi < kb + j->kblock ? khi : kb + j->kblock;
                ops->widen(Kh + (size_t)kb * D, kbuf, (size_t)(b - kb) * D);
                ops->widen(Vh + (size_t)kb * D, vbuf, (size_t)(b - kb) * D);
                Kb = kbuf;
                Vb = vbuf;
                base = kb;
            }
            for (int i = 0; i < nq; i++) {
                int a = lo[i] > kb ? lo[i] : kb;
                int b = hi[i] < kb + j->kblock ? hi[i] : kb + j->kblock;
                if (a >= b) continue;
                int n = b - a;
                ops->scores(qv[i], Kb + (size_t)(a - base) * D, n, D, j->scale, s);
                if (j->softcap != 0.0f)
                    for (int x = 0; x < n; x++) s[x] = j->softcap * tanhf(s[x] / j->softcap);
                if (j->mask) {
                    int r = r0 + i / g1;
                    const float *mr = j->mask + (size_t)r * j->mask_row + a;
                    for (int x = 0; x < n; x++) s[x] += mr[x];
                }
                float mn = ops->max(s, n);
                if (mn < m[i]) mn = m[i];
                if (!(mn > -INFINITY)) continue; /* all -inf so far (or NaN scores) */
                float alpha = m[i] > -INFINITY ? expf(m[i] - mn) : 0.0f;
                float sum = ops->exp_sum(s, n, mn);
                l[i] = alpha * l[i] + sum;
                m[i] = mn;
                ops->accumulate(acc[i], alpha, s, Vb + (size_t)(a - base) * D, n, D);
            }
        }
        for (int i = 0; i < nq; i++) {
            if (j->nsplit == 1) {
                float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
                for (int x = 0; x < D; x++) acc[i][x] *= inv;
            } else {
                acc[i][D] = m[i];
                acc[i][D + 1] = l[i];
            }
        }
    }
}

/* Split-K: out = sum_s w_s acc_s / sum_s w_s l_s with w_s = exp(m_s - max_s m_s). */
static void merge_task(void *ctx, int begin, int end) {
    const attn_job *j = (const attn_job *)ctx;
    const int D = j->D;
    for (int base = begin; base < end; base++) { /* base = task without its split */
        int rb = base % j->nrb, hs = base / j->nrb;
        int h0 = hs * j->gsub, hk = h0 / j->G;
        int g1 = j->gsub;
        if (h0 + g1 > (hk + 1) * j->G) g1 = (hk + 1) * j->G - h0;
        int r0 = rb * j->R, r1 = r0 + j->R < j->rows ? r0 + j->R : j->rows;
        int nq = (r1 - r0) * g1;
        for (int i = 0; i < nq; i++) {
            int r = r0 + i / g1, h = h0 + i % g1;
            float *o = j->out + (size_t)h * j->q_head + (size_t)r * j->q_row;
            float mx = -INFINITY, l = 0.0f;
            for (int sp = 0; sp < j->nsplit; sp++) {
                const float *p = j->partial +
                                 ((size_t)(base * j->nsplit + sp) * j->qpt + i) * (D + 2);
                if (p[D] > mx) mx = p[D];
            }
            memset(o, 0, (size_t)D * sizeof(float));
            if (!(mx > -INFINITY)) continue;
            for (int sp = 0; sp < j->nsplit; sp++) {
                const float *p = j->partial +
                                 ((size_t)(base * j->nsplit + sp) * j->qpt + i) * (D + 2);
                if (!(p[D] > -INFINITY)) continue;
                float w = expf(p[D] - mx);
                l += w * p[D + 1];
                for (int x = 0; x < D; x++) o[x] += w * p[x];
            }
            float inv = l > 0.0f ? 1.0f / l : 0.0f;
            for (int x = 0; x < D; x++) o[x] *= inv;
        }
    }
}

static int check_desc(const char *fn, const lutrt_attn_desc *d) {
    if (!d) return lutrt_fail("%s: NULL descriptor", fn);
    if (d->n_heads < 1 || d->n_kv_heads < 1 || d->n_heads % d->n_kv_heads)
        return lutrt_fail("%s: n_heads (%d) must be a positive multiple of n_kv_heads (%d)", fn,
                          d->n_heads, d->n_kv_heads);
    if (d->head_dim < 1) return lutrt_fail("%s: head_dim must be >= 1, got %d", fn, d->head_dim);
    if (d->sliding_window < 0)
        return lutrt_fail("%s: sliding_window must be >= 0 (0: none), got %d", fn, d->sliding_window);
    if (!isfinite(d->scale)) return lutrt_fail("%s: scale must be finite", fn);
    if (!isfinite(d->softcap) || d->softcap < 0.0f)
        return lutrt_fail("%s: softcap must be >= 0 (0: none), got %g", fn, (double)d->softcap);
    if (d->num_threads < 0)
        return lutrt_fail("%s: num_threads must be >= 0 (0: pool default), got %d", fn, d->num_threads);
    return LUTRT_OK;
}

/* Fills the task layout of `j` (everything but pointers and visibility), runs it, merges. */
static int run(attn_job *j, const lutrt_attn_desc *d) {
    j->ops = current_ops();
    j->H = d->n_heads;
    j->G = d->n_heads / d->n_kv_heads;
    j->D = d->head_dim;
    j->gsub = j->G < MAX_GROUP ? j->G : MAX_GROUP;
    j->nsub = (j->G + j->gsub - 1) / j->gsub;
    j->R = j->gsub >= TILE_QUERIES ? 1 : TILE_QUERIES / j->gsub;
    if (j->R > j->rows) j->R = j->rows;
    j->qpt = j->gsub * j->R;
    j->nrb = (j->rows + j->R - 1) / j->R;
    j->kblock = KV_BLOCK_FLOATS / j->D / 8 * 8;
    if (j->kblock > KEY_BLOCK) j->kblock = KEY_BLOCK;
    if (j->kblock < 8) j->kblock = 8;
    if (j->kh && j->kblock * j->D > KV_BLOCK_FLOATS) j->kblock = KV_BLOCK_FLOATS / j->D; /* >= 1 */
    j->scale = d->scale;
    j->softcap = d->softcap;
    int tasks = d->n_kv_heads * j->nsub * j->nrb;
    int threads = lutrt_threads_for(d->num_threads);
    j->nsplit = 1;
    if (threads > 1 && tasks < 2 * threads) {
        int want = (2 * threads + tasks - 1) / tasks, most = j->nkeys / MIN_SPLIT_KEYS;
        j->nsplit = want < most ? want : most;
        if (j->nsplit < 1) j->nsplit = 1;
    }
    int len = (j->nkeys + j->nsplit - 1) / j->nsplit;
    j->split_len = (len + KEY_BLOCK - 1) / KEY_BLOCK * KEY_BLOCK;
    j->nsplit = (j->nkeys + j->split_len - 1) / j->split_len;
    j->partial = NULL;
    if (j->nsplit > 1) {
        j->partial = malloc((size_t)tasks * j->nsplit * j->qpt * (j->D + 2) * sizeof(float));
        if (!j->partial) { /* no scratch: run unsplit */
            j->nsplit = 1;
            j->split_len = j->nkeys;
        }
    }
    lutrt_parallel_for(d->num_threads, tasks * j->nsplit, 1, attn_task, j);
    if (j->nsplit > 1) {
        lutrt_parallel_for(d->num_threads, tasks, 1, merge_task, j);
        free(j->partial);
    }
    return LUTRT_OK;
}

/* lutrt_attention_kv(_f16): k_cache / v_cache are float * (f16 == 0) or uint16_t * (f16 == 1). */
static int attention_kv(const char *fn, const lutrt_attn_desc *d, const float *q,
                        const float *k_new, const float *v_new, void *k_cache, void *v_cache,
                        int32_t start, int32_t S, float *out, int f16) {
    int rc = check_desc(fn, d);
    if (rc) return rc;
    if (d->max_context < 1) return lutrt_fail("%s: max_context must be >= 1, got %d", fn, d->max_context);
    if (!q || !k_new || !v_new || !k_cache || !v_cache || !out) return lutrt_fail("%s: NULL buffer", fn);
    if (start < 0) return lutrt_fail("%s: start must be >= 0, got %d", fn, start);
    if (S < 1) return lutrt_fail("%s: S (query rows) must be >= 1, got %d", fn, S);
    if ((int64_t)start + S > d->max_context)
        return lutrt_fail("%s: start + S = %lld exceeds max_context %d", fn,
                          (long long)start + S, d->max_context);
    if (f16 && d->head_dim > MAX_F16_HEAD_DIM)
        return lutrt_fail("%s: head_dim must be <= %d with an f16 cache, got %d", fn,
                          MAX_F16_HEAD_DIM, d->head_dim);
    const int H = d->n_heads, KVH = d->n_kv_heads, D = d->head_dim;
    const size_t head = (size_t)d->max_context * D, row = (size_t)D * sizeof(float);
    for (int s = 0; s < S; s++) /* append: new row s of kv head hk -> cache row start + s */
        for (int hk = 0; hk < KVH; hk++) {
            size_t src = ((size_t)s * KVH + hk) * D, dst = hk * head + (size_t)(start + s) * D;
            if (f16) {
                uint16_t *kd = (uint16_t *)k_cache + dst, *vd = (uint16_t *)v_cache + dst;
                for (int x = 0; x < D; x++) {
                    kd[x] = lutrt_f32_to_f16(k_new[src + x]);
                    vd[x] = lutrt_f32_to_f16(v_new[src + x]);
                }
            } else {
                memmove((float *)k_cache + dst, k_new + src, row);
                memmove((float *)v_cache + dst, v_new + src, row);
            }
        }
    attn_job j = {
        .q = q, .k = f16 ? NULL : k_cache, .v = f16 ? NULL : v_cache, .mask = NULL, .out = out,
        .kh = f16 ? k_cache : NULL, .vh = f16 ? v_cache : NULL,
        .q_head = (size_t)D, .q_row = (size_t)H * D, .kv_head = head,
        .rows = S, .nkeys = start + S,
        .causal = 1, .diag = start, .window = d->sliding_window,
    };
    return run(&j, d);
}

int lutrt_attention_kv(const lutrt_attn_desc *d, const float *q, const float *k_new,
                       const float *v_new, float *k_cache, float *v_cache, int32_t start,
                       int32_t S, float *out) {
    return attention_kv("lutrt_attention_kv", d, q, k_new, v_new, k_cache, v_cache, start, S,
                        out, 0);
}

int lutrt_attention_kv_f16(const lutrt_attn_desc *d, const float *q, const float *k_new,
                           const float *v_new, uint16_t *k_cache, uint16_t *v_cache,
                           int32_t start, int32_t S, float *out) {
    return attention_kv("lutrt_attention_kv_f16", d, q, k_new, v_new, k_cache, v_cache, start,
                        S, out, 1);
}

int lutrt_attention(const lutrt_attn_desc *d, const float *q, const float *k, const float *v,
                    int32_t Sq, int32_t Skv, int32_t causal, const float *mask, float *out) {
    static const char fn[] = "lutrt_attention";
    int rc = check_desc(fn, d);
    if (rc) return rc;
    if (!q || !k || !v || !out) return lutrt_fail("%s: NULL buffer", fn);
    if (Sq < 1 || Skv < 1) return lutrt_fail("%s: Sq and Skv must be >= 1, got %d and %d", fn, Sq, Skv);
    if (causal < 0 || causal > 2)
        return lutrt_fail("%s: causal must be 0 (none), 1 (bottom-right) or 2 (top-left), got %d",
                          fn, causal);
    if (d->sliding_window && !causal)
        return lutrt_fail("%s: sliding_window %d needs causal attention (causal 1 or 2)", fn,
                          d->sliding_window);
    const int D = d->head_dim;
    attn_job j = {
        .q = q, .k = k, .v = v, .mask = mask, .out = out,
        .q_head = (size_t)Sq * D, .q_row = (size_t)D, .kv_head = (size_t)Skv * D,
        .rows = Sq, .nkeys = Skv, .mask_row = (size_t)Skv,
        .causal = causal != 0, .diag = causal == 1 ? Skv - Sq : 0, .window = d->sliding_window,
    };
    return run(&j, d);
}
