/* dispatch.c — picks the lut.mma / lut.precompute kernels for this CPU: the best supported
 * ISA (AVX-512BW > AVX2+FMA > portable C), unless LUTRT_KERNEL=ref|avx2|avx512|avx512vbmi or
 * lutrt_set_kernel() forces one. "avx512vbmi" (vpermb + vpdpbusd) is only ever selected
 * explicitly, never by default. It also decides from how many tokens lut.mma runs the
 * int8-activation kernel (lutrt_i8act_min_m; off once a kernel is forced). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "lutrt_internal.h"

/* f32 tables (the lossless path): vpermps kernels (lmma_f32_avx2.c, lmma_f32_avx512.c). */
static const lutrt_kernel kernels[] = {
    {"ref", lutrt_mma_i8_ref, lutrt_mma_f32_ref, lutrt_precompute_row_ref},
#ifdef LUTRT_X86
    {"avx2", lutrt_mma_i8_avx2, lutrt_mma_f32_avx2, lutrt_precompute_row_avx2},
    /* mma_i8 filled in from lutrt_mma_i8_avx512_ptr (NULL when not compiled with AVX-512BW) */
    {"avx512", NULL, lutrt_mma_f32_avx2, lutrt_precompute_row_avx2},
    /* mma_i8 from lutrt_mma_i8_avx512vbmi_ptr (NULL without AVX-512 VBMI + VNNI) */
    {"avx512vbmi", NULL, lutrt_mma_f32_avx2, lutrt_precompute_row_avx2},
#endif
};
enum { NKERNELS = sizeof kernels / sizeof kernels[0] };

static lutrt_kernel avx512_kernel, avx512vbmi_kernel;
static _Atomic(const lutrt_kernel *) current;
/* 1 when LUTRT_KERNEL or lutrt_set_kernel(name) named the kernel: then lut.mma runs that LUT
 * kernel at every M (the int8-activation path stays off unless its threshold is set). */
static atomic_int forced = -1;

static void build_kernels(void);
static pthread_once_t kernels_built = PTHREAD_ONCE_INIT;

/* The kernel of this name, NULL when unknown or not compiled. The composed entries
 * (avx512_kernel, ...) are built once (build_kernels) and never written again: threads read
 * them through `current` while others ask for kernels (a struct rebuilt on every lookup had
 * ThreadSanitizer report its fields written while a running loop read them). */
static const lutrt_kernel *find(const char *name) {
    pthread_once(&kernels_built, build_kernels);
    for (int i = 0; i < NKERNELS; i++) {
        if (strcmp(kernels[i].name, name)) continue;
#ifdef LUTRT_X86
        if (!strcmp(name, "avx512")) return lutrt_mma_i8_avx512_ptr ? &avx512_kernel : NULL;
        if (!strcmp(name, "avx512vbmi")) return lutrt_mma_i8_avx512vbmi_ptr ? &avx512vbmi_kernel : NULL;
#endif
        return &kernels[i];
    }
    return NULL;
}

