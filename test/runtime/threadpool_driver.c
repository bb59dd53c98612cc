/* threadpool_driver.c — lutrt_parallel_for and lutrt_parallel_for_owned (threadpool.c: guided
 * and owner-first schedules) run every task of a loop exactly once, in chunks that start and
 * end on whole grains (except the last chunk), for 1-8 threads,
 * task counts 1-1000, grains 1-64 and task costs that are even, skewed (the first tasks 100x
 * the rest) or random; a loop called inside a task runs serially on that thread; the pool
 * restarts after lutrt_shutdown. Built with the runtime under -fsanitize=address,undefined
 * (test_threadpool.py). Exit status 1 on a failure; prints "cases N" on success. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lutrt.h"
#include "lutrt_internal.h"

#define MAX_TASKS 1000

typedef struct {
    atomic_int runs[MAX_TASKS];
    int ntasks, grain, cost; /* cost: 0 even, 1 skewed, 2 random */
    atomic_int bad_chunks, nested_bad;
    pthread_t by[MAX_TASKS]; /* the thread that ran each task */
    int gated;               /* other threads' chunks wait (<= 2 s) for the caller's first */
    pthread_t caller;
    atomic_int gate;
    int first_begin, first_end; /* the caller's first chunk */
} loop_t;

static _Thread_local volatile double sink; /* per thread: no data race (ThreadSanitizer) */

static void spin(int units) {
    double x = 0.0;
    for (int i = 0; i < units * 50; i++) x += (double)i * 1e-9;
    sink = x;
}

static void inner_task(void *ctx, int begin, int end) {
    atomic_int *count = (atomic_int *)ctx;
    atomic_fetch_add(count, end - begin);
}

static void task(void *ctx, int begin, int end) {
    loop_t *l = (loop_t *)ctx;
    const int on_caller = pthread_equal(pthread_self(), l->caller);
    if (l->gated && !on_caller)
        for (long i = 0; i < 2000000 && !atomic_load(&l->gate); i++) spin(1); /* ~2 s at most */
    /* a chunk starts on a grain boundary and holds whole grains unless it ends the loop */
    if (begin < 0 || end > l->ntasks || begin >= end || begin % l->grain != 0 ||
        (end != l->ntasks && (end - begin) % l->grain != 0))
        atomic_fetch_add(&l->bad_chunks, 1);
    for (int i = begin; i < end && i >= 0 && i < l->ntasks; i++) {
        atomic_fetch_add(&l->runs[i], 1);
        int units = l->cost == 1 ? (i < l->ntasks / 8 ? 100 : 1) : l->cost == 2 ? (i * 7919) % 13 : 1;
        spin(units);
    }
    for (int i = begin; i < end && i >= 0 && i < l->ntasks; i++) l->by[i] = pthread_self();
    if (begin % 97 == 0) { /* a nested loop: runs serially, on this thread, completely */
        atomic_int count = 0;
        lutrt_parallel_for(0, 5, 1, inner_task, &count);
        if (atomic_load(&count) != 5) atomic_fetch_add(&l->nested_bad, 1);
    }
    if (on_caller && !atomic_load(&l->gate)) { /* the caller's first chunk */
        l->first_begin = begin;
        l->first_end = end;
        atomic_store(&l->gate, 1);
    }
}

static loop_t l;

static int run_case(int threads, int ntasks, int grain, int cost, int owned) {
    for (int i = 0; i < MAX_TASKS; i++) atomic_store(&l.runs[i], 0);
    l.caller = pthread_self();
    atomic_store(&l.gate, 0);
    l.ntasks = ntasks;
    l.grain = grain;
    l.cost = cost;
    atomic_store(&l.bad_chunks, 0);
    atomic_store(&l.nested_bad, 0);
    (owned ? lutrt_parallel_for_owned : lutrt_parallel_for)(threads, ntasks, grain, task, &l);
    for (int i = 0; i < ntasks; i++)
        if (atomic_load(&l.runs[i]) != 1) {
            printf("%s threads %d ntasks %d grain %d cost %d: task %d ran %d times\n",
                   owned ? "owned" : "guided", threads, ntasks, grain, cost, i,
                   atomic_load(&l.runs[i]));
            return 0;
        }
    if (atomic_load(&l.bad_chunks) || atomic_load(&l.nested_bad)) {
        printf("%s threads %d ntasks %d grain %d cost %d: %d chunks off the grain, %d nested "
               "loops incomplete\n", owned ? "owned" : "guided", threads, ntasks, grain, cost,
               atomic_load(&l.bad_chunks), atomic_load(&l.nested_bad));
        return 0;
    }
    return 1;
}

/* Owner-first: the caller's first claim is the front 3/4 of its own range 0 (1000 tasks over 4
 * threads: tasks 0..187), all run on it; the other threads' chunks wait until it is done, so
 * none can steal from it first (a descheduled caller would otherwise lose its range's back). */
static int owner_first_case(void) {
    l.gated = 1;
    const int ok = run_case(4, 1000, 1, 0, 1);
    l.gated = 0;
    if (!ok) return 0;
    if (l.first_begin != 0 || l.first_end != 188) {
        printf("owned: the caller's first chunk was %d..%d, not 0..188\n", l.first_begin, l.first_end);
        return 0;
    }
    for (int i = 0; i < 188; i++)
        if (!pthread_equal(l.by[i], pthread_self())) {
            printf("owned: task %d of the caller's range ran on another thread\n", i);
            return 0;
        }
    return 1;
}

int main(void) {
    static const int task_counts[] = {1, 2, 3, 7, 16, 61, 128, 333, 1000};
    static const int grains[] = {1, 3, 8, 64};
    int cases = 0;
    for (int round = 0; round < 2; round++) {
        lutrt_pool_profile(round == 1); /* the second round runs under the loop profile */
        for (int threads = 1; threads <= 8; threads++)
            for (size_t a = 0; a < sizeof task_counts / sizeof *task_counts; a++)
                for (size_t b = 0; b < sizeof grains / sizeof *grains; b++)
                    for (int cost = 0; cost < 3; cost++)
                        for (int owned = 0; owned < 2; owned++) {
                            if (!run_case(threads, task_counts[a], grains[b], cost, owned)) return 1;
                            cases++;
                        }
        lutrt_shutdown(); /* the next round starts the workers again */
    }
    lutrt_pool_profile(0);
    if (!owner_first_case()) return 1;
    const void *fn = NULL;
    int64_t v[4];
    long loops = 0;
    for (int i = 0; lutrt_pool_profile_entry(i, &fn, v); i++) {
        if ((fn != (const void *)task && fn != (const void *)inner_task) || v[1] < 0 || v[2] < 0 ||
            v[3] < v[1]) {
            printf("profile entry %d: not a task function, or negative / inconsistent times\n", i);
            return 1;
        }
        if (fn == (const void *)task) loops += v[0];
    }
    /* one loop of `task` per case of the second round (its nested loops: inner_task's entry
     * when the outer loop ran on the caller alone, none when nested in a pool chunk) */
    if (loops != cases / 2) {
        printf("profile: %ld loops recorded, %d run\n", loops, cases / 2);
        return 1;
    }
    printf("cases %d\n", cases);
    return 0;
}
