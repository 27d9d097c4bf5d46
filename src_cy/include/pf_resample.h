/* Streaming polyphase resampler: state and API.
 *
 * The prototype filter h (odd length N, gain L) is stored as a bank of L rows,
 * one per phase, each reversed and right-aligned in `row_len` floats (a
 * multiple of 8, padded with leading zeros), so that output j of phase p is
 *     y = sum_m bank[p][m] * x[i - row_len + 1 + m]
 * where i = floor(j*M / L) and p = (j*M) mod L: one contiguous dot product.
 *
 * Input is converted to float and appended to a per-channel history buffer;
 * after each block the buffer is slid back so that it keeps exactly what the
 * next output needs. Every output is computed by the same instruction sequence
 * wherever it falls in a block, so any split of the input gives bit-identical
 * output.
 */
#ifndef PF_RESAMPLE_H
#define PF_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define PF_RS_MAX_CHANNELS 2
/* Input samples per channel taken per block: bounds the buffers, so a call of
 * any length allocates nothing. */
#define PF_RS_BLOCK 512
/* Floats readable past the newest sample: an 8-wide kernel may load a whole
 * vector of which only the first lanes matter. */
#define PF_RS_SLACK 16

typedef struct {
    int up, down;            /* L and M, coprime */
    int row_len;             /* taps per phase, multiple of 8 */
    float *bank;             /* up * row_len floats, 32-byte aligned */
    int *span_start;         /* per phase: first non-zero tap in its row */
    int *span_len;           /* per phase: number of taps from there to the end */
} pf_fir_bank;

typedef struct {
    const pf_fir_bank *fir;  /* shared, immutable; owned by the caller */
    int channels;
    size_t pos;              /* index in buf of the next output's newest sample */
    int phase;               /* phase of the next output */
    size_t fill;             /* valid floats in each buf */
    float *buf[PF_RS_MAX_CHANNELS];
    size_t buf_len;
    float *by_phase;         /* one block of output grouped by phase (up == 1 path) */
} pf_resampler;

/* Bank built from N prototype taps; 0 on success, -1 out of memory. */
int pf_fir_bank_init(pf_fir_bank *b, const double *taps, size_t ntaps, int up, int down);
void pf_fir_bank_free(pf_fir_bank *b);

int pf_rs_init(pf_resampler *s, const pf_fir_bank *fir, int channels);
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
