# cython: language_level=3, embedsignature=True
"""Streaming polyphase resampler between 8, 12, 16, 24, 32 and 48 kHz.

The filters are designed at build time (piopiy_fast/_core/filter_design.py) and
compiled in from the generated pf_filter_taps.h: nothing is designed, and nothing
above the core imported, at run time. The inner loops are C (src_cy/kernels), with
an AVX2 variant (x86-64) and a NEON one (aarch64) picked at import on CPUs that have
them, each bit-exact with the portable loop.
``PIOPIY_FAST_SIMD=generic`` forces the portable loop.

Timing: a filter of odd length N has its centre tap at c = (N - 1) / 2 steps of
``1 / (up * in_rate)``. Run plainly, output j is the signal at input time
``(j * down - c) / (up * in_rate)``: late by ``c / down`` output samples, the
``delay``. An aligned stream starts c steps later, so output k is the signal at
input time ``k / out_rate`` exactly, and it ends after ``round(n * out_rate /
in_rate)`` outputs (halves rounded up, as soxr does).
"""
import os
from math import gcd

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset, strcmp

from piopiy_fast._core.codec cimport NOGIL_MIN_SAMPLES

from piopiy_fast._core import errors

cnp.import_array()


cdef extern from "pf_filter_taps.h" nogil:
    ctypedef struct pf_filter_taps:
        int in_rate, out_rate
        const char *quality
        size_t ntaps
        const double *taps
    enum: PF_FILTER_COUNT
    const pf_filter_taps PF_FILTERS[]


RATES = (8000, 12000, 16000, 24000, 32000, 48000)
QUALITIES = ("speech", "strict")
DTYPES = ("int16", "float32")

pf_rs_select_kernels(os.environ.get("PIOPIY_FAST_SIMD", "").encode())

# A block of silence, fed through the filter to drain its tail.
cdef int16_t ZEROS_I16[PF_RS_BLOCK]
cdef float ZEROS_F32[PF_RS_BLOCK]
memset(ZEROS_I16, 0, sizeof(ZEROS_I16))
memset(ZEROS_F32, 0, sizeof(ZEROS_F32))


def simd_kernel():
    """The inner-loop variant in use on this CPU: "avx2" or "generic"."""
    return pf_rs_kernel_name().decode()


cdef int check_rate(str name, object rate) except -1:
    # As every user-facing rate is taken (piopiy_fast.stream.wire.as_sample_rate): an
    # int, a numpy integer or a float with no fraction; the same message otherwise.
    whole = None
    if not isinstance(rate, (bool, np.bool_)):
        if isinstance(rate, (int, np.integer)):
            whole = int(rate)
        elif isinstance(rate, (float, np.floating)) and float(rate).is_integer():
            whole = int(rate)
    if whole is None or whole not in RATES:
        raise errors.ValidationError(
            f"{name} must be one of {', '.join(map(str, RATES))} Hz, not {rate!r}")
    return whole


cdef int check_channels(object channels) except -1:
    if not isinstance(channels, int) or isinstance(channels, bool) or channels not in (1, 2):
        raise errors.ValidationError(f"channels must be 1 or 2, got {channels!r}")
    return channels


cdef str check_quality(object quality):
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise errors.ValidationError(f"quality must be one of {QUALITIES}, got {quality!r}")
    return quality


cdef const pf_filter_taps *shipped(int in_rate, int out_rate, str quality) except NULL:
    cdef bytes name = quality.encode()
    cdef int i
    for i in range(PF_FILTER_COUNT):
        if (PF_FILTERS[i].in_rate == in_rate and PF_FILTERS[i].out_rate == out_rate
                and strcmp(PF_FILTERS[i].quality, name) == 0):
            return &PF_FILTERS[i]
    raise errors.ValidationError(f"no filter for {in_rate} -> {out_rate} Hz ({quality})")


