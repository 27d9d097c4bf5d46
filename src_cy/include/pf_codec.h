/* pf_codec.h: L16 (little-endian int16) and G.711 conversions.
 *
 * Every function is static inline, allocates nothing, takes no lock and touches
 * no Python object, so all of them may run with the GIL released. Byte input
 * may sit at any address (it is read a byte at a time, or with memcpy);
 * int16_t and float pointers must be aligned for their type. Results do not
 * depend on the host's byte order.
 *
 * The loops are written for gcc -O3 to vectorise with plain SSE2 (no -march,
 * no -ffast-math): no branches, no variable shifts, no table look-ups in the
 * bulk paths.
 *
 * G.711 follows the ITU-T/Sun reference (g711.c), applied to 16-bit samples the
 * way CPython's audioop does: mu-law codes the top 14 bits (s >> 2), A-law the
 * top 13 bits (s >> 3); decoding gives the reference's 16-bit values.
 */
#ifndef PF_CODEC_H
#define PF_CODEC_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Plain copies for the L16 <-> int16 paths on little-endian hosts. Define
 * PF_CODEC_PORTABLE to force the byte-order independent code everywhere
 * (used to test that code on a little-endian machine). */
#if !defined(PF_CODEC_PORTABLE) && defined(__BYTE_ORDER__) && \
    defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PF_CODEC_LE_HOST 1
#else
#define PF_CODEC_LE_HOST 0
#endif

/* ---- scalar helpers --------------------------------------------------- */

/* Two little-endian bytes to int16. The narrowing is modular (two's complement
 * int16_t is required by <stdint.h>, and every supported compiler converts
 * modulo 2^16). */
