/* precompute_avx512.c — lut.precompute for one row with AVX-512F/BW: precompute_avx2.c compiled
 * again with LUTRT_PRECOMPUTE_AVX512 (the int8 activation section, which the prefill's
 * int8-activation kernel reads, 16 activations per step). Bit-identical to the AVX2 row and to
 * precompute.c's (test_kernels.py). NULL without -mavx512bw or under SIMDe emulation; dispatch.c
 * then keeps the AVX2 row in its AVX-512 kernels. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && !defined(LUTRT_AVX512_SIMDE)
#define LUTRT_PRECOMPUTE_AVX512 1
#include "precompute_avx2.c"

const lutrt_precompute_row_fn lutrt_precompute_row_avx512_ptr = lutrt_precompute_row_avx512;
#else
#include "lutrt_internal.h"

const lutrt_precompute_row_fn lutrt_precompute_row_avx512_ptr = 0;
#endif
