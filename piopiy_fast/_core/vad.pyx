# cython: language_level=3, embedsignature=True
"""Voice activity of a call's channels, decided as each frame is received.

``VoiceActivity`` runs the energy detector of ``pf_vad.h`` over every channel of a
call's frames, in C on the frame's own bytes (L16 little-endian, one channel or two
interleaved), before they are resampled: a pass of additions per sample and one
logarithm per 10 ms, no allocation. A change of state (speech starts, speech ends) is
rare, a few a second at most; each one is handed to ``on_change(channel, speech, at)``
with ``at`` on the call's timeline: samples at the call's target rate from the call's
first sample, moved by the gaps the call records (``gap``).
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.math cimport log10
from libc.stdint cimport uint8_t, uint64_t



cdef enum:
    MAX_EVENTS = 8


cdef class VoiceActivity:
    """The voice activity of one call's channels (one or two), at the source rate.

    Args:
        source_rate: The rate of the frames' samples.
        channels: 1, or 2 for interleaved pairs (channel 0 first).
        target_rate: The rate of the call's timeline.
        on_change: ``on_change(channel, speech, at)`` at each change of state: speech
            started at timeline sample ``at`` (``speech`` True) or speech ended there.
            None to keep only the counters.
        origin: The timeline sample of the first frame's first sample.
        frame_ms: Length of an analysis frame.
        onset_ms: Loud audio in a row that starts speech.
        hangover_ms: Quiet audio that ends it (pauses shorter than this stay inside).
        margin_db: How far above the noise floor a loud frame is.
        min_dbfs: The level below which nothing is speech.
        rise_db_per_s: How fast the noise floor may rise.
        floor_dbfs: The noise floor before the first frame.

    Raises:
        ValueError: A rate, a channel count or a duration out of range.
    """

    # Fields are declared in vad.pxd.

    def __init__(self, int source_rate, int channels, int target_rate, on_change=None, *,
                 long long origin=0, double frame_ms=10.0, double onset_ms=20.0,
                 double hangover_ms=300.0, double margin_db=10.0, double min_dbfs=-50.0,
                 double rise_db_per_s=2.0, double floor_dbfs=-60.0):
        cdef pf_vad_params p
        if source_rate < 1000 or source_rate > 192000 or target_rate < 1000 or target_rate > 192000:
            raise ValueError("rates must be 1000..192000 Hz")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {channels}")
        if on_change is not None and not callable(on_change):
            raise TypeError("on_change must be callable")
        if not (1.0 <= frame_ms <= 100.0):
            raise ValueError("frame_ms must be 1..100")
        if onset_ms < 0 or hangover_ms < 0 or onset_ms > 10000 or hangover_ms > 10000:
            raise ValueError("onset_ms and hangover_ms must be 0..10000")
        if origin < 0:
            raise ValueError("origin must not be negative")
        p.frame = max(1, <int>(source_rate * frame_ms / 1000.0 + 0.5))
        p.onset = max(1, <int>(onset_ms / frame_ms + 0.5))
        p.hangover = max(1, <int>(hangover_ms / frame_ms + 0.5))
        p.margin_db = margin_db
        p.min_dbfs = min_dbfs
        p.rise_db = rise_db_per_s * frame_ms / 1000.0
        p.floor_dbfs = floor_dbfs
        for c in range(2):
            pf_vad_init(&self.vad[c], &p)
        self.source_rate = source_rate
        self.target_rate = target_rate
        self.channels = channels
        self._on_change = on_change
        self._base_src = 0
        self.base = origin
        self.gaps = 0

    cdef long long _timeline(self, uint64_t at) noexcept:
        # Source samples since the last move, at the target rate.
        return self.base + <long long>((at - self._base_src) * <uint64_t>self.target_rate
                                       // <uint64_t>self.source_rate)

    cdef int _emit(self, int channel, pf_vad_event *events, int n) except -1:
        cdef int k
        if self._on_change is None:
            return 0
        for k in range(n):
            self._on_change(channel, events[k].speech == 1, self._timeline(events[k].at))
        return 0

    cdef int frame(self, const uint8_t *data, Py_ssize_t nbytes) except -1:
        """One frame of L16 LE bytes (whole sample pairs in stereo; a partial unit at
        the end is ignored, as the ingest refuses such a frame)."""
        cdef pf_vad_event events[MAX_EVENTS]
        cdef int c, got
        cdef size_t stride = 2 * <size_t>self.channels
        cdef size_t n = <size_t>nbytes // stride if nbytes > 0 else 0
        cdef size_t done
        cdef pf_vad_event second[MAX_EVENTS]
        cdef int got2
        if self.channels == 2:
            # Both channels in one pass over the interleaved pairs.
            done = 0
            while done < n:
                done += pf_vad_feed2(&self.vad[0], &self.vad[1], data + done * 4, n - done,
                                     events, &got, second, &got2, MAX_EVENTS)
                if got:
                    self._emit(0, events, got)
                if got2:
                    self._emit(1, second, got2)
            return 0
        for c in range(self.channels):
            done = 0
            while done < n:
                done += pf_vad_feed(&self.vad[c], data + done * stride + 2 * c, n - done,
                                    stride, events, MAX_EVENTS, &got)
                if got:
                    self._emit(c, events, got)
        return 0

    def feed(self, data):
        """One frame: bytes of L16 LE (interleaved pairs for two channels), or any
        contiguous buffer of them."""
        cdef Py_buffer view
        if type(data) is bytes:
            self.frame(<const uint8_t *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            return
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.frame(<const uint8_t *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def stop(self):
        """The audio stops (a gap, a new format, the end): speech in progress ends at
        its last loud frame."""
        cdef pf_vad_event ev
        cdef int c
        for c in range(self.channels):
            if pf_vad_stop(&self.vad[c], &ev):
                self._emit(c, &ev, 1)

    def gap(self, long long samples):
        """A gap of ``samples`` timeline samples before the next frame: speech in
        progress ends, and the next frame's samples come that much later."""
        if samples < 0:
            raise ValueError("a gap cannot be negative")
        self.stop()
        cdef uint64_t now = self.vad[0].samples
        self.base = self._timeline(now) + samples
        self._base_src = now
        self.gaps += samples

    @property
    def position(self):
        """The timeline sample of the next sample fed."""
        return self._timeline(self.vad[0].samples)

    def speaking(self, int channel):
        """True while ``channel`` is in speech."""
        self._check(channel)
        return self.vad[channel].speaking == 1

    def levels(self, int channel):
        """What ``channel``'s samples measured: a dict of ``samples``, ``frames``,
        ``loud_frames``, ``loud_samples``, ``energy`` (sum of squares), ``loud_energy`` (of the loud
        frames), ``peak`` (largest magnitude), ``clipped`` (samples at full scale) and
        ``floor_dbfs`` (the noise floor now)."""
        self._check(channel)
        cdef pf_vad *v = &self.vad[channel]
        return {"samples": v.samples, "frames": v.frames, "loud_frames": v.loud_frames,
                "loud_samples": v.loud_frames * <uint64_t>v.p.frame,
                "energy": v.energy, "loud_energy": v.loud_energy, "peak": v.peak,
                "clipped": v.clipped,
                "floor_dbfs": 10.0 * log10(v.floor_e / (32768.0 * 32768.0))}

    cdef int _check(self, int channel) except -1:
        if channel < 0 or channel >= self.channels:
            raise IndexError(f"channel {channel} of {self.channels}")
        return 0
