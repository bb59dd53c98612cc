/* lmma_avx512vnni.c — lmma_avx512.c compiled with -mavx512vnni (build.py), so that its
 * per-table-scale tiles multiply-accumulate int16 lookup sums with one vpdpwssd instead of
 * vpmaddwd + vpaddd. dispatch.c gives the "avx512" kernel this build on CPUs with AVX512-VNNI;
 * the results are bit-identical (the same integer sums, the same float order). Compiled to
 * nothing (a NULL pointer) without VNNI and under SIMDe emulation. */
#define LUTRT_LMMA_AVX512_VNNI 1
#include "lmma_avx512.c"
