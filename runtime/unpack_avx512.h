/* unpack_avx512.h — weight codes of one block of 32 rows unpacked to bytes, for the kernels
 * that multiply codes instead of looking up tables (mma_i8act_avx512vnni.c,
 * mma_f32dq_avx512.c). Include only from files compiled with AVX-512F/BW; each includer gets
 * its own copy of the per-thread scratch buffer. */
#ifndef LUTRT_UNPACK_AVX512_H
#define LUTRT_UNPACK_AVX512_H

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lutrt_internal.h"
#include "unpack_scratch.h"

/* How lutrt_unpack_block turns bit planes into code bytes: the vpermd tables below (any
 * AVX-512 CPU) or, on CPUs with AVX512-VBMI and GFNI, a bit-matrix transpose. Set up once per
 * task by lutrt_unpacker_init. */
typedef struct {
    __m512i lut[LUTRT_MAX_BITS]; /* vpermd path: lut[b] lane c, see lutrt_spread_luts */
    __m512i idx[2];              /* GFNI path: vpermb indices of row pairs 0..7 / 8..15 */
    int gfni;                    /* 1: the GFNI path (B >= 2, VBMI + GFNI, not disabled) */
} lutrt_unpacker;

/* lut[b] lane c: the 4 bytes of a code c of plane b, byte i = bit i of the pattern << b; a
 * mirrored code c >= 8 stands for pattern 8 | (~c & 7) (packing.mirror_codes). */
static inline void lutrt_spread_luts(int bits, int mirrored, __m512i *lut) {
    for (int b = 0; b < bits; b++) {
        uint32_t v[16];
        for (int c = 0; c < 16; c++) {
            const int p = (mirrored && (c & 8)) ? (8 | (~c & 7)) : c;
            uint32_t d = 0;
            for (int i = 0; i < 4; i++) d |= (uint32_t)((p >> i) & 1) << (8 * i + b);
            v[c] = d;
        }
        lut[b] = _mm512_loadu_si512(v);
    }
}

/* Packed weights read this far ahead of the table being unpacked, for calls of at most
 * LUTRT_UNPACK_PREFETCH_MAX_M token rows: there a block's unpack waits on its weights (L3 /
 * DRAM; perf put 62% of the unpack on the load). GEMM M = 16, N = 5632, K = 2048, w2, weights
 * rotating through 35 MB, on the 2-core Xeon VM, 1 / 2 threads: 1002-1068 -> 950 us and
 * 521-620 -> 484 us; the 492M model's 16-token prefill 2.8-5.5% faster (2026-12-06). More rows
 * amortize the wait over more tile work. */
#define LUTRT_UNPACK_PREFETCH_BYTES 4096
#define LUTRT_UNPACK_PREFETCH_MAX_M 32
/* whether a call's unpack prefetches (decided once per block: the loops' scratch stores may
 * alias *a, so a test of a->M inside them would reload it every table) */
static inline int lutrt_unpack_prefetches(const lutrt_mma_args *a) {
    return a->M <= LUTRT_UNPACK_PREFETCH_MAX_M;
}
static inline void lutrt_unpack_prefetch(int on, const uint8_t *c) {
    if (on) __builtin_prefetch(c + LUTRT_UNPACK_PREFETCH_BYTES, 0, 3);
}

/* The int8-activation kernel's next weight block: its packed bits, scales and zeros,
 * prefetched into L2 in slices while the current block's tiles compute (one slice per AMX
 * activation group of the first row tile, or per VNNI row tile). Without it a block's unpack
 * streams the block from memory while the tiles idle, and the tiles then compute while the
 * memory idles; at few token rows that unpack was 16% of SmolLM2's 16-token prefill (perf).
 * Only within one claim of blocks (blk + 1 < the claim's end): another thread may take the
 * next claim. Interleaved A/B, SmolLM2 16-token prefill on the 2-core AMX VM (2026-12-07,
 * medians of 3 runs of 300 calls): AMX 1 thread 22.2 -> 20.4 ms (weights alone: 21.0), 2
 * threads 14.1 -> 13.5 ms; AVX512-VNNI kernel 1 thread 25.8 -> 25.1 ms, 2 threads unchanged;
 * 128 tokens 1 thread -3%, 2 threads unchanged; the 492M model's 16-token prefill (2-bit
 * ternary, 16 KiB blocks) unchanged. */
