/* Streaming polyphase resampler: filter bank, per-stream state, block loop and
 * the run-time choice of inner loop (see pf_resample.h). */
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "pf_resample.h"
#include "fir_kernels.h"

static const pf_fir_kernels *kernels = &pf_fir_generic;

const char *pf_rs_kernel_name(void) { return kernels->name; }

void pf_rs_to_i16(const float *src, int16_t *dst, size_t n) { kernels->to_i16(src, dst, n); }

#if defined(__x86_64__) || defined(__i386__)
/* AVX2 and FMA, and an OS that saves the YMM registers (XCR0 bits 1 and 2), asked
 * of cpuid itself: __builtin_cpu_supports reads what the compiler's runtime found
 * at start-up, and zig's compiler-rt (the wheels' compiler) finds nothing. */
static int have_avx2_fma(void)
{
    unsigned a, b, c, d;
    const unsigned fma = 1u << 12, osxsave = 1u << 27, avx = 1u << 28;
    if (!__get_cpuid(1, &a, &b, &c, &d) || (c & (fma | osxsave | avx)) != (fma | osxsave | avx))
        return 0;
    unsigned xcr0, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    (void)xcr0_high;
    if ((xcr0 & 6u) != 6u) return 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 5)) != 0;   /* AVX2 */
}
#endif

const char *pf_rs_select_kernels(const char *force)
{
    /* What this CPU can run, portable first: the last one is the default, and
     * `force` names another (an unknown or unavailable name is ignored). */
#if defined(__x86_64__) || defined(__i386__)
    const pf_fir_kernels *have[] = {&pf_fir_generic, have_avx2_fma() ? &pf_fir_avx2 : NULL};
#elif defined(__aarch64__)
    const pf_fir_kernels *have[] = {&pf_fir_generic,
        (getauxval(AT_HWCAP) & HWCAP_ASIMD) ? &pf_fir_neon : NULL};
#else
    const pf_fir_kernels *have[] = {&pf_fir_generic};
#endif
    const pf_fir_kernels *best = &pf_fir_generic;
    for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
        if (have[i]) best = have[i];
    if (force && *force)
        for (size_t i = 0; i < sizeof have / sizeof have[0]; i++)
            if (have[i] && strcmp(have[i]->name, force) == 0) best = have[i];
    kernels = best;
    return best->name;
}

static void *alloc_zeroed(size_t nbytes)
{
    nbytes = (nbytes + 63) & ~(size_t)63;   /* aligned_alloc wants a multiple */
    if (nbytes == 0) nbytes = 64;
    void *p = aligned_alloc(64, nbytes);
    if (p) memset(p, 0, nbytes);
    return p;
}

int pf_fir_bank_init(pf_fir_bank *b, const double *taps, size_t ntaps, int up, int down)
{
    memset(b, 0, sizeof *b);
    if (up < 1 || down < 1 || down > PF_RS_MAX_DOWN) return -1;
    size_t nsub = (size_t)up * (size_t)down;
    b->up = up;
    b->down = down;
    b->hist = (int)((ntaps + (size_t)up - 1) / (size_t)up);
    b->taps = alloc_zeroed(sizeof(float) * (ntaps + 1));
    b->sub_off = calloc(nsub, sizeof(int));
    b->sub_len = calloc(nsub, sizeof(int));
    b->sub_lag = calloc(nsub, sizeof(int));
    if (!b->taps || !b->sub_off || !b->sub_len || !b->sub_lag) {
        pf_fir_bank_free(b);
        return -1;
    }
    int used = 0;
    for (int p = 0; p < up; p++) {
        for (int s = 0; s < down; s++) {
            /* Sub-filter (p, s): g[q] = h[p + L*(M*q + s)]; keep its non-zero span. */
            int first = -1, last = -1;
            for (size_t q = 0;; q++) {
                size_t k = (size_t)p + (size_t)up * ((size_t)down * q + (size_t)s);
                if (k >= ntaps) break;
                if (taps[k] != 0.0) {
                    if (first < 0) first = (int)q;
                    last = (int)q;
                }
            }
            int idx = p * down + s;
            b->sub_off[idx] = used;
            b->sub_len[idx] = first < 0 ? 0 : last - first + 1;
            b->sub_lag[idx] = last < 0 ? 0 : last;
            /* Reversed, so the window runs oldest to newest: taps[u] pairs
             * with x_r[b - last + u]. */
            for (int u = 0; u < b->sub_len[idx]; u++) {
                size_t q = (size_t)(last - u);
                b->taps[used + u] = (float)taps[(size_t)p + (size_t)up * ((size_t)down * q + (size_t)s)];
            }
            used += b->sub_len[idx];
        }
    }
    return 0;
}

void pf_fir_bank_free(pf_fir_bank *b)
{
    free(b->taps);
    free(b->sub_off);
    free(b->sub_len);
    free(b->sub_lag);
    memset(b, 0, sizeof *b);
}

