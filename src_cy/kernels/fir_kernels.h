/* Inner loops of the resampler, one set per instruction set. */
#ifndef PF_FIR_KERNELS_H
#define PF_FIR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    /* y[t] = (accumulate ? y[t] : 0) + sum_{k<len} g[k] * x[t + k], t in [0, count),
     * as one multiply-add chain per output in k order. Works 8 outputs at a
     * time: x must be readable to x[count + len + 7], y to y[count + 7]. */
    void (*fir_run)(const float *x, const float *g, int len, float *y, size_t count,
                    int accumulate);
    /* dst = src rounded half to even, saturated. src comes from filtering
     * int16 input, so it is finite and far inside the int32 range. */
    void (*to_i16)(const float *src, int16_t *dst, size_t n);
} pf_fir_kernels;

/* Plain C written so the compiler vectorises it without reassociating
 * (SSE2 on any x86-64, NEON on AArch64): 8 independent lanes, mul then add,
 * never fused (setup.py passes -ffp-contract=off). */
extern const pf_fir_kernels pf_fir_generic;
#if defined(__x86_64__) || defined(__i386__)
/* AVX2 + FMA intrinsics, for CPUs that have them. */
extern const pf_fir_kernels pf_fir_avx2;
#endif
#if defined(__aarch64__)
/* Advanced SIMD intrinsics, bit-exact with the portable loop. */
extern const pf_fir_kernels pf_fir_neon;
#endif

#endif