typedef struct {
    const char *p[3], *end[3]; /* next line to prefetch and end: weights, scales, zeros */
    int lines[3];              /* lines per step */
} lutrt_ahead;
static inline void lutrt_ahead_region(lutrt_ahead *h, int r, const void *p, size_t bytes,
                                      int steps) {
    h->p[r] = (const char *)p;
    h->end[r] = p ? h->p[r] + bytes : h->p[r];
    h->lines[r] = (int)((bytes / 64 + (size_t)steps - 1) / (size_t)steps);
}
/* prepares the prefetch of the nblk consecutive blocks from blk in `steps` slices */
static inline void lutrt_ahead_init(lutrt_ahead *h, const lutrt_mma_args *a, int blk, int nblk,
                                    int steps) {
    const size_t bytes = (size_t)a->J * a->chunk, sz = (size_t)a->NG * LUTRT_BLOCK_N;
    lutrt_ahead_region(h, 0, a->w + (size_t)blk * bytes, nblk * bytes, steps);
    lutrt_ahead_region(h, 1, a->scales + (size_t)blk * sz, nblk * sz * sizeof(float), steps);
    lutrt_ahead_region(h, 2, a->zeros ? a->zeros + (size_t)blk * sz : NULL,
                       nblk * sz * sizeof(float), steps);
}
static inline void lutrt_ahead_step(lutrt_ahead *h) {
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < h->lines[r] && h->p[r] < h->end[r]; i++, h->p[r] += 64)
            _mm_prefetch(h->p[r], _MM_HINT_T1);
}

#if !defined(LUTRT_AVX512_SIMDE) && !defined(LUTRT_NO_GFNI_UNPACK)
#define LUTRT_GFNI_UNPACK 1
/* The GFNI path, for the 2 (B / 2) planes stored in pairs (lutrt_code_at: plane 2pp + s of
 * rows i / 16 + i is the low / high nibble of byte 2i + s of the pair's 32 bytes, one bit per
 * k). Per table j (4 k): vpermb gathers the plane bytes of row pair i into qword i, plane p at
 * byte 7 - p (zeros above the last pair); vgf2p8affineqb with that qword as the matrix and
 * x = 1 << b transposes it (Intel SDM, GF2P8AFFINEQB: bit i of a result byte = parity(matrix
 * byte 7 - i AND x)), so that result byte b holds bit b of every plane: the code of row i at
 * k = b (b < 4) or of row 16 + i at k = b - 4; vpermt2d sorts the row dwords into
 * q[j][h][16][4]. Mirrored nibbles (pattern 8 | (~c & 7) for c >= 8) are mapped back first by
 * one more vgf2p8affineqb: bits 0..2 ^= bit 3 in each nibble, a GF(2)-linear map. An odd last
 * plane is OR-ed in as on the vpermd path. 4-bit codes: 8 instructions per table instead of 24. */
#define LUTRT_GFNI_TRANSPOSE_X 0x8040201008040201ULL /* byte b = 1 << b */
#ifndef LUTRT_GFNI_MIRROR /* (overridden only by a test that proves this path runs) */
#define LUTRT_GFNI_MIRROR 0x090A0C0890A0C080ULL /* per nibble: bits 0..2 ^= bit 3 */
#endif

static inline int lutrt_cpu_has_vbmi_gfni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
}

