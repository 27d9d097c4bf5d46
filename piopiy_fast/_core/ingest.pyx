# cython: language_level=3, embedsignature=True
"""The fused per-frame path of one call stream.

``CallIngest.ingest(frame)`` decodes a received frame (L16 little-endian, or
G.711), splits ``both`` mode into its two channels, resamples each to the
target rate and writes them into one lock-free ring per channel: one C pass
that needs no GIL and allocates nothing. All state of the call lives here.
The GIL is released only for large frames (NOGIL_MIN_SAMPLES, in codec.pxd): a
20 ms frame costs less than giving the GIL away does.

A call's channels are on the call's timeline: the resampler is aligned, so sample
k of a channel is the call's audio at time ``k / target_rate`` from its first
sample, and ``flush()`` completes ``round(n * target_rate / source_rate)`` samples
per channel for n received.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int16_t, uint8_t
from libc.stdlib cimport free, malloc

from piopiy_fast._core.codec cimport (
    NOGIL_MIN_SAMPLES, pf_alaw_decode, pf_deinterleave_i16, pf_l16le_deinterleave_i16, pf_l16le_to_i16,
    pf_ulaw_decode,
)
from piopiy_fast._core.resample cimport (
    PF_RS_BLOCK, Resampler, check_channels, check_quality, check_rate,
)
from piopiy_fast._core.ringbuffer cimport RingBuffer, pf_ring_close, pf_ring_overruns, pf_ring_write

from piopiy_fast._core import errors

ENCODINGS = ("l16", "pcmu", "pcma")


cdef class CallIngest:
    """Per-call state for one received stream: decoder, resampler, rings.

    ``channels`` is 1 (caller or callee mode) or 2 (both mode: channel 0 then
    channel 1, interleaved sample by sample). ``rings`` holds one RingBuffer
    per channel, at ``target_rate``. ``aligned`` (the default) trims the
    resampler's delay so the rings are on the call's timeline (see
    Resampler); ``aligned=False`` keeps the filter's own output, ``delay``
    samples late. (Fields are declared in ingest.pxd.)
    """

    def __cinit__(self):
        self.decoded = NULL
        self.resampled = NULL

    def __init__(self, source_rate, channels, target_rate, *, encoding="l16",
                 ring_capacity=65536, policy="drop_oldest", quality="speech", aligned=True):
        if self.decoded != NULL:
            raise RuntimeError("CallIngest is already initialised")
        self.source_rate = check_rate("source_rate", source_rate)
        self.target_rate = check_rate("target_rate", target_rate)
        self.channels = check_channels(channels)
        if encoding not in ENCODINGS:
            raise errors.ValidationError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        self.enc = <Encoding><int>ENCODINGS.index(encoding)
        self.unit = (2 if self.enc == L16 else 1) * channels
        self.quality = check_quality(quality)
        self.aligned = bool(aligned)
        self._rings = tuple(RingBuffer(ring_capacity, policy) for _ in range(channels))
        cdef RingBuffer ring
        for c, ring in enumerate(self._rings):
            self.ring_ptr[c] = &ring.ring
        self.resampler = None
        self.out_block = 0
        if self.source_rate != self.target_rate:
            self.resampler = Resampler(self.source_rate, self.target_rate, channels,
                                       "int16", self.quality, aligned=aligned)
            self.out_block = self.resampler.block_out_max()
        self.decoded = <int16_t *>malloc(sizeof(int16_t) * PF_RS_BLOCK * 4)
        self.resampled = <int16_t *>malloc(sizeof(int16_t) * (self.out_block * 2 + 1))
        if self.decoded == NULL or self.resampled == NULL:
            raise MemoryError("cannot allocate call state")

    def __dealloc__(self):
        free(self.decoded)
        free(self.resampled)

    def __repr__(self):
        return (f"CallIngest({self.source_rate}, {self.channels}, {self.target_rate}, "
                f"encoding={self.encoding!r})")

    @property
    def rings(self):
        return self._rings

    @property
    def delay(self):
        """Resampler delay in target-rate samples: 0.0 when aligned or when the rates
        are equal."""
        return 0.0 if self.resampler is None else self.resampler.delay

    @property
    def frames(self):
        """Frames used."""
        return self.n_frames

    @property
    def bytes(self):
        """Bytes of the frames used."""
        return self.n_bytes

    @property
    def decode_errors(self):
        """Frames refused (not whole samples, or not whole sample pairs)."""
        return self.n_errors

    @property
    def overruns(self):
        """Samples lost to ring overflow, all channels."""
        return sum(pf_ring_overruns(self.ring_ptr[c]) for c in range(self.channels))

    def ingest(self, frame):
        """Use one received frame; returns the samples written per channel.

        A frame that does not hold whole samples (or whole sample pairs in both
        mode) raises FrameError, is counted in ``decode_errors`` and changes no
        other state.
        """
        cdef Py_buffer view
        cdef Py_ssize_t written, nbytes
        if type(frame) is bytes:        # what websockets hands over: no buffer dance
            written = self.frame(<const uint8_t *>PyBytes_AS_STRING(frame),
                                 PyBytes_GET_SIZE(frame))
            nbytes = PyBytes_GET_SIZE(frame)
        else:
            PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
            written = self.frame(<const uint8_t *>view.buf, view.len)
            nbytes = view.len
            PyBuffer_Release(&view)
        if written < 0:
            raise errors.FrameError(
                f"frame of {nbytes} bytes does not hold whole "
                f"{'sample pairs' if self.channels == 2 else 'samples'} "
                f"({self.unit} bytes each for {self.encoding}, {self.channels} channel(s))")
        return written

    cdef Py_ssize_t frame(self, const uint8_t *data, Py_ssize_t nbytes) noexcept:
        cdef Py_ssize_t unit = self.unit, written
        if nbytes < 0 or nbytes % unit:
            self.n_errors += 1
            return -1
        if nbytes // unit * self.channels >= NOGIL_MIN_SAMPLES:
            with nogil:
                written = self._ingest(data, nbytes // unit)
        else:
            written = self._ingest(data, nbytes // unit)
        self.n_frames += 1
        self.n_bytes += nbytes
        return written

    cdef Py_ssize_t _ingest(self, const uint8_t *data, Py_ssize_t per_channel) noexcept nogil:
        cdef Py_ssize_t done = 0, take, got, written = 0
        cdef int16_t *planar[2]
        cdef int16_t *out[2]
        cdef int c
        planar[0] = self.decoded + 2 * PF_RS_BLOCK
        planar[1] = self.decoded + 3 * PF_RS_BLOCK
        out[0] = self.resampled
        out[1] = self.resampled + self.out_block
        while done < per_channel:
            take = min(per_channel - done, <Py_ssize_t>PF_RS_BLOCK)
            self._decode(data + done * self.unit, take, planar)
            if self.resampler is None:
                got = take
                for c in range(self.channels):
                    pf_ring_write(self.ring_ptr[c], planar[c], got)
            else:
                got = self.resampler.block_i16_planar(<const int16_t **>planar, take, out)
                for c in range(self.channels):
                    pf_ring_write(self.ring_ptr[c], out[c], got)
            written += got
            done += take
        return written

    cdef void _decode(self, const uint8_t *src, Py_ssize_t n, int16_t **planar) noexcept nogil:
        if self.enc == L16:
            if self.channels == 1:
                pf_l16le_to_i16(src, planar[0], n)
            else:
                pf_l16le_deinterleave_i16(src, planar[0], planar[1], n)
            return
        cdef int16_t *dst = planar[0] if self.channels == 1 else self.decoded
        if self.enc == PCMU:
            pf_ulaw_decode(src, dst, n * self.channels)
        else:
            pf_alaw_decode(src, dst, n * self.channels)
        if self.channels == 2:
            pf_deinterleave_i16(self.decoded, planar[0], planar[1], n)

    def flush(self):
        """Push the rest of the resampled stream into the rings (end of call); returns
        the samples written per channel. Aligned, every channel then holds exactly
        ``round(n * target_rate / source_rate)`` samples for the n received (halves
        rounded up)."""
        cdef Py_ssize_t got, written = 0
        cdef int16_t *out[2]
        cdef int c
        if self.resampler is None:
            return 0
        out[0] = self.resampled
        out[1] = self.resampled + self.out_block
        with nogil:
            while True:
                got = self.resampler.tail_block_i16_planar(out)
                if got == 0:
                    break
                for c in range(self.channels):
                    pf_ring_write(self.ring_ptr[c], out[c], got)
                written += got
        return written

    def close(self):
        """Close the rings: blocked readers return, reads drain what is left."""
        for c in range(self.channels):
            pf_ring_close(self.ring_ptr[c])
