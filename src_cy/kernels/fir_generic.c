/* Portable inner loops. Eight independent lanes of mul-then-add, which the
 * compiler turns into SIMD without -ffast-math because no sum is reordered. */
#include "fir_kernels.h"
#include "pf_codec.h"

static void fir_run(const float *restrict x, const float *restrict g, int len,
                    float *restrict y, size_t count, int accumulate)
{
    for (size_t t = 0; t < count; t += 8) {
        float acc[8];
        for (int l = 0; l < 8; l++) acc[l] = accumulate ? y[t + (size_t)l] : 0.0f;
        for (int k = 0; k < len; k++) {
            const float gk = g[k];
            for (int l = 0; l < 8; l++) acc[l] += gk * x[t + (size_t)k + (size_t)l];
        }
        for (int l = 0; l < 8; l++) y[t + (size_t)l] = acc[l];
    }
}

static void to_i16(const float *src, int16_t *dst, size_t n)
{
    pf_f32_to_i16_sat(src, dst, n, 1.0f);
}

const pf_fir_kernels pf_fir_generic = {"generic", fir_run, to_i16};
