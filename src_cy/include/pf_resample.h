/* Streaming polyphase resampler: state and API.
 *
 * Converting by up/down = L/M with prototype filter h (odd length N, gain L),
 * output j has phase p = (j*M) mod L and newest input i = floor(j*M / L):
 *     y[j] = sum_k h[p + L*k] * x[i - k]
 * Outputs of one phase step through the input M samples at a time, so each
 * phase splits further by input residue s = k mod M into sub-filters that run
 * over the input decimated by M:
 *     y[j] = sum_s sum_q h[p + L*(M*q + s)] * x_r[(i - s) / M - q],  r = (i - s) mod M
 * with x_r[m] = x[M*m + r]. Each sub-filter is then a plain FIR over a
 * contiguous stream, computed for many outputs at once, and its exact zeros
 * (the half-band case) are trimmed away.
 *
 * A stream may start `start` steps of 1/L input later than output 0 = input 0:
 * with `start` the prototype's centre tap, output j is the signal at input time
 * j*M/L exactly (the filter's delay is trimmed instead of output).
 *
 * Input is converted to float and appended to a per-channel history buffer;
 * after each block the buffer slides back to what the next output needs.
 * Every output is computed by the same instruction sequence wherever it falls
 * in a block, so any split of the input gives bit-identical output.
 */
#ifndef PF_RESAMPLE_H
#define PF_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define PF_RS_MAX_CHANNELS 2
/* Largest `down` of a reduced ratio (32 -> 12 kHz is 3/8). */
#define PF_RS_MAX_DOWN 16
/* Input samples per channel taken per block: bounds the buffers, so a call of
 * any length allocates nothing. 320 holds a whole 20 ms frame at 16 kHz, the
 * most Piopiy sends, in one pass; the per-call buffers scale with it. */
#define PF_RS_BLOCK 320
/* Floats readable past the end of every stream and output segment: the
 * kernels work 8 outputs at a time and may touch a whole vector. */
#define PF_RS_SLACK 16

typedef struct {
    int up, down;            /* L and M, coprime */
    int hist;                /* taps of the longest phase = history an output needs */
    float *taps;             /* every sub-filter, trimmed and reversed, back to back */
    int *sub_off;            /* per sub-filter (phase * down + residue): offset in taps */
    int *sub_len;            /* its non-zero span (0: the sub-filter is all zeros) */
    int *sub_lag;            /* its oldest lag q, so its window starts at x_r[b - lag] */
} pf_fir_bank;

typedef struct {
    const pf_fir_bank *fir;  /* shared, immutable; owned by the caller */
    int channels;
    size_t start;            /* where output 0 sits, in steps of 1/up input */
    size_t pos;              /* index in buf of the next output's newest sample */
    int phase;               /* phase of the next output */
    size_t fill;             /* valid floats in each buf */
    float *buf[PF_RS_MAX_CHANNELS];
    size_t buf_len;
    float *streams;          /* the block decimated by down: down streams (down > 1) */
    size_t stream_len;
    float *by_phase;         /* one block of output, grouped by phase */
    size_t segment_len;
} pf_resampler;

/* Bank built from N prototype taps; 0 on success, -1 out of memory or a
 * `down` above PF_RS_MAX_DOWN. */
int pf_fir_bank_init(pf_fir_bank *b, const double *taps, size_t ntaps, int up, int down);
void pf_fir_bank_free(pf_fir_bank *b);

/* A stream of `channels` channels whose output 0 is `start` steps of 1/up input
 * after its first input sample (0: the plain filter output; the centre tap: output
 * aligned with the input). 0 on success, -1 out of memory. */
int pf_rs_init(pf_resampler *s, const pf_fir_bank *fir, int channels, size_t start);
void pf_rs_free(pf_resampler *s);
void pf_rs_reset(pf_resampler *s);

/* Outputs (per channel) that `n` more input samples per channel will yield. */
size_t pf_rs_out_count(const pf_resampler *s, size_t n);
/* Largest output (per channel) of one block, for sizing scratch buffers. */
size_t pf_rs_block_out_max(const pf_fir_bank *fir);

/* One block: append n <= PF_RS_BLOCK samples per channel, filter, slide.
 * Input channel c is in[c][k * in_stride]; output channel c goes to
 * out + c * out_chan_step + j * out_stride. Returns outputs per channel. */
size_t pf_rs_block_i16(pf_resampler *s, const int16_t *const *in, ptrdiff_t in_stride,
                       size_t n, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride);
size_t pf_rs_block_f32(pf_resampler *s, const float *const *in, ptrdiff_t in_stride,
                       size_t n, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride);

/* Resampled int16 input back to int16: rounded half to even, saturated. */
void pf_rs_to_i16(const float *src, int16_t *dst, size_t n);

/* Name of the inner-loop variant in use. */
const char *pf_rs_kernel_name(void);
/* Picks the fastest inner loop this CPU runs, or the one named by `force`
 * ("generic", "avx2") when this CPU runs it; returns the name in use. */
const char *pf_rs_select_kernels(const char *force);

#endif
