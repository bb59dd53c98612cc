/* threadpool_stress_driver.c — back-to-back lutrt_parallel_for loops whose task counts
 * alternate small and large (2 and 64 tasks of almost no work, 2-4 threads): a worker that
 * has run out of the small loop's tasks re-reads the claim while the caller is publishing the
 * large loop. Every task of every loop must run exactly once, and none after its loop
 * returned (each loop's context is marked closed on return). Before threadpool.c closed a
 * loop's claim before writing the next loop's parameters, a worker could pair the old claim
 * with the new task count, take tasks of the new loop under the old generation and report
 * them done: the caller then returned while a worker still ran a task on its freed context
 * (seen as a hang and a SIGSEGV in lutrt_attention_kv's decode loops). Usage:
 * threadpool_stress_driver LOOPS; exit status 1 on a failure, prints "loops N" on success. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "lutrt.h"
#include "lutrt_internal.h"

#define LARGE 64
#define RING 8

typedef struct {
    atomic_int runs[LARGE];
    atomic_int closed;
} loop_ctx;

static atomic_int late_runs;

static void task(void *ctx, int begin, int end) {
    loop_ctx *c = (loop_ctx *)ctx;
    for (int i = begin; i < end; i++) {
        if (atomic_load(&c->closed)) atomic_fetch_add(&late_runs, 1);
        if (i >= 0 && i < LARGE) atomic_fetch_add(&c->runs[i], 1);
    }
}

int main(int argc, char **argv) {
    const long loops = argc > 1 ? atol(argv[1]) : 100000;
    static loop_ctx ring[RING];
    for (long it = 0; it < loops; it++) {
        loop_ctx *c = &ring[it % RING];
        const int n = it % 2 ? LARGE : 2, threads = 2 + (int)(it / 2 % 3);
        for (int i = 0; i < LARGE; i++) atomic_store(&c->runs[i], 0);
        atomic_store(&c->closed, 0);
        lutrt_parallel_for(threads, n, 1, task, c);
        atomic_store(&c->closed, 1);
        for (int i = 0; i < LARGE; i++)
            if (atomic_load(&c->runs[i]) != (i < n)) {
                printf("loop %ld (%d tasks, %d threads): task %d ran %d times by its return\n", it,
                       n, threads, i, atomic_load(&c->runs[i]));
                return 1;
            }
    }
    lutrt_shutdown();
    if (atomic_load(&late_runs)) {
        printf("%d tasks ran after their loop returned\n", atomic_load(&late_runs));
        return 1;
    }
    printf("loops %ld\n", loops);
    return 0;
}
