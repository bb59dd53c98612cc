/* threadpool.c — a persistent pthread pool for lutrt's parallel loops (N split across
 * threads).
 *
 * Work is claimed dynamically, guided self-scheduling style (Polychronopoulos & Kuck 1987;
 * OpenMP `schedule(guided)`): each chunk is 1/(2p) of the tasks left, rounded down to whole
 * `grain`s and never less than one grain. The caller works too: on a shared, oversubscribed
 * machine a worker that is not scheduled in time simply gets fewer chunks instead of
 * stalling the whole call. Large first chunks keep the claims few (each is a locked CAS that
 * waits for the chunk's stores to drain: one claim per task cost ~7% of a 2-thread SmolLM2
 * prefill, whose weight-block loops run ~60 tasks per call). Idle workers poll briefly
 * (back-to-back GEMVs of a decode step then skip the futex wake-up), then yield, then sleep.
 *
 * lutrt_parallel_for_owned schedules owner-first instead (work stealing, Blumofe & Leiserson
 * 1999, on static ranges as OpenMP runtimes steal): thread i owns the i-th of p contiguous
 * ranges and claims from its front, three quarters of what it has left at a time (half:
 * SmolLM2 prefill-16 on the 2-core VM 2-3% slower, more claims); a thread whose range is empty
 * takes half of what is left of the fullest range, from its back. Each thread then walks
 * one run of consecutive tasks (a kernel may prefetch the task after its chunk: mostly its own
 * next one), and a thread that starts late or runs slow still loses its tasks to the others.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lutrt_internal.h"

#define MAX_THREADS 256
#define SPIN_NS 50000L    /* idle worker: pause-poll this long, */
#define YIELD_NS 2000000L /* then sched_yield-poll until this, then sleep */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* `job` is the generation of the last published loop. `claim` packs that generation (high 32
 * bits) and the next unclaimed task (low 32 bits): a successful CAS on it proves the loop is
 * still the current one, so its fn/ctx/ntasks are valid until our chunk is reported done.
 * Between loops the claim is closed (next task CLAIM_CLOSED, past any task count) before the
 * next loop's parameters are written. */
#define CLAIM_CLOSED 0x7FFFFFFFu
static struct {
    pthread_mutex_t run_lock;  /* one parallel loop at a time */
    pthread_mutex_t wake_lock; /* guards sleeping workers */
    pthread_cond_t wake;
    /* job, claim and finished each own a cache line: the caller polls `finished` while the
     * workers CAS `claim`; on one line every poll pulled it away from the claimers (~1% of a
     * 2-thread SmolLM2 16-token prefill, within noise) */
    _Alignas(64) atomic_uint job;
    _Alignas(64) _Atomic uint64_t claim;
    _Alignas(64) atomic_int finished; /* tasks completed in the current loop */
    _Alignas(64) atomic_int sleepers;
    atomic_int stop;
    int nworkers; /* started workers */
    pthread_t tids[MAX_THREADS];
    unsigned start_job[MAX_THREADS]; /* job generation when a worker was created */
    lutrt_task_fn fn; /* read only by a thread holding a claimed chunk of the current loop */
    void *ctx;
    /* read speculatively (before a claim) while the caller may publish the next loop: a
     * stale value only makes the claim's CAS fail, but the accesses must be atomic */
    atomic_int ntasks, grain, nthreads;
    atomic_int owned; /* the current loop is owner-first (lutrt_parallel_for_owned) */
    int default_threads; /* 0: not yet resolved */
} pool = {.run_lock = PTHREAD_MUTEX_INITIALIZER,
          .wake_lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER};

static _Thread_local int in_pool; /* nested parallel loops run serially */

/* Owner-first loops: range i of the current loop as generation (low 16 bits) << 48 | next
 * task << 24 | end, one cache line each; ranges hold < 2^24 tasks (larger loops run guided). */
#define OWNED_MAX_TASKS ((1 << 24) - 1)
static struct {
    _Alignas(64) _Atomic uint64_t r;
} ranges[MAX_THREADS];

static inline uint64_t range_word(unsigned gen, int front, int back) {
    return (uint64_t)(gen & 0xFFFFu) << 48 | (uint64_t)front << 24 | (uint64_t)back;
}

