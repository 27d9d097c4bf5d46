/* AArch64 Advanced SIMD (NEON) inner loops, called when the CPU reports ASIMD
 * (see fir.c). Every AArch64 Linux CPU has it, but it is still asked for, so
 * the choice is made the same way on every architecture. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "fir_kernels.h"

/* Bit-exact with the portable kernel: each output lane is acc + g[k] * x[t + k]
 * as a rounded multiply, then a rounded add, over k in order, as fir_generic.c
 * computes it. Never vfmaq/vmlaq: a fused multiply-add rounds once and gives
 * different bits (setup.py builds with -ffp-contract=off so that the compiler
 * does not fuse the pair either, here or in the portable loop). Blocks of CHAINS
 * vectors keep that many add chains in flight, enough to hide the add latency
 * behind the loads; AArch64 has 32 vector registers. */
#define FIR_BLOCK(CHAINS)                                                            \
    for (; t + 4 * (CHAINS) <= count; t += 4 * (CHAINS)) {                           \
        float32x4_t acc[CHAINS];                                                     \
        _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)                  \
            acc[v] = accumulate ? vld1q_f32(y + t + 4 * v) : vdupq_n_f32(0.0f);      \
        const float *xt = x + t;                                                     \
        for (int k = 0; k < len; k++) {                                              \
            float32x4_t gk = vdupq_n_f32(g[k]);                                      \
            _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)              \
                acc[v] = vaddq_f32(acc[v], vmulq_f32(gk, vld1q_f32(xt + k + 4 * v))); \
        }                                                                            \
        _Pragma("GCC unroll 16") for (int v = 0; v < (CHAINS); v++)                  \
            vst1q_f32(y + t + 4 * v, acc[v]);                                        \
    }

static void fir_run(const float *x, const float *g, int len, float *y, size_t count,
                    int accumulate)
{
    size_t t = 0;
    count = (count + 7) & ~(size_t)7;   /* whole groups of 8, as the portable loop */
    FIR_BLOCK(8)
    FIR_BLOCK(2)
}

/* fcvtns rounds to nearest, ties to even, and gives 0 for NaN; sqxtn saturates
 * to int16: the portable conversion's result, 8 at a time. */
static void to_i16(const float *src, int16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        int32x4_t lo = vcvtnq_s32_f32(vld1q_f32(src + i));
        int32x4_t hi = vcvtnq_s32_f32(vld1q_f32(src + i + 4));
        vst1q_s16(dst + i, vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi)));
    }
    for (; i < n; i++)
        dst[i] = vqmovns_s32(vcvtns_s32_f32(src[i]));
}

const pf_fir_kernels pf_fir_neon = {"neon", fir_run, to_i16};
#endif