size_t pf_rs_block_out_max(const pf_fir_bank *fir)
{
    return ((size_t)PF_RS_BLOCK * (size_t)fir->up) / (size_t)fir->down + (size_t)fir->up + 1;
}

static size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }

int pf_rs_init(pf_resampler *s, const pf_fir_bank *fir, int channels, size_t start)
{
    memset(s, 0, sizeof *s);
    s->fir = fir;
    s->channels = channels;
    s->start = start;
    /* history + the furthest the next output can run ahead (down / up samples,
     * and the start's offset until the first output) + one block + the kernels'
     * read slack */
    s->buf_len = (size_t)fir->hist + (size_t)fir->down + start / (size_t)fir->up + 1
                 + PF_RS_BLOCK + PF_RS_SLACK;
    s->stream_len = round8(s->buf_len / (size_t)fir->down + 1) + PF_RS_SLACK;
    s->segment_len = round8(PF_RS_BLOCK / (size_t)fir->down + 3) + PF_RS_SLACK;
    int ok = 1;
    for (int c = 0; c < channels; c++)
        ok &= (s->buf[c] = alloc_zeroed(sizeof(float) * s->buf_len)) != NULL;
    if (fir->down > 1)
        ok &= (s->streams = alloc_zeroed(sizeof(float) * s->stream_len * (size_t)fir->down)) != NULL;
    ok &= (s->by_phase = alloc_zeroed(sizeof(float) * s->segment_len * (size_t)fir->up)) != NULL;
    if (!ok) {
        pf_rs_free(s);
        return -1;
    }
    pf_rs_reset(s);
    return 0;
}

void pf_rs_free(pf_resampler *s)
{
    for (int c = 0; c < PF_RS_MAX_CHANNELS; c++) free(s->buf[c]);
    free(s->streams);
    free(s->by_phase);
    memset(s, 0, sizeof *s);
}

void pf_rs_reset(pf_resampler *s)
{
    for (int c = 0; c < s->channels; c++) memset(s->buf[c], 0, sizeof(float) * s->buf_len);
    /* The past before the first sample is silence. Output 0 is `start` steps
     * after the first sample (its newest sample may not have arrived yet). */
    s->fill = (size_t)s->fir->hist - 1;
    s->pos = s->fill + s->start / (size_t)s->fir->up;
    s->phase = (int)(s->start % (size_t)s->fir->up);
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

/* One phase's outputs: the sum of its sub-filters over the decimated streams,
 * into a contiguous segment. */
static void run_phase(const pf_fir_bank *f, const float *const *streams, size_t newest,
                      int phase, float *segment, size_t count)
{
    int accumulate = 0;
    for (int s = 0; s < f->down; s++) {
        int idx = phase * f->down + s;
        if (f->sub_len[idx] == 0) continue;
        /* newest >= hist - 1 >= down * lag + s, so nothing here goes negative */
        size_t at = newest - (size_t)s;
        const float *x = streams[at % (size_t)f->down] + at / (size_t)f->down - (size_t)f->sub_lag[idx];
        kernels->fir_run(x, f->taps + f->sub_off[idx], f->sub_len[idx], segment, count, accumulate);
        accumulate = 1;
    }
    if (!accumulate) memset(segment, 0, sizeof(float) * count);
}

static size_t run_block(pf_resampler *s, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride)
{
    const pf_fir_bank *f = s->fir;
    const size_t up = (size_t)f->up, down = (size_t)f->down;
    size_t count = outputs_before(s->pos, s->phase, s->fill, f->up, f->down);
    if (count == 0) return 0;
    size_t at = s->pos * up + (size_t)s->phase;   /* output 0, in steps of 1/up input */
    size_t firsts = count < up ? count : up;      /* outputs j < up start the phases */
    for (int c = 0; c < s->channels; c++) {
        const float *streams[PF_RS_MAX_DOWN];
        if (down == 1) {
            streams[0] = s->buf[c];
        } else {
            for (size_t r = 0; r < down; r++) {
                float *dst = s->streams + r * s->stream_len;
                for (size_t m = 0; down * m + r < s->fill; m++) dst[m] = s->buf[c][down * m + r];
                streams[r] = dst;
            }
        }
        float *y = out + c * out_chan_step;
        for (size_t j = 0; j < firsts; j++) {
            size_t a = at + j * down, n = (count - j + up - 1) / up;
            float *segment = s->by_phase + j * s->segment_len;
            run_phase(f, streams, a / up, (int)(a % up), segment, n);
            for (size_t t = 0; t < n; t++) y[(ptrdiff_t)(j + t * up) * out_stride] = segment[t];
        }
    }
    /* Advance, then slide the history back to what the next output needs. */
    at += count * down;
    s->pos = at / up;
    s->phase = (int)(at % up);
    size_t drop = s->pos - ((size_t)f->hist - 1);
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