__attribute__((target("avx512f,avx512bw,avx512vbmi,gfni"), noinline)) static void
lutrt_unpack_block_gfni(const lutrt_mma_args *a, int blk, const lutrt_unpacker *u, uint8_t *q) {
    const int bits = a->bits, npairs = bits >> 1, pbytes = 32 * npairs;
    const __mmask64 keep = (__mmask64)(0x0101010101010101ULL * (uint8_t)(0xFF00u >> (2 * npairs)));
    const __mmask64 tail = (1ULL << (pbytes & 63)) - 1; /* the bytes of a partial 64 */
    const __m512i x = _mm512_set1_epi64((long long)LUTRT_GFNI_TRANSPOSE_X);
    const __m512i mirror = _mm512_set1_epi64((long long)LUTRT_GFNI_MIRROR);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i sh_lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    const __m512i sh_hi = _mm512_setr_epi32(8, 8, 8, 8, 8, 8, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12);
    const uint8_t *c = a->w + (size_t)blk * a->J * a->chunk;
    const int prefetch = lutrt_unpack_prefetches(a);
    for (int j = 0; j < a->J; j++, c += a->chunk) {
        lutrt_unpack_prefetch(prefetch, c);
        __m512i a0, a1;
        if (pbytes <= 64) {
            __m512i lo = pbytes == 64 ? _mm512_loadu_si512(c) : _mm512_maskz_loadu_epi8(tail, c);
            if (a->mirrored) lo = _mm512_gf2p8affine_epi64_epi8(lo, mirror, 0);
            a0 = _mm512_maskz_permutexvar_epi8(keep, u->idx[0], lo);
            a1 = _mm512_maskz_permutexvar_epi8(keep, u->idx[1], lo);
        } else {
            __m512i lo = _mm512_loadu_si512(c);
            __m512i hi = pbytes == 128 ? _mm512_loadu_si512(c + 64) : _mm512_maskz_loadu_epi8(tail, c + 64);
            if (a->mirrored) {
                lo = _mm512_gf2p8affine_epi64_epi8(lo, mirror, 0);
                hi = _mm512_gf2p8affine_epi64_epi8(hi, mirror, 0);
            }
            a0 = _mm512_maskz_permutex2var_epi8(keep, lo, u->idx[0], hi);
            a1 = _mm512_maskz_permutex2var_epi8(keep, lo, u->idx[1], hi);
        }
        const __m512i t0 = _mm512_gf2p8affine_epi64_epi8(x, a0, 0);
        const __m512i t1 = _mm512_gf2p8affine_epi64_epi8(x, a1, 0);
        __m512i q0 = _mm512_permutex2var_epi32(t0, even, t1);
        __m512i q1 = _mm512_permutex2var_epi32(t0, odd, t1);
        if (bits & 1) { /* word i: rows i, 8+i, 16+i, 24+i in bits 0-3, 4-7, 8-11, 12-15 */
            const __m256i w8 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(c + pbytes)));
            const __m512i w = _mm512_broadcast_i64x4(w8);
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(_mm512_srlv_epi32(w, sh_lo), u->lut[bits - 1]));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srlv_epi32(w, sh_hi), u->lut[bits - 1]));
        }
        _mm512_store_si512(q + (size_t)j * 128, q0);
        _mm512_store_si512(q + (size_t)j * 128 + 64, q1);
    }
}
#endif

/* The unpacker of B-bit codes, mirrored or not, on this CPU. */
static inline void lutrt_unpacker_init(lutrt_unpacker *u, int bits, int mirrored) {
    lutrt_spread_luts(bits, mirrored, u->lut);
    u->gfni = 0;
#ifdef LUTRT_GFNI_UNPACK
    if (bits >= 2 && lutrt_cpu_has_vbmi_gfni()) {
        uint8_t idx[2][64] = {{0}};
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 8; i++)
                for (int p = 0; p < 2 * (bits >> 1); p++)
                    idx[h][8 * i + 7 - p] = (uint8_t)(32 * (p >> 1) + 2 * (8 * h + i) + (p & 1));
        u->idx[0] = _mm512_loadu_si512(idx[0]);
        u->idx[1] = _mm512_loadu_si512(idx[1]);
        u->gfni = 1;
    }
#endif
}

/* Block blk's codes -> q[j][h][16][4] unsigned (h: rows 0..15 / 16..31); the packed layout is
 * lutrt_code_at's. vpermd reads only the low 4 bits of each index lane. */