/* lutrt_pool_profile: per task function, [loops, caller ns, ns in chunks, threads x ns];
 * entries are written by the caller of a loop under run_lock (chunk time goes to busy_ns) */
static atomic_int profiling;
static _Atomic int64_t busy_ns; /* chunk time of the current loop */
static struct {
    const void *fn;
    int64_t v[4];
} profile[LUTRT_POOL_PROFILE_FNS];
static int nprofile;

static void profile_add(lutrt_task_fn fn, int64_t wall, int64_t busy, int threads) {
    int i = 0;
    while (i < nprofile && profile[i].fn != (const void *)fn) i++;
    if (i == nprofile) {
        if (nprofile == LUTRT_POOL_PROFILE_FNS) return;
        profile[nprofile].fn = (const void *)fn;
        nprofile++;
    }
    profile[i].v[0] += 1;
    profile[i].v[1] += wall;
    profile[i].v[2] += busy;
    profile[i].v[3] += wall * threads;
}

/* fn(ctx, begin, end), its time added to busy_ns while profiling */
static inline void run_chunk(lutrt_task_fn fn, void *ctx, int begin, int end, int prof) {
    if (!prof) {
        fn(ctx, begin, end);
        return;
    }
    const long t0 = now_ns();
    fn(ctx, begin, end);
    atomic_fetch_add_explicit(&busy_ns, now_ns() - t0, memory_order_relaxed);
}

/* Owner-first: claims [*b, *e) from range i, from its front (own: three quarters of what is
 * left) or back (stolen: half), in whole grains, at least a grain (or the rest). 0 when range
 * i is empty or no longer of loop `gen`. */
