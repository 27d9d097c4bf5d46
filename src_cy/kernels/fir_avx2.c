/* AVX2 inner loops, compiled for those instructions through target attributes
 * and only called when the CPU reports them (see fir.c). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "fir_kernels.h"

#define TARGET __attribute__((target("avx2,fma")))

/* Each output lane is one chain over k in order, whichever block it falls in,
 * so outputs never depend on how the input was split. A multiply then an add,
 * each rounded, as the portable loop does (fused multiply-add would round once
 * and give other bits): the two loops agree bit for bit. Blocks of CHAINS
 * vectors keep that many chains in flight, enough to hide the latency behind
 * the loads. */
#define FIR_BLOCK(CHAINS)                                                            \
    for (; t + 8 * (CHAINS) <= count; t += 8 * (CHAINS)) {                           \
        __m256 acc[CHAINS];                                                          \
        _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)                  \
            acc[v] = accumulate ? _mm256_loadu_ps(y + t + 8 * v) : _mm256_setzero_ps(); \
        const float *xt = x + t;                                                     \
        for (int k = 0; k < len; k++) {                                              \
            __m256 gk = _mm256_broadcast_ss(g + k);                                  \
            _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)              \
                acc[v] = _mm256_add_ps(                                              \
                    acc[v], _mm256_mul_ps(gk, _mm256_loadu_ps(xt + k + 8 * v)));     \
        }                                                                            \
        _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)                  \
            _mm256_storeu_ps(y + t + 8 * v, acc[v]);                                 \
    }

TARGET static void fir_run(const float *x, const float *g, int len, float *y,
                           size_t count, int accumulate)
{
    size_t t = 0;
    count = (count + 7) & ~(size_t)7;   /* whole vectors: x and y have the slack */
    FIR_BLOCK(10)
    FIR_BLOCK(4)
    FIR_BLOCK(1)
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

const pf_fir_kernels pf_fir_avx2 = {"avx2", fir_run, to_i16};
#endif
