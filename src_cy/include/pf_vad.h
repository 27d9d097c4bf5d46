/* pf_vad.h: an energy voice-activity detector for one channel.
 *
 * The detector cuts a channel into analysis frames of `frame` samples (10 ms
 * by default) and decides per frame whether it is loud: its energy is above
 * the channel's noise floor by `margin_db` and above `min_dbfs`. Speech starts
 * at the first of `onset` loud frames in a row and ends after the last loud
 * frame once `hangover` frames have passed without one, so the pauses between
 * words stay inside one segment while the segment itself ends where the sound
 * did. The noise floor follows the quietest frames: it drops at once to a
 * quieter frame and rises by at most `rise_db` per frame, so a call's line
 * noise, whatever its level, is learnt in a few seconds and speech does not
 * drag it up.
 *
 * It also keeps what call metrics need of the samples: their energy, the
 * energy of the loud frames, the peak, and the samples at full scale.
 *
 * Input is L16 little-endian bytes with a stride (2 bytes for a mono stream,
 * 4 to read one channel of an interleaved stereo one), read byte by byte:
 * no alignment or byte-order assumption. Nothing allocates; everything may run
 * without the GIL.
 */
#ifndef PF_VAD_H
#define PF_VAD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The full-scale energy of one sample, for dBFS. */
#define PF_VAD_FULL (32768.0 * 32768.0)

typedef struct pf_vad_params {
    int frame;          /* samples per analysis frame (> 0) */
    int onset;          /* loud frames in a row that start speech (>= 1) */
    int hangover;       /* quiet frames that end it (>= 1) */
    double margin_db;   /* a loud frame is this far above the noise floor */
    double min_dbfs;    /* and above this level */
    double rise_db;     /* the floor rises at most this much per frame */
    double floor_dbfs;  /* the floor before the first frame */
} pf_vad_params;

/* A change of state: speech started at sample `at` (speech = 1), or speech
 * that had lasted until sample `at` ended (speech = 0). Samples are counted
 * from the channel's first. */
typedef struct pf_vad_event {
    int speech;
    uint64_t at;
} pf_vad_event;

typedef struct pf_vad {
    pf_vad_params p;
    /* the frame being filled */
    int fill;
    double acc;
    /* the decision, in energies (mean squares) */
    double floor_e;
    double margin, min_e, rise, rise_loud, tiny;
    int speaking;
    int run;            /* loud frames in a row (before onset) */
    int quiet;          /* quiet frames since the last loud one (in speech) */
    uint64_t run_start; /* first sample of the current loud run */
    uint64_t last_loud_end;
    /* counters */
    uint64_t samples;
    uint64_t frames, loud_frames;
    uint64_t clipped;
    int peak;
    double energy;       /* sum of squares, all samples */
    double loud_energy;  /* sum of squares of the loud frames */
} pf_vad;


static inline void pf_vad_init(pf_vad *v, const pf_vad_params *p)
{
    memset(v, 0, sizeof *v);
    v->p = *p;
    v->floor_e = PF_VAD_FULL * pow(10.0, p->floor_dbfs / 10.0);
    v->margin = pow(10.0, p->margin_db / 10.0);
    v->min_e = PF_VAD_FULL * pow(10.0, p->min_dbfs / 10.0);
    v->rise = pow(10.0, p->rise_db / 10.0);
    v->rise_loud = pow(10.0, p->rise_db / 40.0);
    v->tiny = PF_VAD_FULL * 1e-20; /* -200 dBFS: a floor of digital silence */
}

static inline int16_t pf__vad_sample(const uint8_t *b)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    int16_t s;
    memcpy(&s, b, sizeof s); /* no alignment assumed; one load on this host */
    return s;
#else
    return (int16_t)(uint16_t)((unsigned)b[0] | ((unsigned)b[1] << 8));
#endif
}

/* Sum of squares, peak magnitude and full-scale samples of n samples `stride`
 * bytes apart: integer arithmetic only, so the loop vectorises (a square is at
 * most 2**30; 2**33 of them fit an int64). */
static inline int64_t pf__vad_block(const uint8_t *b, size_t n, size_t stride, int *peak,
                                    uint64_t *clipped)
{
    int64_t acc = 0;
    int top = *peak;
    uint64_t full = 0;
    for (size_t k = 0; k < n; k++) {
        const int s = pf__vad_sample(b + k * stride);
        const int a = s < 0 ? -s : s;
        acc += (int64_t)(s * s);
        top = a > top ? a : top;
        full += (uint64_t)(a >= 32767);
    }
    *peak = top;
    *clipped += full;
    return acc;
}

/* The same for both channels of interleaved stereo pairs in one pass: contiguous
 * loads, so a stereo frame is read once rather than twice with a stride. */
static inline void pf__vad_block2(const uint8_t *b, size_t n, pf_vad *v0, pf_vad *v1,
                                  int64_t *acc0, int64_t *acc1)
{
    int64_t e0 = 0, e1 = 0;
    int t0 = v0->peak, t1 = v1->peak;
    uint64_t f0 = 0, f1 = 0;
    for (size_t k = 0; k < n; k++) {
        const int s0 = pf__vad_sample(b + 4 * k);
        const int s1 = pf__vad_sample(b + 4 * k + 2);
        const int a0 = s0 < 0 ? -s0 : s0;
        const int a1 = s1 < 0 ? -s1 : s1;
        e0 += (int64_t)(s0 * s0);
        e1 += (int64_t)(s1 * s1);
        t0 = a0 > t0 ? a0 : t0;
        t1 = a1 > t1 ? a1 : t1;
        f0 += (uint64_t)(a0 >= 32767);
        f1 += (uint64_t)(a1 >= 32767);
    }
    v0->peak = t0;
    v1->peak = t1;
    v0->clipped += f0;
    v1->clipped += f1;
    *acc0 = e0;
    *acc1 = e1;
}