static int take(int i, unsigned gen, int grain, int own, int *b, int *e) {
    uint64_t w = atomic_load_explicit(&ranges[i].r, memory_order_acquire);
    for (;;) {
        if ((unsigned)(w >> 48) != (gen & 0xFFFFu)) return 0;
        const int front = (int)(w >> 24 & 0xFFFFFF), back = (int)(w & 0xFFFFFF), left = back - front;
        if (left <= 0) return 0;
        /* ranges start on whole grains and the front moves by whole grains: the split point
         * stays on a grain (only the loop's last task may end a chunk off one) */
        int split;
        if (own) {
            split = front + (left - left / 4) / grain * grain;
            if (split == front) split = front + grain < back ? front + grain : back;
        } else {
            split = (front + left / 2 + grain - 1) / grain * grain;
            if (split >= back) split = front;
        }
        const uint64_t next = own ? range_word(gen, split, back) : range_word(gen, front, split);
        if (atomic_compare_exchange_weak_explicit(&ranges[i].r, &w, next, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *b = own ? front : split;
            *e = own ? split : back;
            return 1;
        }
    }
}

/* Owner-first: thread `id`'s range first, then steals until every range is empty. */
static void work_owned(unsigned gen, int id) {
    const int p = atomic_load_explicit(&pool.nthreads, memory_order_relaxed);
    const int grain = atomic_load_explicit(&pool.grain, memory_order_relaxed);
    const int prof = atomic_load_explicit(&profiling, memory_order_relaxed);
    int b, e;
    for (;;) {
        if (!(id < p && take(id, gen, grain, 1, &b, &e))) { /* steal from the fullest range */
            int best = -1, most = 0;
            for (int i = 0; i < p; i++) {
                const uint64_t w = atomic_load_explicit(&ranges[i].r, memory_order_relaxed);
                const int left = (int)(w & 0xFFFFFF) - (int)(w >> 24 & 0xFFFFFF);
                if ((unsigned)(w >> 48) == (gen & 0xFFFFu) && left > most) best = i, most = left;
            }
            if (best < 0) return; /* none left: done */
            if (!take(best, gen, grain, 0, &b, &e)) continue;
        }
        run_chunk(pool.fn, pool.ctx, b, e, prof);
        atomic_fetch_add_explicit(&pool.finished, e - b, memory_order_release);
    }
}

/* Claims and runs chunks of loop `gen` until none is left. */
static void work(unsigned gen) {
    for (;;) {
        uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
        if ((unsigned)(c >> 32) != gen) return;
        int begin = (int)(uint32_t)c;
        int n = atomic_load_explicit(&pool.ntasks, memory_order_acquire);
        int grain = atomic_load_explicit(&pool.grain, memory_order_relaxed);
        int p = atomic_load_explicit(&pool.nthreads, memory_order_relaxed);
        if (begin >= n) return;
        /* guided self-scheduling: a chunk is 1/(2p) of what is left, in whole grains */
        int size = (n - begin) / (2 * (p > 1 ? p : 1)) / grain * grain;
        if (size < grain) size = grain;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + (uint64_t)size,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        int end = begin + size < n ? begin + size : n;
        run_chunk(pool.fn, pool.ctx, begin, end, atomic_load_explicit(&profiling, memory_order_relaxed));
        atomic_fetch_add_explicit(&pool.finished, end - begin, memory_order_release);
    }
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    in_pool = 1;
    unsigned seen = pool.start_job[id];
    for (;;) {
        long t0 = now_ns();
        unsigned job;
        for (int i = 1;; i++) {
            job = atomic_load_explicit(&pool.job, memory_order_acquire);
            if (job != seen || atomic_load(&pool.stop)) break;
            if ((i & 255) == 0) {
                long dt = now_ns() - t0;
                if (dt > YIELD_NS) {
                    pthread_mutex_lock(&pool.wake_lock);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while ((job = atomic_load(&pool.job)) == seen && !atomic_load(&pool.stop))
                        pthread_cond_wait(&pool.wake, &pool.wake_lock);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.wake_lock);
                    break;
                }
                if (dt > SPIN_NS) sched_yield();
            }
            cpu_relax();
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = job;
        if (id < atomic_load_explicit(&pool.nthreads, memory_order_relaxed)) {
            if (atomic_load_explicit(&pool.owned, memory_order_relaxed))
                work_owned(job, id); /* both re-check the generation */
            else
                work(job);
        }
    }
}

static int resolve_default(void) {
    const char *env = getenv("LUTRT_NUM_THREADS");
    int n = env ? atoi(env) : 0;
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    return n > MAX_THREADS ? MAX_THREADS : n;
}

void lutrt_set_num_threads(int n) {
    pthread_mutex_lock(&pool.run_lock);
    pool.default_threads = n > 0 ? (n > MAX_THREADS ? MAX_THREADS : n) : resolve_default();
    pthread_mutex_unlock(&pool.run_lock);
}

int lutrt_get_num_threads(void) {
    pthread_mutex_lock(&pool.run_lock);
    if (!pool.default_threads) pool.default_threads = resolve_default();
    int n = pool.default_threads;
    pthread_mutex_unlock(&pool.run_lock);
    return n;
}

static void parallel_for(int nthreads, int ntasks, int grain, lutrt_task_fn fn, void *ctx, int owned) {
    if (ntasks <= 0) return;
    if (grain < 1) grain = 1;
    if (in_pool) {
        fn(ctx, 0, ntasks);
        return;
    }
    pthread_mutex_lock(&pool.run_lock);
    if (!pool.default_threads) pool.default_threads = resolve_default();
    int p = nthreads > 0 ? nthreads : pool.default_threads;
    if (p > MAX_THREADS) p = MAX_THREADS;
    const int prof = atomic_load_explicit(&profiling, memory_order_relaxed), held = p;
    const long t0 = prof ? now_ns() : 0;
    int chunks = (ntasks + grain - 1) / grain;
    if (p > chunks) p = chunks;
    if (p <= 1) {
        pthread_mutex_unlock(&pool.run_lock);
        fn(ctx, 0, ntasks);
        if (prof) {
            const long dt = now_ns() - t0;
            pthread_mutex_lock(&pool.run_lock);
            profile_add(fn, dt, dt, held);
            pthread_mutex_unlock(&pool.run_lock);
        }
        return;
    }
    while (pool.nworkers < p - 1) {
        int id = pool.nworkers + 1;
        pool.start_job[id] = atomic_load(&pool.job);
        if (pthread_create(&pool.tids[id], NULL, worker_main, (void *)(intptr_t)id) != 0) break;
        pool.nworkers++;
    }
    /* close the last loop's claim before touching the parameters: a worker still in work()
     * for that loop may have read its claim (generation, next task >= its task count) and
     * then read this loop's larger ntasks; its CAS on the old claim must fail, and a claim
     * read from now on shows no task left (threadpool_stress_driver.c) */
    const unsigned last = atomic_load(&pool.job);
    atomic_store(&pool.claim, (uint64_t)last << 32 | CLAIM_CLOSED);
    pool.fn = fn;
    pool.ctx = ctx;
    /* release: a worker that reads this count (acquire) then sees the closed claim */
    atomic_store_explicit(&pool.ntasks, ntasks, memory_order_release);
    atomic_store_explicit(&pool.grain, grain, memory_order_relaxed);
    /* workers 1..p-1 take part; the caller is thread 0 */
    atomic_store_explicit(&pool.nthreads, p, memory_order_relaxed);
    atomic_store(&pool.finished, 0);
    atomic_store_explicit(&busy_ns, 0, memory_order_relaxed);
    unsigned gen = last + 1;
    owned = owned && ntasks <= OWNED_MAX_TASKS;
    if (owned) /* range i: whole grains i * chunks / p .. (i + 1) * chunks / p */
        for (int i = 0; i < p; i++) {
            const int b = (int)((int64_t)i * chunks / p) * grain;
            const int e = i == p - 1 ? ntasks : (int)((int64_t)(i + 1) * chunks / p) * grain;
            atomic_store_explicit(&ranges[i].r, range_word(gen, b, e), memory_order_relaxed);
        }
    atomic_store_explicit(&pool.owned, owned, memory_order_relaxed);
    atomic_store(&pool.claim, (uint64_t)gen << 32);
    atomic_store(&pool.job, gen);
    if (atomic_load(&pool.sleepers)) {
        pthread_mutex_lock(&pool.wake_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.wake_lock);
    }
    in_pool = 1; /* the caller's chunks must not re-enter the pool */
    if (owned)
        work_owned(gen, 0);
    else
        work(gen);
    in_pool = 0;
    /* wait for chunks other threads claimed; yield so a descheduled worker can finish */
    for (int i = 1; atomic_load_explicit(&pool.finished, memory_order_acquire) < ntasks; i++) {
        if (i > 2000) sched_yield();
        else cpu_relax();
    }
    if (prof) profile_add(fn, now_ns() - t0, atomic_load(&busy_ns), held);
    pthread_mutex_unlock(&pool.run_lock);
}

void lutrt_parallel_for(int nthreads, int ntasks, int grain, lutrt_task_fn fn, void *ctx) {
    parallel_for(nthreads, ntasks, grain, fn, ctx, 0);
}

void lutrt_parallel_for_owned(int nthreads, int ntasks, int grain, lutrt_task_fn fn, void *ctx) {
    parallel_for(nthreads, ntasks, grain, fn, ctx, 1);
}

void lutrt_pool_profile(int on) {
    pthread_mutex_lock(&pool.run_lock);
    if (on) {
        memset(profile, 0, sizeof profile);
        nprofile = 0;
    }
    atomic_store(&profiling, on != 0);
    pthread_mutex_unlock(&pool.run_lock);
}

int lutrt_pool_profile_entry(int i, const void **fn, int64_t out[4]) {
    pthread_mutex_lock(&pool.run_lock);
    const int ok = i >= 0 && i < nprofile;
    if (ok) {
        *fn = profile[i].fn;
        for (int k = 0; k < 4; k++) out[k] = profile[i].v[k];
    }
    pthread_mutex_unlock(&pool.run_lock);
    return ok;
}

static pthread_mutex_t release_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*release_fns[8])(void);
static int nrelease;

void lutrt_pool_on_shutdown(void (*fn)(void)) {
    pthread_mutex_lock(&release_lock);
    int known = 0;
    for (int i = 0; i < nrelease; i++) known |= release_fns[i] == fn;
    if (!known && nrelease < 8) release_fns[nrelease++] = fn;
    pthread_mutex_unlock(&release_lock);
}

void lutrt_shutdown(void) {
    pthread_mutex_lock(&release_lock); /* the kernels' per-thread caches (e.g. Vec-LUT tables) */
    for (int i = 0; i < nrelease; i++) release_fns[i]();
    pthread_mutex_unlock(&release_lock);
    pthread_mutex_lock(&pool.run_lock);
    atomic_store(&pool.stop, 1);
    pthread_mutex_lock(&pool.wake_lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.wake_lock);
    for (int i = 1; i <= pool.nworkers; i++) pthread_join(pool.tids[i], NULL);
    pool.nworkers = 0;
    atomic_store(&pool.stop, 0);
    pthread_mutex_unlock(&pool.run_lock);
}