static inline void lutrt_unpack_block(const lutrt_mma_args *a, int blk, const lutrt_unpacker *u, uint8_t *q) {
#ifdef LUTRT_GFNI_UNPACK
    if (u->gfni) {
        lutrt_unpack_block_gfni(a, blk, u, q);
        return;
    }
#endif
    const __m512i *lut = u->lut;
    const int bits = a->bits, npairs = bits >> 1;
    const __m512i sh_lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    const __m512i sh_hi = _mm512_setr_epi32(8, 8, 8, 8, 8, 8, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12);
    const uint8_t *c = a->w + (size_t)blk * a->J * a->chunk;
    const int prefetch = lutrt_unpack_prefetches(a);
    for (int j = 0; j < a->J; j++, c += a->chunk) {
        lutrt_unpack_prefetch(prefetch, c);
        __m512i q0 = _mm512_setzero_si512(), q1 = _mm512_setzero_si512();
        for (int pp = 0; pp < npairs; pp++) {
            /* word i: plane 2pp of rows i / 16+i in bits 0-3 / 4-7, plane 2pp+1 in 8-11 / 12-15 */
            const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(c + 32 * pp)));
            const __m512i l0 = lut[2 * pp], l1 = lut[2 * pp + 1];
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(w, l0));
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(_mm512_srli_epi32(w, 8), l1));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srli_epi32(w, 4), l0));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srli_epi32(w, 12), l1));
        }
        if (bits & 1) {
            /* word i: rows i, 8+i, 16+i, 24+i in bits 0-3, 4-7, 8-11, 12-15 */
            const __m256i w8 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(c + 32 * npairs)));
            const __m512i w = _mm512_broadcast_i64x4(w8);
            q0 = _mm512_or_si512(q0, _mm512_permutexvar_epi32(_mm512_srlv_epi32(w, sh_lo), lut[bits - 1]));
            q1 = _mm512_or_si512(q1, _mm512_permutexvar_epi32(_mm512_srlv_epi32(w, sh_hi), lut[bits - 1]));
        }
        _mm512_store_si512(q + (size_t)j * 128, q0);
        _mm512_store_si512(q + (size_t)j * 128 + 64, q1);
    }
}

/* Scales and zero points of weight group g of block blk for the unsigned codes of
 * lutrt_unpack_block (rows 16h..16h+15): mirrored formats store s' = s / 2 and
 * z' = 2z + 1 - 2^B, so s = 2 s', z = (z' + 2^B - 1) / 2 (exact for integer z). */
static inline void lutrt_block_group_sz(const lutrt_mma_args *a, int blk, int g, __m512 z[2],
                                        __m512 s[2]) {
    const size_t si = ((size_t)blk * a->NG + g) * LUTRT_BLOCK_N;
    const float sfac = a->mirrored ? 2.0f : 1.0f;
    const float zadd = a->mirrored ? (float)((1 << a->bits) - 1) : 0.0f;
    for (int h = 0; h < 2; h++) {
        const __m512 zz = a->zeros ? _mm512_loadu_ps(a->zeros + si + 16 * h) : _mm512_set1_ps(a->zimp);
        z[h] = a->mirrored ? _mm512_mul_ps(_mm512_add_ps(zz, _mm512_set1_ps(zadd)), _mm512_set1_ps(0.5f)) : zz;
        s[h] = _mm512_mul_ps(_mm512_loadu_ps(a->scales + si + 16 * h), _mm512_set1_ps(sfac));
    }
}

/* One output row of a 32-row block: rows_n <= 32 floats from two zmm. */
static inline void lutrt_store_block_row(float *o, int rows_n, __m512 lo, __m512 hi) {
    if (rows_n == LUTRT_BLOCK_N) {
        _mm512_storeu_ps(o, lo);
        _mm512_storeu_ps(o + 16, hi);
    } else {
        float tmp[32];
        _mm512_storeu_ps(tmp, lo);
        _mm512_storeu_ps(tmp + 16, hi);
        memcpy(o, tmp, (size_t)rows_n * sizeof(float));
    }
}



#endif
