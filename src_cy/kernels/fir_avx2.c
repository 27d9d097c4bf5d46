/* AVX2 + FMA inner loops, compiled for those instructions through target
 * attributes and only called when the CPU reports both (see fir.c). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "fir_kernels.h"

#define TARGET __attribute__((target("avx2,fma")))

TARGET static inline void store8(float *y, ptrdiff_t ystride, size_t n, __m256 v)
{
    if (ystride == 1 && n == 8) {
        _mm256_storeu_ps(y, v);
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    for (size_t l = 0; l < n; l++) y[(ptrdiff_t)l * ystride] = lanes[l];
}

/* Each output lane is one fused multiply-add chain over k in order, whichever
 * block it falls in, so outputs never depend on how the input was split. Four
 * vectors at a time keep four chains in flight to hide the FMA latency. */
TARGET static void fir_run(const float *x, const float *g, int len, float *y,
                           ptrdiff_t ystride, size_t count)
{
    size_t t = 0;
    for (; t + 32 <= count; t += 32) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *xt = x + t;
        for (int k = 0; k < len; k++) {
            __m256 gk = _mm256_broadcast_ss(g + k);
            a0 = _mm256_fmadd_ps(gk, _mm256_loadu_ps(xt + k), a0);
            a1 = _mm256_fmadd_ps(gk, _mm256_loadu_ps(xt + k + 8), a1);
            a2 = _mm256_fmadd_ps(gk, _mm256_loadu_ps(xt + k + 16), a2);
            a3 = _mm256_fmadd_ps(gk, _mm256_loadu_ps(xt + k + 24), a3);
        }
        float *yt = y + (ptrdiff_t)t * ystride;
        store8(yt, ystride, 8, a0);
        store8(yt + 8 * ystride, ystride, 8, a1);
        store8(yt + 16 * ystride, ystride, 8, a2);
        store8(yt + 24 * ystride, ystride, 8, a3);
    }
    for (; t < count; t += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (int k = 0; k < len; k++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(g + k), _mm256_loadu_ps(x + t + k), a0);
        store8(y + (ptrdiff_t)t * ystride, ystride, count - t < 8 ? count - t : 8, a0);
    }
}

TARGET static inline float dot(const float *x, const float *g, int len)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 32 <= len; k += 32) {
        a0 = _mm256_fmadd_ps(_mm256_load_ps(g + k), _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_load_ps(g + k + 8), _mm256_loadu_ps(x + k + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_load_ps(g + k + 16), _mm256_loadu_ps(x + k + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_load_ps(g + k + 24), _mm256_loadu_ps(x + k + 24), a3);
    }
    if (k + 8 <= len) { a0 = _mm256_fmadd_ps(_mm256_load_ps(g + k), _mm256_loadu_ps(x + k), a0); k += 8; }
    if (k + 8 <= len) { a1 = _mm256_fmadd_ps(_mm256_load_ps(g + k), _mm256_loadu_ps(x + k), a1); k += 8; }
    if (k + 8 <= len) { a2 = _mm256_fmadd_ps(_mm256_load_ps(g + k), _mm256_loadu_ps(x + k), a2); }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

TARGET static void poly_run(const float *buf, const float *bank, int row_len, int up, int down,
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

const pf_fir_kernels pf_fir_avx2 = {"avx2", fir_run, poly_run};
#endif
