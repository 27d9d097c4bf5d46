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
 * block it falls in, so outputs never depend on how the input was split.
 * Blocks of CHAINS vectors keep that many chains in flight: the FMA latency is
 * hidden once there are more chains than cycles of latency. */
#define FIR_BLOCK(CHAINS)                                                          \
    for (; t + 8 * (CHAINS) <= count; t += 8 * (CHAINS)) {                         \
        __m256 acc[CHAINS];                                                        \
        _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++) acc[v] = _mm256_setzero_ps();           \
        const float *xt = x + t;                                                   \
        for (int k = 0; k < len; k++) {                                            \
            __m256 gk = _mm256_broadcast_ss(g + k);                                \
            _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)                                     \
                acc[v] = _mm256_fmadd_ps(gk, _mm256_loadu_ps(xt + k + 8 * v), acc[v]); \
        }                                                                          \
        _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)                                         \
            store8(y + (ptrdiff_t)(t + 8 * (size_t)v) * ystride, ystride, 8, acc[v]); \
    }

TARGET static void fir_run(const float *x, const float *g, int len, float *y,
                           ptrdiff_t ystride, size_t count)
{
    size_t t = 0;
    FIR_BLOCK(10)
    FIR_BLOCK(4)
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

/* cvtps2dq rounds half to even (the default MXCSR mode); packssdw saturates. */
TARGET static void to_i16(const float *src, int16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = _mm256_cvtps_epi32(_mm256_loadu_ps(src + i));
        __m256i hi = _mm256_cvtps_epi32(_mm256_loadu_ps(src + i + 8));
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < n; i++) {
        __m128i one = _mm_cvtps_epi32(_mm_set_ss(src[i]));
        dst[i] = (int16_t)_mm_cvtsi128_si32(_mm_packs_epi32(one, one));
    }
}

const pf_fir_kernels pf_fir_avx2 = {"avx2", fir_run, poly_run, to_i16};
#endif