static int cpu_supports(const char *name) {
    if (!strcmp(name, "ref")) return 1;
#ifdef LUTRT_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (!strcmp(name, "avx2")) return avx2;
    if (!strcmp(name, "avx512"))
        return avx2 && (lutrt_avx512_emulated ||
                        (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")));
    if (!strcmp(name, "avx512vbmi"))
        return avx2 && (lutrt_avx512vbmi_emulated ||
                        (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vbmi") &&
                         __builtin_cpu_supports("avx512vnni")));
#endif
    return 0;
}

int lutrt_kernel_available(const char *name) {
    return name && find(name) != NULL && cpu_supports(name);
}

/* The automatic "avx512" kernel on CPUs with AVX-512 VBMI + VNNI: per-table int8 tables of 1, 4
 * and 8 bits run lmma_avx512vbmi.c's per-table tiles (vpdpbusd takes the table multipliers for
 * free), everything else the avx512 kernel, whose VNNI build multiplies 2-bit lookups by the
 * table multipliers with vpdpbusd too. GEMV per-table / scale-group-32 time, N = K = 4096,
 * 1 thread (bench/bench_table_scales.py and A/B runs, 2026-12-02), VBMI tiles vs avx512 tiles:
 *   AMD Zen 4:     1 bit 0.84-0.93 vs 1.12-1.32; 2 bits 1.24-1.26 vs 1.11; 4 bits 1.08-1.11
 *                  vs 1.13; 8 bits 0.94-1.03 vs 1.08-1.18.
 *   Intel Xeon (Sapphire Rapids-class, 16 cores): 1 bit 0.85 vs 1.11; 4 bits 1.02-1.06 vs 1.08;
 *                  8 bits 1.00-1.04 vs 1.05.
 * Forcing "avx512" (LUTRT_KERNEL, lutrt_set_kernel) runs lmma_avx512.c alone. */
static lutrt_kernel avx512_auto_kernel;
static lutrt_mma_fn avx512_mma_i8;

static void avx512_auto_mma_i8(const lutrt_mma_args *a, int b0, int b1) {
    if (a->bits != 2 && lutrt_pt_vbmi_applies(a))
        lutrt_mma_i8_pt_vbmi_ptr(a, b0, b1);
    else
        avx512_mma_i8(a, b0, b1);
}

/* The composed kernels, once per process (pthread_once in find). */
static void build_kernels(void) {
#ifdef LUTRT_X86
    for (int i = 0; i < NKERNELS; i++) {
        if (!strcmp(kernels[i].name, "avx512") && lutrt_mma_i8_avx512_ptr) {
            avx512_kernel = kernels[i];
            avx512_kernel.mma_i8 = lutrt_mma_i8_avx512_ptr;
            avx512_kernel.table_multipliers = 1;
            __builtin_cpu_init();
            if (lutrt_mma_i8_avx512vnni_ptr && __builtin_cpu_supports("avx512vnni"))
                avx512_kernel.mma_i8 = lutrt_mma_i8_avx512vnni_ptr;
            if (lutrt_mma_f32_avx512_ptr) avx512_kernel.mma_f32 = lutrt_mma_f32_avx512_ptr;
            if (lutrt_precompute_row_avx512_ptr) avx512_kernel.precompute_row = lutrt_precompute_row_avx512_ptr;
            avx512_auto_kernel = avx512_kernel;
            avx512_mma_i8 = avx512_kernel.mma_i8;
            avx512_auto_kernel.mma_i8 = avx512_auto_mma_i8;
        }
        if (!strcmp(kernels[i].name, "avx512vbmi") && lutrt_mma_i8_avx512vbmi_ptr) {
            avx512vbmi_kernel = kernels[i];
            avx512vbmi_kernel.mma_i8 = lutrt_mma_i8_avx512vbmi_ptr;
            avx512vbmi_kernel.table_multipliers = 1;
            if (lutrt_mma_f32_avx512_ptr) avx512vbmi_kernel.mma_f32 = lutrt_mma_f32_avx512_ptr;
            if (lutrt_precompute_row_avx512_ptr)
                avx512vbmi_kernel.precompute_row = lutrt_precompute_row_avx512_ptr;
        }
    }
#endif
}

static const lutrt_kernel *best(void) {
    /* "avx512vbmi" is deliberately not in the automatic order */
    static const char *order[] = {"avx512", "avx2", "ref"};
    for (int i = 0; i < 3; i++) {
        if (!lutrt_kernel_available(order[i])) continue;
        const lutrt_kernel *k = find(order[i]);
#ifdef LUTRT_X86
        if (i == 0 && lutrt_mma_i8_pt_vbmi_ptr && !lutrt_avx512vbmi_emulated &&
            lutrt_kernel_available("avx512vbmi"))
            return &avx512_auto_kernel; /* built with the others (build_kernels) */
#endif
        return k;
    }
    return &kernels[0];
}

static const lutrt_kernel *from_env(void) {
    const char *env = getenv("LUTRT_KERNEL");
    /* `forced` is stored once, its final value: threads resolving the kernel together (the
     * first calls of a parallel loop) must not show each other a passing 0 */
    const int named = env && *env && strcmp(env, "auto");
    atomic_store(&forced, named);
    if (!named) return best();
    if (lutrt_kernel_available(env)) return find(env);
    fprintf(stderr, "lutrt: LUTRT_KERNEL=%s is not available on this build/CPU; using %s\n", env,
            best()->name);
    return best();
}

const lutrt_kernel *lutrt_current_kernel(void) {
    const lutrt_kernel *k = atomic_load(&current);
    if (!k) {
        k = from_env();
        atomic_store(&current, k);
    }
    return k;
}

int lutrt_set_kernel(const char *name) {
    if (!name || !strcmp(name, "auto")) {
        atomic_store(&current, from_env());
        return LUTRT_OK;
    }
    if (!find(name)) return lutrt_fail("lutrt: unknown or not compiled kernel '%s'", name);
    if (!cpu_supports(name)) return lutrt_fail("lutrt: this CPU cannot run kernel '%s'", name);
    atomic_store(&current, find(name));
    atomic_store(&forced, 1);
    return LUTRT_OK;
}

/* A large-M path's threshold as overridden: the lutrt_set_*_min_m value if set, else the
 * environment variable if set (0 disables), else 0 when a kernel was forced; -1: the default
 * applies. */
static int threshold_override(atomic_int *set_by_api, const char *env_name) {
    const int set = atomic_load(set_by_api);
    if (set >= 0) return set;
    const char *env = getenv(env_name);
    if (env && *env) return atoi(env) > 0 ? atoi(env) : 0;
    lutrt_current_kernel(); /* resolves `forced` */
    return atomic_load(&forced) == 1 ? 0 : -1;
}

/* ---- the int8-activation path's threshold (lutrt.h) ---------------------------------------- */
static atomic_int i8act_set = -1; /* lutrt_set_i8act_min_m; -1: not set */

void lutrt_set_i8act_min_m(int m) { atomic_store(&i8act_set, m < 0 ? -1 : m); }

/* The int8-activation kernel this CPU runs: AMX-INT8 (mma_i8act_avx512amx.c: the VNNI kernel
 * with 16-row AMX tiles) where the CPU and the OS allow it, else AVX512-VNNI
 * (mma_i8act_avx512vnni.c), else AVX2 (mma_i8act_avx2.c); lutrt_set_i8act_kernel picks one
 * explicitly (also the portable C one, mma_i8act_c.c, which auto never picks for bit planes:
 * the LUT kernels beat it). */
static atomic_int i8act_choice = 0; /* 0 auto, 1 avx512vnni, 2 avx2, 3 portable C, 4 amx */

static int cpu_has_vnni(void) {
#ifdef LUTRT_X86
    __builtin_cpu_init();
    return lutrt_mma_i8act_ptr && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

/* AMX-INT8 usable: compiled, the CPU has it, and Linux granted this process the tile state
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), asked once; Linux 5.16+). */
static int cpu_has_amx(void) {
#if defined(LUTRT_X86) && defined(__linux__)
    static atomic_int has = -1;
    int h = atomic_load(&has);
    if (h < 0) {
        __builtin_cpu_init();
        unsigned eax, ebx, ecx, edx; /* CPUID.(7,0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8 (read
                                        here: older compilers' __builtin_cpu_supports lacks them) */
        h = lutrt_mma_i8act_amx_ptr && cpu_has_vnni() &&
            __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx >> 24 & 1) && (edx >> 25 & 1) &&
            syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
        atomic_store(&has, h);
    }
    return h;
#else
    return 0;
#endif
}

int lutrt_cpu_has_avx2(void) {
#ifdef LUTRT_X86
    static atomic_int has = -1;
    int h = atomic_load(&has);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        atomic_store(&has, h);
    }
    return h;
#else
    return 0;
#endif
}

static int cpu_has_avx2(void) {
#ifdef LUTRT_X86
    __builtin_cpu_init();
    return lutrt_mma_i8act_avx2_ptr && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* i8act_choice's code of a kernel name, -1 for an unknown one */
static int i8act_code(const char *name) {
    return !strcmp(name, "avx512vnni") ? 1 : !strcmp(name, "avx2") ? 2 : !strcmp(name, "c") ? 3
         : !strcmp(name, "amx") ? 4 : -1;
}

/* whether this CPU (and build) runs the kernel of code c (1..4) */
static int i8act_runnable(int c) {
    return c == 3 || (c == 1 ? cpu_has_vnni() : c == 2 ? cpu_has_avx2() : cpu_has_amx());
}

/* lutrt_set_i8act_kernel's choice, else $LUTRT_I8ACT_KERNEL's (read once; a name this CPU
 * cannot run is reported on stderr once and ignored), else 0 (auto). */
static int i8act_choice_in_force(void) {
    const int c = atomic_load(&i8act_choice);
    if (c) return c;
    static atomic_int from_env = -1;
    int e = atomic_load(&from_env);
    if (e < 0) {
        const char *env = getenv("LUTRT_I8ACT_KERNEL");
        e = 0;
        if (env && *env && strcmp(env, "auto")) {
            e = i8act_code(env);
            if (e < 0 || !i8act_runnable(e)) e = 0;
            if (!e)
                fprintf(stderr, "lutrt: LUTRT_I8ACT_KERNEL=%s is not available here "
                                "(amx, avx512vnni, avx2, c, auto); using auto\n", env);
        }
        atomic_store(&from_env, e);
    }
    return e;
}

lutrt_mma_call_fn lutrt_i8act_kernel(void) {
    const int c = i8act_choice_in_force();
    if (c == 3) return lutrt_mma_i8act_c;
#ifdef LUTRT_X86
    if (c == 4 || (c == 0 && cpu_has_amx())) return cpu_has_amx() ? lutrt_mma_i8act_amx_ptr : 0;
    if (c == 1 || (c == 0 && cpu_has_vnni())) return cpu_has_vnni() ? lutrt_mma_i8act_ptr : 0;
    /* auto: the AVX2 kernel only where the LUT kernels are AVX2 too; it loses to the AVX-512
     * LUT kernel (measured on a 16-core Xeon, N=K=4096 w4 128 tokens: 99.8 vs 60.1 ms) */
    if (c == 0 && __builtin_cpu_supports("avx512bw") && lutrt_mma_i8_avx512_ptr) return 0;
    return cpu_has_avx2() ? lutrt_mma_i8act_avx2_ptr : 0;
#else
    return 0;
#endif
}

int lutrt_set_i8act_kernel(const char *name) {
    if (!name || !strcmp(name, "auto")) {
        atomic_store(&i8act_choice, 0);
        return LUTRT_OK;
    }
    const int c = i8act_code(name);
    if (c < 0) return lutrt_fail("lutrt: unknown int8-activation kernel '%s'", name);
    if (!i8act_runnable(c))
        return lutrt_fail("lutrt: this CPU cannot run int8-activation kernel '%s'", name);
    atomic_store(&i8act_choice, c);
    return LUTRT_OK;
}

static const char *i8act_name(lutrt_mma_call_fn f) {
    if (!f) return "none";
    if (f == lutrt_mma_i8act_c) return "c";
#ifdef LUTRT_X86
    if (f == lutrt_mma_i8act_ptr) return "avx512vnni";
    if (f == lutrt_mma_i8act_amx_ptr) return "amx";
#endif
    return "avx2";
}

const char *lutrt_i8act_kernel_name(void) { return i8act_name(lutrt_i8act_kernel()); }

/* Code bytes always run the int8-activation formula: the chosen kernel, else the fastest this
 * CPU runs (AMX, VNNI, then AVX2: with no unpacking the AVX2 kernel is not behind the LUT
 * kernels here), else portable C. */
lutrt_mma_call_fn lutrt_code_bytes_kernel(void) {
#ifdef LUTRT_X86
    const int c = i8act_choice_in_force();
    if ((c == 0 || c == 4) && cpu_has_amx()) return lutrt_mma_i8act_amx_ptr;
    if ((c == 0 || c == 1) && cpu_has_vnni()) return lutrt_mma_i8act_ptr;
    if ((c == 0 || c == 2) && cpu_has_avx2()) return lutrt_mma_i8act_avx2_ptr;
#endif
    return lutrt_mma_i8act_c;
}

const char *lutrt_code_bytes_kernel_name(void) { return i8act_name(lutrt_code_bytes_kernel()); }

/* The A operand's bytes (hi and lo bytes of M token rows over K) from which a task of the
 * AVX512-VNNI / AMX int8-activation kernels runs several weight blocks together (run_group in
 * mma_i8act_avx512vnni.c): A no longer fits L2 (2 MiB a core on the AMX Xeons), so one pass
 * over A per weight block streams it from L3 each time. Interleaved A/B on the 2-core AMX VM,
 * 2026-12-08, the 492M Llama-shaped model (8 layers, hidden 2048), whole prefill, medians: 512
 * tokens on AMX, ternary 1180 -> 1017-1074 ms on 1 thread, 573-618 -> 496-499 on 2; w2g64
 * 1516-1562 -> 1280-1325 and 750-829 -> 635-662. Where A fits L2 it was no faster or slower:
 * that model at 128 tokens with a 1 MiB threshold (only K = 5632 grouped): +-3%, mixed;
 * SmolLM2 at 16-512 tokens with groups forced on: 2-15% slower (four unpacked blocks no longer
 * stay in L1). */
#ifndef LUTRT_I8ACT_GROUP_MIN_A_BYTES /* (overridden only by tests, to group small shapes) */
#define LUTRT_I8ACT_GROUP_MIN_A_BYTES ((size_t)2 << 20)
#endif

int lutrt_i8act_blocks_per_task(int m, int k, int n, int threads) {
    if (m < 1 || k < 1 || (size_t)m * (size_t)k * 2 < LUTRT_I8ACT_GROUP_MIN_A_BYTES) return 1;
    const int nb = (n + LUTRT_BLOCK_N - 1) / LUTRT_BLOCK_N;
    const int g = nb / (2 * (threads > 1 ? threads : 1));
    return g < 1 ? 1 : g > LUTRT_I8ACT_GROUP_MAX ? LUTRT_I8ACT_GROUP_MAX : g;
}

int lutrt_i8act_min_m(int bits) {
    const lutrt_mma_call_fn f = lutrt_i8act_kernel();
    if (!f) return 0;
    const int over = threshold_override(&i8act_set, "LUTRT_I8ACT_MIN_M");
    if (over >= 0) return over;
    if (strcmp(lutrt_i8act_kernel_name(), "avx2") == 0)
        return bits <= LUTRT_I8ACT_AVX2_BYTES_MAX_BITS ? LUTRT_I8ACT_MIN_M_AVX2_NARROW
                                                       : LUTRT_I8ACT_MIN_M_AVX2;
    return bits <= 2 ? LUTRT_I8ACT_MIN_M_NARROW : LUTRT_I8ACT_MIN_M;
}

/* ---- one-pass activation groups (lutrt.h: off unless set) ---------------------------------- */
static atomic_int one_pass_set = -1; /* lutrt_set_one_pass_max_bits; -1: not set */

void lutrt_set_one_pass_max_bits(int bits) {
    atomic_store(&one_pass_set, bits < 0 ? -1 : bits > LUTRT_ONE_PASS_MAX_BITS ? LUTRT_ONE_PASS_MAX_BITS : bits);
}

int lutrt_one_pass_max_bits(void) {
    const int set = atomic_load(&one_pass_set);
    if (set >= 0) return set;
    const char *env = getenv("LUTRT_ONE_PASS_MAX_BITS");
    const int b = env && *env ? atoi(env) : 0;
    return b < 0 ? 0 : b > LUTRT_ONE_PASS_MAX_BITS ? LUTRT_ONE_PASS_MAX_BITS : b;
}

/* ---- the lossless mode's large-M f32 path (lutrt.h) ---------------------------------------- */
static atomic_int f32dq_set = -1; /* lutrt_set_f32dq_min_m; -1: not set */

void lutrt_set_f32dq_min_m(int m) { atomic_store(&f32dq_set, m < 0 ? -1 : m); }

/* The f32-dequantize kernel: AVX-512 (mma_f32dq_avx512.c) where the CPU has AVX-512BW, else
 * AVX2 (mma_f32dq_avx2.c; both give bit-identical outputs); lutrt_set_f32dq_kernel picks one. */
static atomic_int f32dq_choice = 0; /* 0 auto, 1 avx512, 2 avx2 */

static int cpu_runs_f32dq(int c) {
#ifdef LUTRT_X86
    __builtin_cpu_init();
    if (c == 1)
        return lutrt_mma_f32dq_ptr && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return lutrt_mma_f32dq_avx2_ptr && lutrt_cpu_has_avx2();
#else
    (void)c;
    return 0;
#endif
}

lutrt_mma_call_fn lutrt_f32dq_kernel(void) {
    const int c = atomic_load(&f32dq_choice);
    if ((c == 0 || c == 1) && cpu_runs_f32dq(1)) return lutrt_mma_f32dq_ptr;
    if ((c == 0 || c == 2) && cpu_runs_f32dq(2)) return lutrt_mma_f32dq_avx2_ptr;
    return 0;
}

int lutrt_set_f32dq_kernel(const char *name) {
    if (!name || !strcmp(name, "auto")) {
        atomic_store(&f32dq_choice, 0);
        return LUTRT_OK;
    }
    const int c = !strcmp(name, "avx512") ? 1 : !strcmp(name, "avx2") ? 2 : -1;
    if (c < 0) return lutrt_fail("lutrt: unknown f32-dequantize kernel '%s'", name);
    if (!cpu_runs_f32dq(c)) return lutrt_fail("lutrt: this CPU cannot run f32-dequantize kernel '%s'", name);
    atomic_store(&f32dq_choice, c);
    return LUTRT_OK;
}

const char *lutrt_f32dq_kernel_name(void) {
    const lutrt_mma_call_fn f = lutrt_f32dq_kernel();
    return !f ? "none" : f == lutrt_mma_f32dq_ptr ? "avx512" : "avx2";
}

int lutrt_f32dq_min_m(int bits) {
    if (!lutrt_f32dq_kernel()) return 0;
    const int over = threshold_override(&f32dq_set, "LUTRT_F32DQ_MIN_M");
    if (over >= 0) return over;
    return bits > 4 ? LUTRT_F32DQ_MIN_M_WIDE : bits <= 2 ? LUTRT_F32DQ_MIN_M_NARROW : LUTRT_F32DQ_MIN_M;
}

/* ---- the lossless mode's GEMV (lutrt.h) ---------------------------------------------- */
static atomic_int f32gemv_set = -1; /* lutrt_set_f32_gemv; -1: not set */

void lutrt_set_f32_gemv(int on) { atomic_store(&f32gemv_set, on < 0 ? -1 : on > 0); }

int lutrt_f32_gemv_mode(void) {
#ifdef LUTRT_X86
    if (!lutrt_mma_f32_gemv_ptr || !cpu_has_vnni() || !__builtin_cpu_supports("avx512vbmi")) return 0;
    const int over = threshold_override(&f32gemv_set, "LUTRT_F32_GEMV");
    if (over >= 0) return over > 0;
    /* automatic only where the f32-table kernel is the AVX-512 one */
    return lutrt_mma_f32_avx512_ptr && lutrt_current_kernel()->mma_f32 == lutrt_mma_f32_avx512_ptr ? -1 : 0;
#else
    return 0;
#endif
}

int lutrt_f32_gemv_enabled(void) { return lutrt_f32_gemv_mode() != 0; }

const char *lutrt_kernel_name(void) { return lutrt_current_kernel()->name; }