/* One complete analysis frame ending at v->samples: decide, maybe emit. All in
 * energies (mean squares), no logarithm: the dB settings are turned into factors
 * once, at pf_vad_init. */
static inline int pf__vad_frame(pf_vad *v, pf_vad_event *ev)
{
    const pf_vad_params *p = &v->p;
    const double mean = v->acc / (double)p->frame;
    const uint64_t start = v->samples - (uint64_t)p->frame;
    int emitted = 0;
    v->frames++;
    const int loud = mean > v->floor_e * v->margin && mean > v->min_e;
    /* The floor: down at once, up slowly (a quarter as fast under loud frames). */
    if (mean < v->floor_e)
        v->floor_e = mean > v->tiny ? mean : v->tiny;
    else
        v->floor_e = fmin(mean, v->floor_e * (loud ? v->rise_loud : v->rise));
    if (loud) {
        v->loud_frames++;
        v->loud_energy += v->acc;
        v->last_loud_end = v->samples;
        v->quiet = 0;
        if (!v->speaking) {
            if (v->run == 0)
                v->run_start = start;
            if (++v->run >= p->onset) {
                v->speaking = 1;
                v->run = 0;
                ev->speech = 1;
                ev->at = v->run_start;
                emitted = 1;
            }
        }
    } else if (v->speaking) {
        if (++v->quiet >= p->hangover) {
            v->speaking = 0;
            v->quiet = 0;
            ev->speech = 0;
            ev->at = v->last_loud_end;
            emitted = 1;
        }
    } else {
        v->run = 0;
    }
    v->acc = 0.0;
    v->fill = 0;
    return emitted;
}

/* Feed up to `n` samples of L16 LE, `stride` bytes apart. Stops after the
 * frame that fills `events` (at most `max_events`, >= 1). Returns the samples
 * consumed and stores the events written in *n_events. */
static inline size_t pf_vad_feed(pf_vad *v, const uint8_t *data, size_t n, size_t stride,
                                 pf_vad_event *events, int max_events, int *n_events)
{
    int got = 0;
    size_t i = 0;
    const int frame = v->p.frame;
    while (i < n) {
        size_t take = (size_t)(frame - v->fill);
        if (take > n - i)
            take = n - i;
        /* Constant strides for the two layouts there are, so the loop vectorises. */
        const uint8_t *at = data + i * stride;
        const double acc = (double)(
            stride == 2 ? pf__vad_block(at, take, 2, &v->peak, &v->clipped)
            : stride == 4 ? pf__vad_block(at, take, 4, &v->peak, &v->clipped)
            : pf__vad_block(at, take, stride, &v->peak, &v->clipped));
        v->acc += acc;
        v->energy += acc;
        v->fill += (int)take;
        v->samples += take;
        i += take;
        if (v->fill == frame) {
            got += pf__vad_frame(v, events + got);
            if (got >= max_events)
                break;
        }
    }
    *n_events = got;
    return i;
}

/* Feed up to `n` interleaved stereo pairs to two detectors (channel 0 to `v0`,
 * channel 1 to `v1`), which must have the same frame size and have been fed alike
 * (so their frames fill together). Stops after the frame that fills either event
 * array (`max_events` each). Returns the pairs consumed. */
static inline size_t pf_vad_feed2(pf_vad *v0, pf_vad *v1, const uint8_t *data, size_t n,
                                  pf_vad_event *ev0, int *got0, pf_vad_event *ev1,
                                  int *got1, int max_events)
{
    int g0 = 0, g1 = 0;
    size_t i = 0;
    const int frame = v0->p.frame;
    while (i < n) {
        size_t take = (size_t)(frame - v0->fill);
        if (take > n - i)
            take = n - i;
        int64_t a0, a1;
        pf__vad_block2(data + i * 4, take, v0, v1, &a0, &a1);
        v0->acc += (double)a0;
        v0->energy += (double)a0;
        v1->acc += (double)a1;
        v1->energy += (double)a1;
        v0->fill += (int)take;
        v1->fill += (int)take;
        v0->samples += take;
        v1->samples += take;
        i += take;
        if (v0->fill == frame) {
            g0 += pf__vad_frame(v0, ev0 + g0);
            g1 += pf__vad_frame(v1, ev1 + g1);
            if (g0 >= max_events || g1 >= max_events)
                break;
        }
    }
    *got0 = g0;
    *got1 = g1;
    return i;
}

/* The audio stops (a gap, a format change, the end): speech in progress ends
 * at its last loud frame, the partial frame is dropped. Returns 1 and fills
 * *ev when speech ended. */
static inline int pf_vad_stop(pf_vad *v, pf_vad_event *ev)
{
    int emitted = 0;
    if (v->speaking) {
        ev->speech = 0;
        ev->at = v->last_loud_end;
        emitted = 1;
    }
    v->speaking = 0;
    v->run = 0;
    v->quiet = 0;
    v->acc = 0.0;
    v->fill = 0;
    return emitted;
}

#endif /* PF_VAD_H */
