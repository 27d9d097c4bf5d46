/* Streaming polyphase resampler: filter bank, per-stream state, block loop and
 * the run-time choice of inner loop (see pf_resample.h). */
#include <stdlib.h>
#include <string.h>

#include "pf_resample.h"
#include "fir_kernels.h"

static const pf_fir_kernels *kernels = &pf_fir_generic;

const char *pf_rs_kernel_name(void) { return kernels->name; }

void pf_rs_to_i16(const float *src, int16_t *dst, size_t n) { kernels->to_i16(src, dst, n); }

const char *pf_rs_select_kernels(const char *force)
{
    const pf_fir_kernels *best = &pf_fir_generic;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const pf_fir_kernels *have[] = {&pf_fir_generic,
        (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? &pf_fir_avx2 : NULL};
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
        if (have[i]) best = have[i];
    if (force && *force)
        for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
            if (have[i] && strcmp(have[i]->name, force) == 0) best = have[i];
#else
    (void)force;
#endif
    kernels = best;
    return best->name;
}

static void *alloc_aligned_zeroed(size_t nbytes)
{
    nbytes = (nbytes + 63) & ~(size_t)63;   /* aligned_alloc wants a multiple */
    void *p = aligned_alloc(64, nbytes ? nbytes : 64);
    if (p) memset(p, 0, nbytes ? nbytes : 64);
    return p;
}

int pf_fir_bank_init(pf_fir_bank *b, const double *taps, size_t ntaps, int up, int down)
{
    memset(b, 0, sizeof *b);
    size_t per_phase = (ntaps + (size_t)up - 1) / (size_t)up;
    b->up = up;
    b->down = down;
    b->row_len = (int)((per_phase + 7) & ~(size_t)7);
    b->bank = alloc_aligned_zeroed(sizeof(float) * (size_t)up * (size_t)b->row_len);
    b->span_start = calloc((size_t)up, sizeof(int));
    b->span_len = calloc((size_t)up, sizeof(int));
    if (!b->bank || !b->span_start || !b->span_len) {
        pf_fir_bank_free(b);
        return -1;
    }
    for (int p = 0; p < up; p++) {
        float *row = b->bank + (size_t)p * (size_t)b->row_len;
        int first = b->row_len, last = -1;
        for (size_t k = 0; (size_t)p + k * (size_t)up < ntaps; k++) {
            int m = b->row_len - 1 - (int)k;   /* reversed, right-aligned */
            row[m] = (float)taps[(size_t)p + k * (size_t)up];
            if (row[m] != 0.0f) {
                if (m < first) first = m;
                if (m > last) last = m;
            }
        }
        if (last < 0) first = last = b->row_len - 1;   /* an all-zero phase */
        b->span_start[p] = first;
        b->span_len[p] = last - first + 1;
    }
    return 0;
}

void pf_fir_bank_free(pf_fir_bank *b)
{
    free(b->bank);
    free(b->span_start);
    free(b->span_len);
    memset(b, 0, sizeof *b);
}

int pf_rs_init(pf_resampler *s, const pf_fir_bank *fir, int channels)
{
    memset(s, 0, sizeof *s);
    s->fir = fir;
    s->channels = channels;
    /* history + the furthest the next output can run ahead (down / up
     * samples) + one block + the kernels' read slack */
    s->buf_len = (size_t)fir->row_len + (size_t)fir->down + PF_RS_BLOCK + PF_RS_SLACK;
    for (int c = 0; c < channels; c++) {
        s->buf[c] = alloc_aligned_zeroed(sizeof(float) * s->buf_len);
        if (!s->buf[c]) {
            pf_rs_free(s);
            return -1;
        }
    }
    s->by_phase = alloc_aligned_zeroed(sizeof(float) * pf_rs_block_out_max(fir));
    if (!s->by_phase) {
        pf_rs_free(s);
        return -1;
    }
    pf_rs_reset(s);
    return 0;
}

void pf_rs_free(pf_resampler *s)
{
    for (int c = 0; c < PF_RS_MAX_CHANNELS; c++) free(s->buf[c]);
    free(s->by_phase);
    memset(s, 0, sizeof *s);
}

void pf_rs_reset(pf_resampler *s)
{
    for (int c = 0; c < s->channels; c++) memset(s->buf[c], 0, sizeof(float) * s->buf_len);
    /* The past before the first sample is silence. */
    s->fill = s->pos = (size_t)s->fir->row_len - 1;
    s->phase = 0;
}

/* Outputs with newest-sample index below `fill`, from (pos, phase). */
static size_t outputs_before(size_t pos, int phase, size_t fill, int up, int down)
{
    size_t at = pos * (size_t)up + (size_t)phase, end = fill * (size_t)up;
    return end > at ? (end - at + (size_t)down - 1) / (size_t)down : 0;
}

size_t pf_rs_out_count(const pf_resampler *s, size_t n)
{
    return outputs_before(s->pos, s->phase, s->fill + n, s->fir->up, s->fir->down);
}

size_t pf_rs_block_out_max(const pf_fir_bank *fir)
{
    return ((size_t)PF_RS_BLOCK * (size_t)fir->up) / (size_t)fir->down + (size_t)fir->up + 1;
}

static void interleave_phases(const float *by_phase, int up, size_t positions,
                              float *y, ptrdiff_t stride)
{
    if (up == 2 && stride == 1) {   /* the common 2x case, in a form gcc vectorises */
        for (size_t t = 0; t < positions; t++) {
            y[2 * t] = by_phase[t];
            y[2 * t + 1] = by_phase[positions + t];
        }
        return;
    }
    for (int p = 0; p < up; p++)
        for (size_t t = 0; t < positions; t++)
            y[((ptrdiff_t)t * up + p) * stride] = by_phase[(size_t)p * positions + t];
}

static size_t run_block(pf_resampler *s, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride)
{
    const pf_fir_bank *f = s->fir;
    size_t count = outputs_before(s->pos, s->phase, s->fill, f->up, f->down);
    if (count == 0) return 0;
    for (int c = 0; c < s->channels; c++) {
        float *y = out + c * out_chan_step;
        if (f->down == 1) {
            /* Integer upsampling: phases come in whole cycles, so each phase
             * is a plain FIR over consecutive inputs, run many outputs at once
             * into contiguous memory, then the phases are interleaved. */
            size_t positions = count / (size_t)f->up;
            for (int p = 0; p < f->up; p++) {
                const float *x = s->buf[c] + s->pos - (size_t)f->row_len + 1 + (size_t)f->span_start[p];
                kernels->fir_run(x, f->bank + (size_t)p * (size_t)f->row_len + f->span_start[p],
                                 f->span_len[p], s->by_phase + (size_t)p * positions, 1, positions);
            }
            interleave_phases(s->by_phase, f->up, positions, y, out_stride);
        } else {
            kernels->poly_run(s->buf[c], f->bank, f->row_len, f->up, f->down,
                              s->pos, s->phase, count, y, out_stride);
        }
    }
    /* Advance, then slide the history back to what the next output needs. */
    size_t at = s->pos * (size_t)f->up + (size_t)s->phase + count * (size_t)f->down;
    s->pos = at / (size_t)f->up;
    s->phase = (int)(at % (size_t)f->up);
    size_t drop = s->pos - ((size_t)f->row_len - 1);
    if (drop > s->fill) drop = s->fill;
    if (drop) {
        for (int c = 0; c < s->channels; c++)
            memmove(s->buf[c], s->buf[c] + drop, sizeof(float) * (s->fill - drop));
        s->fill -= drop;
        s->pos -= drop;
    }
    return count;
}

size_t pf_rs_block_i16(pf_resampler *s, const int16_t *const *in, ptrdiff_t in_stride,
                       size_t n, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride)
{
    for (int c = 0; c < s->channels; c++) {
        float *dst = s->buf[c] + s->fill;
        const int16_t *src = in[c];
        if (in_stride == 1)
            for (size_t k = 0; k < n; k++) dst[k] = (float)src[k];
        else
            for (size_t k = 0; k < n; k++) dst[k] = (float)src[(ptrdiff_t)k * in_stride];
    }
    s->fill += n;
    return run_block(s, out, out_chan_step, out_stride);
}

size_t pf_rs_block_f32(pf_resampler *s, const float *const *in, ptrdiff_t in_stride,
                       size_t n, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride)
{
    for (int c = 0; c < s->channels; c++) {
        float *dst = s->buf[c] + s->fill;
        const float *src = in[c];
        for (size_t k = 0; k < n; k++) dst[k] = src[(ptrdiff_t)k * in_stride];
    }
    s->fill += n;
    return run_block(s, out, out_chan_step, out_stride);
}
