/* unpack_scratch.h — the per-thread buffer of the kernels that unpack weight blocks
 * (unpack_avx512.h's users, mma_i8act_avx2.c). Each includer gets its own copy. */
#ifndef LUTRT_UNPACK_SCRATCH_H
#define LUTRT_UNPACK_SCRATCH_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define LUTRT_SCRATCH_SLOTS 2

/* Each thread keeps its unpack buffer between blocks and calls: a fresh 128 KiB allocation per
 * block is an mmap + page faults. Freed when the thread exits (pool workers are joined by
 * lutrt_shutdown). n must be a multiple of 64. */
typedef struct {
    uint8_t *p[LUTRT_SCRATCH_SLOTS];
    size_t cap[LUTRT_SCRATCH_SLOTS];
} scratch_buf;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static inline void scratch_free(void *v) {
    scratch_buf *s = (scratch_buf *)v;
    for (int i = 0; i < LUTRT_SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}
static inline void scratch_make_key(void) { pthread_key_create(&scratch_key, scratch_free); }

/* This thread's buffer `slot` (0: the weight-block unpack; 1: a whole call's buffer on the
 * calling thread) of at least n bytes (a multiple of 64), or NULL when out of memory. */
static inline uint8_t *lutrt_scratch(int slot, size_t n) {
    pthread_once(&scratch_once, scratch_make_key);
    scratch_buf *s = (scratch_buf *)pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = (scratch_buf *)calloc(1, sizeof *s))) return NULL;
        pthread_setspecific(scratch_key, s);
    }
    if (s->cap[slot] < n) {
        free(s->p[slot]);
        s->p[slot] = (uint8_t *)aligned_alloc(64, n);
        s->cap[slot] = s->p[slot] ? n : 0;
    }
    return s->p[slot];
}

static inline uint8_t *lutrt_unpack_scratch(size_t n) { return lutrt_scratch(0, n); }

#endif