def filter_taps(in_rate, out_rate, quality="speech"):
    """The prototype filter this build runs for ``in_rate`` -> ``out_rate``: a new
    read-only float64 array (gain ``up``, linear phase, odd length), exactly as
    designed at build time."""
    cdef const pf_filter_taps *f = shipped(check_rate("in_rate", in_rate),
                                           check_rate("out_rate", out_rate),
                                           check_quality(quality))
    out = np.empty(f.ntaps, dtype=np.float64)
    memcpy(cnp.PyArray_DATA(<cnp.ndarray>out), f.taps, sizeof(double) * f.ntaps)
    out.setflags(write=False)
    return out


def ratio(in_rate, out_rate):
    """(up, down): the conversion as a reduced fraction ``out_rate / in_rate``."""
    g = gcd(in_rate, out_rate)
    return out_rate // g, in_rate // g


cdef class FilterBank:
    """A shipped filter laid out as the C engine's polyphase sub-filters; immutable,
    shared by every Resampler of its rate pair and preset."""

    def __cinit__(self, int in_rate, int out_rate, str quality):
        cdef const pf_filter_taps *f = shipped(in_rate, out_rate, quality)
        self.up, self.down = ratio(in_rate, out_rate)
        self.center = <int>((f.ntaps - 1) // 2)
        if pf_fir_bank_init(&self.bank, f.taps, f.ntaps, self.up, self.down) != 0:
            raise MemoryError("cannot allocate the filter bank")

    def __dealloc__(self):
        pf_fir_bank_free(&self.bank)


cdef dict _banks = {}


cdef FilterBank bank_for(int in_rate, int out_rate, str quality):
    key = (in_rate, out_rate, quality)
    bank = _banks.get(key)
    if bank is None:
        bank = _banks[key] = FilterBank(in_rate, out_rate, quality)
    return bank


cdef class Resampler:
    """Streaming sample-rate converter with state carried between calls.

    Feeding a signal in pieces of any sizes gives exactly the samples of feeding
    it whole. Input is (n,) for one channel or (n, 2) interleaved for two, of
    ``dtype`` ("int16" or "float32"), C-contiguous; output has the same dtype and
    layout. int16 output is rounded and saturates.

    By default the output is the filter's own: ``delay`` output samples late (a
    fraction where ``down`` does not divide the centre tap), and ``flush()`` ends
    it once the last input has passed the centre tap. ``aligned=True`` trims the
    delay instead: output k is the input at time ``k / out_rate``, ``delay`` is
    0.0, and ``flush()`` hands over exactly the rest of ``round(n * out_rate /
    in_rate)`` outputs for n inputs (halves rounded up), so the stream is what the
    one-shot ``resample()`` returns. Either way the first ``delay`` samples' worth
    of input is needed before the signal itself comes out: aligned holds that
    back at the start, plain emits the filter's ramp in its place.
    """

    def __cinit__(self):
        self.scratch = NULL
        self.fir = None

    def __init__(self, in_rate, out_rate, channels=1, dtype="int16", quality="speech", *,
                 aligned=False):
        if self.fir is not None:
            raise RuntimeError("Resampler is already initialised")
        self.in_rate = check_rate("in_rate", in_rate)
        self.out_rate = check_rate("out_rate", out_rate)
        self.quality = check_quality(quality)
        self.channels = check_channels(channels)
        if dtype not in DTYPES:
            raise errors.ValidationError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.dtype = dtype
        self.aligned = bool(aligned)
        self.delay = 0.0
        if self.in_rate == self.out_rate:
            return
        self.fir = bank_for(self.in_rate, self.out_rate, self.quality)
        if not self.aligned:
            self.delay = <double>self.fir.center / self.fir.down
        # Aligned, output 0 waits for the centre tap's input; every shipped filter is
        # long enough (centre >= 2 * down) that what process() has returned never
        # passes the rounded total flush() completes.
        if pf_rs_init(&self.state, &self.fir.bank, channels,
                      self.fir.center if self.aligned else 0) != 0:
            self.fir = None
            raise MemoryError("cannot allocate resampler state")
        self.scratch = <float *>malloc(sizeof(float) * self.block_out_max() * channels)
        if self.scratch == NULL:
            raise MemoryError("cannot allocate resampler state")

    def __dealloc__(self):
        if self.fir is not None:
            pf_rs_free(&self.state)
        free(self.scratch)

    def __repr__(self):
        return (f"Resampler({self.in_rate}, {self.out_rate}, channels={self.channels}, "
                f"dtype={self.dtype!r}, quality={self.quality!r}, aligned={self.aligned})")

    def process(self, samples):
        """Resample the next piece of the stream; returns what it completes."""
        arr = self._checked(samples)
        if self.fir is None:
            return arr.copy()
        cdef Py_ssize_t n = arr.shape[0]
        cdef Py_ssize_t count = pf_rs_out_count(&self.state, n)
        out = np.empty(self._shape(count), dtype=self.dtype)
        cdef bint int16 = self.dtype == "int16"
        cdef const void *src = cnp.PyArray_DATA(<cnp.ndarray>arr)
        cdef void *dst = cnp.PyArray_DATA(<cnp.ndarray>out)
        cdef Py_ssize_t written
        if n * self.channels >= NOGIL_MIN_SAMPLES:
            with nogil:
                written = run_interleaved(self, int16, src, n, dst)
        else:
            written = run_interleaved(self, int16, src, n, dst)
        self.consumed += n
        self.produced += written
        return out

    def flush(self):
        """The rest of the stream (what the filter still holds), then a fresh state."""
        cdef Py_ssize_t got
        cdef int16_t *planar[2]
        cdef int16_t[:, ::1] block_i16
        if self.fir is None:
            return np.empty(self._shape(0), dtype=self.dtype)
        pieces = []
        while True:
            block = np.empty((self.channels, self.block_out_max()), dtype=self.dtype)
            if self.dtype == "int16":
                block_i16 = block
                for c in range(self.channels):
                    planar[c] = &block_i16[c, 0]
                got = self.tail_block_i16_planar(planar)
            else:
                got = self._tail_block_f32(block)
            if got == 0:
                break
            pieces.append(block[:, :got])
        out = np.concatenate(pieces, axis=1) if pieces else np.empty((self.channels, 0), self.dtype)
        return np.ascontiguousarray(out.T) if self.channels == 2 else out[0].copy()

    def clear(self):
        """Forget all history, as if newly built."""
        if self.fir is not None:
            pf_rs_reset(&self.state)
        self.consumed = self.produced = 0

    def _shape(self, n):
        if self.channels == 2:
            return (n, 2)
        return (n,)

    cdef object _checked(self, samples):
        if not isinstance(samples, np.ndarray):
            raise TypeError(f"samples must be a numpy array, got {type(samples).__name__}")
        if samples.dtype != np.dtype(self.dtype):
            raise TypeError(f"samples must be {self.dtype} for this Resampler, got {samples.dtype}")
        if not samples.flags.c_contiguous:
            raise errors.ValidationError("samples must be C-contiguous (np.ascontiguousarray)")
        expected = "(n,)" if self.channels == 1 else "(n, 2)"
        if (samples.ndim != 1 if self.channels == 1 else
                (samples.ndim != 2 or samples.shape[1] != 2)):
            raise errors.ValidationError(
                f"samples must have shape {expected} for {self.channels} channel(s), "
                f"got {samples.shape}")
        return samples

    cdef Py_ssize_t _tail_block_f32(self, float[:, ::1] out):
        cdef const float *inp[2]
        cdef Py_ssize_t got, want = self.tail_remaining()
        if want <= 0:
            self.clear()
            return 0
        inp[0] = inp[1] = ZEROS_F32
        got = pf_rs_block_f32(&self.state, inp, 1, PF_RS_BLOCK, &out[0, 0], out.shape[1], 1)
        got = min(got, want)
        self.produced += got
        return got

    cdef Py_ssize_t tail_remaining(self) noexcept nogil:
        # Aligned: round(consumed * up / down) outputs in all, halves rounded up.
        # Plain: the stream ends once output reaches the last input sample plus the
        # filter's centre, ceil((consumed * up + centre) / down) outputs.
        cdef long long up = self.fir.bank.up, down = self.fir.bank.down
        cdef long long total
        if self.aligned:
            total = (2 * self.consumed * up + down) // (2 * down)
        else:
            total = (self.consumed * up + self.fir.center + down - 1) // down
        return <Py_ssize_t>(total - self.produced)

    cdef Py_ssize_t block_out_max(self) noexcept nogil:
        return pf_rs_block_out_max(&self.fir.bank)

    cdef Py_ssize_t block_i16_planar(self, const int16_t **inp, Py_ssize_t n,
                                     int16_t **out) noexcept nogil:
        """n <= PF_RS_BLOCK samples per channel in; each out[c] holds block_out_max()."""
        cdef Py_ssize_t got, bom = self.block_out_max()
        cdef int c
        got = pf_rs_block_i16(&self.state, inp, 1, n, self.scratch, bom, 1)
        for c in range(self.channels):
            pf_rs_to_i16(self.scratch + c * bom, out[c], got)
        self.consumed += n
        self.produced += got
        return got

    cdef Py_ssize_t tail_block_i16_planar(self, int16_t **out) noexcept nogil:
        """Up to block_out_max() more samples of the tail per channel; 0 when
        drained, and the state is then fresh."""
        cdef const int16_t *inp[2]
        cdef Py_ssize_t got, want = self.tail_remaining()
        cdef Py_ssize_t bom = self.block_out_max()
        cdef int c
        if want <= 0:
            pf_rs_reset(&self.state)
            self.consumed = self.produced = 0
            return 0
        inp[0] = inp[1] = ZEROS_I16
        got = pf_rs_block_i16(&self.state, inp, 1, PF_RS_BLOCK, self.scratch, bom, 1)
        got = min(got, want)
        for c in range(self.channels):
            pf_rs_to_i16(self.scratch + c * bom, out[c], got)
        self.produced += got
        return got


ctypedef fused sample_t:
    int16_t
    float


cdef Py_ssize_t run_blocks(Resampler r, const sample_t *src, Py_ssize_t n,
                           sample_t *dst) noexcept nogil:
    """n frames of r.channels interleaved samples through r, block by block, into
    dst (interleaved, sized by pf_rs_out_count); returns the frames written."""
    cdef const sample_t *inp[2]
    cdef Py_ssize_t done = 0, written = 0, take, got
    cdef int c, ch = r.channels
    while done < n:
        take = min(n - done, <Py_ssize_t>PF_RS_BLOCK)
        for c in range(ch):
            inp[c] = src + done * ch + c
        if sample_t is int16_t:
            got = pf_rs_block_i16(&r.state, inp, ch, take, r.scratch, 1, ch)
            pf_rs_to_i16(r.scratch, dst + written * ch, got * ch)
        else:
            got = pf_rs_block_f32(&r.state, inp, ch, take, dst + written * ch, 1, ch)
        written += got
        done += take
    return written


cdef Py_ssize_t run_interleaved(Resampler r, bint int16, const void *src, Py_ssize_t n,
                                void *dst) noexcept nogil:
    if int16:
        return run_blocks(r, <const int16_t *>src, n, <int16_t *>dst)
    return run_blocks(r, <const float *>src, n, <float *>dst)


def resample(samples, in_rate, out_rate, quality="speech"):
    """One shot: ``process`` then ``flush`` on a new aligned Resampler.

    ``samples`` is (n,) or (n, 2), int16 or float32. The result has
    ``round(n * out_rate / in_rate)`` samples per channel (halves rounded up, as
    soxr does), and sample k is the input at time ``k / out_rate``.
    """
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"samples must be a numpy array, got {type(samples).__name__}")
    channels = samples.shape[1] if samples.ndim == 2 else 1
    r = Resampler(in_rate, out_rate, channels, str(samples.dtype), quality, aligned=True)
    head = r.process(samples)
    return np.concatenate([head, r.flush()])
