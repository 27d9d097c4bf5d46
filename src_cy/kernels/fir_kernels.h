/* Inner loops of the resampler, one set per instruction set. */
#ifndef PF_FIR_KERNELS_H
#define PF_FIR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    /* y[t * ystride] = sum_{k<len} g[k] * x[t + k] for t in [0, count).
     * Outputs go 8 at a time: x must be readable to x[count + len + 7]. */
    void (*fir_run)(const float *x, const float *g, int len, float *y,
                    ptrdiff_t ystride, size_t count);
    /* General ratio: `count` outputs starting at newest-sample index `pos`
     * and phase `phase` of `bank` (up rows of row_len taps). */
    void (*poly_run)(const float *buf, const float *bank, int row_len, int up, int down,
                     size_t pos, int phase, size_t count, float *y, ptrdiff_t ystride);
    /* dst = src rounded half to even, saturated. src comes from filtering
     * int16 input, so it is finite and far inside the int32 range. */
    void (*to_i16)(const float *src, int16_t *dst, size_t n);
} pf_fir_kernels;

/* Plain C written so the compiler vectorises it without reassociating
 * (SSE2 on any x86-64): 8 independent lanes, mul then add. */
extern const pf_fir_kernels pf_fir_generic;
#if defined(__x86_64__) || defined(__i386__)
/* AVX2 + FMA intrinsics, for CPUs that have them. */
extern const pf_fir_kernels pf_fir_avx2;
#endif

#endif
