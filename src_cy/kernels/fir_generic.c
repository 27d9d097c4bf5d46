/* Portable inner loops. Eight independent lanes of mul-then-add, which the
 * compiler turns into SIMD without -ffast-math because no sum is reordered. */
#include "fir_kernels.h"
#include "pf_codec.h"

static void fir_run(const float *restrict x, const float *restrict g, int len,
                    float *restrict y, ptrdiff_t ystride, size_t count)
{
    for (size_t t = 0; t < count; t += 8) {
        float acc[8] = {0};
        for (int k = 0; k < len; k++) {
            const float gk = g[k];
            for (int l = 0; l < 8; l++) acc[l] += gk * x[t + (size_t)k + (size_t)l];
        }
        size_t n = count - t < 8 ? count - t : 8;
        for (size_t l = 0; l < n; l++) y[(ptrdiff_t)(t + l) * ystride] = acc[l];
    }
}

static float dot(const float *restrict x, const float *restrict g, int len)
{
    float acc[8] = {0};
    for (int k = 0; k < len; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += g[k + l] * x[k + l];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static void poly_run(const float *buf, const float *bank, int row_len, int up, int down,
                     size_t pos, int phase, size_t count, float *y, ptrdiff_t ystride)
{
    for (size_t j = 0; j < count; j++) {
        y[(ptrdiff_t)j * ystride] = dot(buf + pos + 1 - (size_t)row_len,
                                        bank + (size_t)phase * (size_t)row_len, row_len);
        phase += down;
        pos += (size_t)(phase / up);
        phase %= up;
    }
}

static void to_i16(const float *src, int16_t *dst, size_t n)
{
    pf_f32_to_i16_sat(src, dst, n, 1.0f);
}

const pf_fir_kernels pf_fir_generic = {"generic", fir_run, poly_run, to_i16};
