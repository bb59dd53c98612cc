/* desc.c — validation of lutrt_mma_desc and the sizes derived from it. */
#include <stdarg.h>
#include <stdio.h>

#include "lutrt_internal.h"

static _Thread_local char last_error[256];

const char *lutrt_last_error(void) { return last_error; }

int lutrt_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return LUTRT_EINVAL;
}

static int cdiv(int a, int b) { return (a + b - 1) / b; }

int lutrt_check_desc(const lutrt_mma_desc *d, int for_mma) {
    if (!d) return lutrt_fail("lutrt: NULL descriptor");
    if (d->M < 1) return lutrt_fail("lutrt: M must be >= 1, got %d", d->M);
    if (d->K < 4 || d->K % 4) return lutrt_fail("lutrt: K must be a positive multiple of 4, got %d", d->K);
    if (d->group < 4 || d->group % 4)
        return lutrt_fail("lutrt: weight group must be a positive multiple of 4, got %d", d->group);
    if (d->mirrored != 0 && d->mirrored != 1) return lutrt_fail("lutrt: mirrored must be 0 or 1");
    if (d->table_i8 != 0 && d->table_i8 != 1) return lutrt_fail("lutrt: table_i8 must be 0 or 1");
    if (d->table_i8) {
        int sg = d->scale_group;
        /* <= 64 activations = 16 tables keeps the int16 lookup sums exact (see lmma_avx2.c) */
        if (sg < 4 || sg > 64 || sg % 4)
            return lutrt_fail("lutrt: scale_group must be a multiple of 4 in 4..64, got %d", sg);
        if (d->group % sg && lutrt_num_groups(d) > 1)
            return lutrt_fail("lutrt: scale_group %d must divide the weight group %d", sg, d->group);
    }
    if (d->consumer_bits < 0 || d->consumer_bits > LUTRT_MAX_BITS)
        return lutrt_fail("lutrt: consumer_bits must be 0..%d, got %d", LUTRT_MAX_BITS,
                          d->consumer_bits);
    if (d->layout != LUTRT_LAYOUT_BIT_PLANES && d->layout != LUTRT_LAYOUT_CODE_BYTES)
        return lutrt_fail("lutrt: layout must be 0 (bit planes) or 1 (code bytes), got %d", d->layout);
    if (for_mma) {
        if (d->N < 1) return lutrt_fail("lutrt: N must be >= 1, got %d", d->N);
        if (d->bits < 1 || d->bits > LUTRT_MAX_BITS)
            return lutrt_fail("lutrt: bits must be 1..%d, got %d", LUTRT_MAX_BITS, d->bits);
        if (d->num_threads < 0) return lutrt_fail("lutrt: num_threads must be >= 0");
        if (d->strategy < 0 || d->strategy > 2)
            return lutrt_fail("lutrt: strategy must be 0 (auto), 1 (per-token) or 2 (Vec-LUT), "
                              "got %d", d->strategy);
        if (d->tile_m < 0 || d->tile_n < 0 || d->tile_k < 0)
            return lutrt_fail("lutrt: tile sizes must be >= 0 (0: runtime decides)");
        if (d->layout == LUTRT_LAYOUT_CODE_BYTES && !d->table_i8)
            return lutrt_fail("lutrt: the code-byte layout needs int8 tables (table_i8 = 1)");
    }
    return LUTRT_OK;
}

int lutrt_num_tables(const lutrt_mma_desc *d) { return d->K / 4; }
int lutrt_num_groups(const lutrt_mma_desc *d) { return cdiv(d->K, d->group); }
int lutrt_num_scale_groups(const lutrt_mma_desc *d) {
    return d->table_i8 ? cdiv(d->K, d->scale_group) : 0;
}
int lutrt_num_act_groups(const lutrt_mma_desc *d) {
    return d->table_i8 ? cdiv(d->K, lutrt_act_group(d)) : 0;
}
int lutrt_num_blocks(const lutrt_mma_desc *d) { return cdiv(d->N, LUTRT_BLOCK_N); }

size_t lutrt_table_row_bytes(const lutrt_mma_desc *d) {
    size_t entries = d->mirrored ? 8 : 16;
    size_t bytes = (size_t)(d->K / 4) * entries * (d->table_i8 ? 1 : sizeof(float));
    /* int8 tables: + the row's two-pass int8 activations hi[K], lo[K] and, per activation
     * group, f32 ascale, shi, slo sized for the finest group (J of each; lutrt.h) */
    if (d->table_i8) bytes += 2u * (size_t)d->K + 3u * sizeof(float) * (size_t)(d->K / 4);
    return bytes;
}

size_t lutrt_packed_weight_bytes(const lutrt_mma_desc *d) {
    const size_t chunk = d->layout == LUTRT_LAYOUT_CODE_BYTES ? 128u : 16u * (size_t)d->bits;
    return (size_t)lutrt_num_blocks(d) * (size_t)(d->K / 4) * chunk;
}

size_t lutrt_packed_scale_count(const lutrt_mma_desc *d) {
    return (size_t)lutrt_num_blocks(d) * (size_t)lutrt_num_groups(d) * LUTRT_BLOCK_N;
}