static inline int16_t pf__ld_le16(const uint8_t *p)
{
    return (int16_t)(uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

static inline void pf__st_le16(uint8_t *p, int16_t s)
{
    uint16_t u = (uint16_t)s;
    p[0] = (uint8_t)(u & 0xFFu);
    p[1] = (uint8_t)(u >> 8);
}

/* x * scale rounded half to even and saturated to int16; NaN gives 0.
 * The order (round, then NaN, then clamp) and the operand order of the
 * comparisons are what lets gcc vectorise this without -ffast-math. */
static inline int16_t pf__f32_to_i16_sat1(float x, float scale)
{
    float v = x * scale;
#if FLT_EVAL_METHOD == 0 && !defined(__FAST_MATH__)
    /* Adding 1.5 * 2^23 leaves no fraction bits, so for |v| < 2^22 the sum is
     * v rounded in the current rounding mode (to nearest, ties to even, unless
     * the program changed it) and subtracting gives that integer back exactly.
     * Larger |v| come back within a few units of v, which still saturates. */
    v = (v + 12582912.0f) - 12582912.0f;
#else
    v = rintf(v);
#endif
    v = v == v ? v : 0.0f;
    v = 32767.0f < v ? 32767.0f : v;
    v = -32768.0f > v ? -32768.0f : v;
    return (int16_t)(int32_t)v;
}

/* ---- L16 ---------------------------------------------------------------- */

static inline void pf_l16le_to_i16(const uint8_t *src, int16_t *dst, size_t n)
{
#if PF_CODEC_LE_HOST
    if (n)
        memcpy(dst, src, n * sizeof(int16_t));
#else
    for (size_t i = 0; i < n; i++)
        dst[i] = pf__ld_le16(src + 2 * i);
#endif
}

/* dst[i] = sample * scale (scale 1/32768 maps -32768 to -1.0). */
static inline void pf_l16le_to_f32(const uint8_t *src, float *dst, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)pf__ld_le16(src + 2 * i) * scale;
}

/* frames interleaved pairs (4 bytes each) to two int16 channels. */
static inline void pf_l16le_deinterleave_i16(const uint8_t *src, int16_t *left,
                                             int16_t *right, size_t frames)
{
    for (size_t i = 0; i < frames; i++) {
        left[i] = pf__ld_le16(src + 4 * i);
        right[i] = pf__ld_le16(src + 4 * i + 2);
    }
}

static inline void pf_i16_to_l16le(const int16_t *src, uint8_t *dst, size_t n)
{
#if PF_CODEC_LE_HOST
    if (n)
        memcpy(dst, src, n * sizeof(int16_t));
#else
    for (size_t i = 0; i < n; i++)
        pf__st_le16(dst + 2 * i, src[i]);
#endif
}

/* dst[i] = saturate(round_half_even(src[i] * scale)); NaN gives 0. */
static inline void pf_f32_to_i16_sat(const float *src, int16_t *dst, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = pf__f32_to_i16_sat1(src[i], scale);
}

static inline void pf_deinterleave_i16(const int16_t *src, int16_t *left, int16_t *right,
                                       size_t frames)
{
    for (size_t i = 0; i < frames; i++) {
        left[i] = src[2 * i];
        right[i] = src[2 * i + 1];
    }
}

static inline void pf_interleave_i16(const int16_t *left, const int16_t *right, int16_t *dst,
                                     size_t frames)
{
    for (size_t i = 0; i < frames; i++) {
        dst[2 * i] = left[i];
        dst[2 * i + 1] = right[i];
    }
}

/* ---- G.711 ---------------------------------------------------------------
 *
 * The reference finds a segment by searching a table of segment ends and then
 * shifts by a segment-dependent amount; neither vectorises. Here:
 *  - encoding converts the magnitude to float, whose exponent is the segment
 *    and whose top four mantissa bits are the quantisation bits (exact: the
 *    magnitudes are below 2^13);
 *  - decoding multiplies by 2^shift built from the bits of the segment, in
 *    16-bit arithmetic (every product fits).
 * Signed right shifts are arithmetic, as on every compiler this builds with.
 */

static inline uint32_t pf__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* mu-law code to linear: Sun's ulaw2linear. */
static inline int16_t pf_ulaw_to_i16(uint8_t code)
{
    int32_t u = (uint8_t)~code;
    int32_t seg = (u >> 4) & 7;
    /* 2^seg from the three bits of seg */
    int32_t p = (1 + (seg & 1)) * (1 + 3 * ((seg >> 1) & 1)) * (1 + 15 * (seg >> 2));
    int32_t t = (((u & 0x0F) << 3) + 0x84) * p; /* <= 252 * 128 */
    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

/* linear to mu-law: Sun's linear2ulaw on the top 14 bits (s >> 2). */
static inline uint8_t pf_i16_to_ulaw(int16_t s)
{
    int32_t v = (int32_t)s >> 2;     /* -8192..8191 */
    int32_t neg = v >> 31;           /* 0 or -1 */
    int32_t m = (v ^ neg) - neg;     /* |v| */
    /* Reference: clip |v| to 8159, add the bias 0x21, and give the top code
     * when the sum passes the last segment (8192 only). Clipping at 8158
     * gives the same codes and keeps m below 2^13. */
    m = (m < 8158 ? m : 8158) + 0x21; /* 33..8191: segment = exponent - 5 */
    /* float bits >> 19 = (exponent + 127) << 4 | top four mantissa bits */
    int32_t uval = (int32_t)(pf__f32_bits((float)m) >> 19) - ((127 + 5) << 4);
    return (uint8_t)(uval ^ 0xFF ^ (neg & 0x80));
}

/* A-law code to linear: Sun's alaw2linear. */
static inline int16_t pf_alaw_to_i16(uint8_t code)
{
    uint16_t a = (uint16_t)(code ^ 0x55);
    uint16_t seg = (uint16_t)((a >> 4) & 7);
    uint16_t nz = seg != 0;
    uint16_t s1 = (uint16_t)(seg - nz); /* shift: seg - 1, or 0 in segment 0 */
    uint16_t p = (uint16_t)((1 + (s1 & 1)) * (1 + 3 * ((s1 >> 1) & 1)) * (1 + 15 * (s1 >> 2)));
    /* (q << 4) + 8, plus 0x100 above segment 0; <= 0x1F8 * 64 */
    int16_t t = (int16_t)((((a & 0x0F) << 4) + 8 + (nz << 8)) * p);
    return (int16_t)((a & 0x80) ? t : -t);
}

/* linear to A-law: Sun's linear2alaw on the top 13 bits (s >> 3). */
static inline uint8_t pf_i16_to_alaw(int16_t s)
{
    int32_t v = (int32_t)s >> 3;     /* -4096..4095 */
    int32_t neg = v >> 31;           /* 0 or -1 */
    int32_t m = v ^ neg;             /* v, or -v - 1 when negative: 0..4095 */
    /* m >= 32: segment = exponent - 4, quantisation = top mantissa bits;
     * m < 32 (segment 0): m >> 1 */
    int32_t hi = (int32_t)(pf__f32_bits((float)m) >> 19) - ((127 + 4) << 4);
    int32_t lo = -(int32_t)(m < 32);
    int32_t aval = (lo & (m >> 1)) | (~lo & hi);
    return (uint8_t)(aval ^ 0xD5 ^ (neg & 0x80));
}

static inline void pf_ulaw_decode(const uint8_t *src, int16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = pf_ulaw_to_i16(src[i]);
}

static inline void pf_alaw_decode(const uint8_t *src, int16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = pf_alaw_to_i16(src[i]);
}

static inline void pf_ulaw_encode(const int16_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = pf_i16_to_ulaw(src[i]);
}

static inline void pf_alaw_encode(const int16_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = pf_i16_to_alaw(src[i]);
}

#endif /* PF_CODEC_H */
