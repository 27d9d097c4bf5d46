# cython: language_level=3, embedsignature=True
"""Where a call's binary frames go: ingest, counters, the real-time schedule, and the
readers' turn.

One ``FrameSink`` per call. Until the call attaches an ingest (the format is not
settled), each frame's bytes go to ``on_pending``, which may hold them and may
``attach`` an ingest and ``replay`` them. Then, per frame, the sink hands the bytes to
the call's ``CallIngest`` (decode, de-interleave, resample, ring write), reports the
first frame that holds no whole samples, keeps the real-time schedule that counts late
frames, and runs the call's ``CallDelivery.after_frame`` (taps, and waking readers
when one wants every frame or a burst arrived), all in C. So a transport written in
Cython can deliver frames through ``frame()`` with no Python object and no Python call
per frame; a Python transport calls ``feed(bytes)``.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.math cimport INFINITY
from libc.stdint cimport uint8_t

from piopiy_fast._core.delivery cimport CallDelivery
from piopiy_fast._core.ingest cimport CallIngest
from piopiy_fast._core.vad cimport VoiceActivity


cdef extern from "pf_clock.h":
    double pf_monotonic()


cdef class FrameSink:
    """The receive path of one call, below Python.

    A frame is late when it arrives more than ``late_after`` seconds after the audio
    before it ran out; the schedule then restarts from its arrival. Its origin is the
    first frame's arrival, and held frames that are replayed advance it by their audio.
    Times are ``time.monotonic()``.

    The same schedule caps the rate: a frame that arrives while the audio before it
    reaches more than ``max_ahead`` seconds past now (the peer sends faster than real
    time, beyond the burst it may send at once) is dropped before the ingest (no decode,
    no ring, no recording) and counted in ``rate_limited_frames``.

    Args:
        delivery: The call's delivery: ``after_frame()`` runs after each frame that
            reaches the ingest.
        on_pending: ``on_pending(data)`` gets the bytes of each frame that arrives
            while no ingest is attached; it may hold them, ``attach`` an ingest and
            ``replay`` them. Returning ``True`` (what ``replay`` returned) says it
            woke a reader; any other result, that it did not.
        on_bad_frame: ``on_bad_frame(size)`` runs at the first frame that holds no
            whole samples (it is dropped and counted in the ingest's
            ``decode_errors``).
        late_after: Seconds behind the schedule that make a frame late.
        on_gap: ``on_gap(kind, seconds)`` runs before a frame that comes after a gap
            in the audio: ``late`` (more than ``late_after`` behind the schedule), or
            the kind given to ``mark_gap`` (a pause, a reconnection), with the
            seconds the audio is behind the schedule. None: gaps are only counted.
        max_ahead: Seconds of audio a peer may be ahead of real time (None: no cap).
        on_rate_limited: ``on_rate_limited(size)`` runs at the first frame dropped for
            the cap (None: nothing runs).

    Raises:
        TypeError: ``delivery`` is not a ``CallDelivery``, or a hook is not callable.
    """

    def __init__(self, CallDelivery delivery not None, on_pending, on_bad_frame, *,
                 double late_after, on_gap=None, max_ahead=None, on_rate_limited=None):
        if not callable(on_pending) or not callable(on_bad_frame):
            raise TypeError("on_pending and on_bad_frame must be callable")
        if on_gap is not None and not callable(on_gap):
            raise TypeError("on_gap must be callable")
        if on_rate_limited is not None and not callable(on_rate_limited):
            raise TypeError("on_rate_limited must be callable or None")
        if max_ahead is not None and not max_ahead >= 0:
            raise ValueError("max_ahead must be 0 or more seconds, or None")
        self._max_ahead = INFINITY if max_ahead is None else max_ahead
        self._on_rate_limited = on_rate_limited
        self.delivery = delivery
        self._on_pending = on_pending
        self._on_bad_frame = on_bad_frame
        self._on_gap = on_gap
        self._gap_kind = None
        self._late_after = late_after

    # -- the frame path -------------------------------------------------------------------

    cdef int frame(self, const unsigned char *data, Py_ssize_t size) except -1:
        cdef CallIngest ingest = self._ingest
        cdef double now = pf_monotonic()
        cdef double due
        if ingest is None:
            if self._detached:
                return 0        # the call is over: nothing more goes in
            if not self._started:
                self._started = True
                self._first = self._due = now
            self._last = now
            # The format is not settled: the call holds the frame, or settles it now.
            held = PyBytes_FromStringAndSize(<const char *>data, size)
            woke = self._on_pending(held) is True
            if self._ingest is not None:
                # Settled just now: the time the receiver took to set the call up (the
                # first resampler of a rate pair designs its filter) is not the peer's.
                self._due = max(self._due, pf_monotonic())
            return 1 if woke else 0
        # Real-time schedule: late when the audio before this frame ran out more than
        # late_after seconds ago; then the schedule restarts from now. The gap is
        # reported before the frame's audio goes in, so it sits before that audio.
        due = self._due
        if self._gap_kind is not None:
            kind, self._gap_kind = self._gap_kind, None
            if now > due:
                due = self._report_gap(kind, now - due, now)
        elif now > due + self._late_after:
            self._late += 1
            due = self._report_gap("late", now - due, now)
        self._last = now
        if due - now > self._max_ahead:
            # Faster than real time past the burst allowance: dropped before any work
            # (the schedule does not advance), counted, reported once.
            self._rate_limited += 1
            self._due = due
            if not self._rate_limited_seen:
                self._rate_limited_seen = True
                if self._on_rate_limited is not None:
                    self._on_rate_limited(size)
            return 0
        self._due = due + size * self._sec_per_byte
        self._ingest_frame(ingest, data, size)
        return 1 if self.delivery.after_frame() else 0

    cdef double _report_gap(self, str kind, double seconds, double now) except? -1.0:
        if self._on_gap is not None:
            self._on_gap(kind, seconds)
        return now

    cdef int _ingest_frame(self, CallIngest ingest, const unsigned char *data,
                           Py_ssize_t size) except -1:
        cdef VoiceActivity vad = self._vad
        if ingest.frame(<const uint8_t *>data, size) < 0:
            if not self._bad_seen:
                self._bad_seen = True
                self._on_bad_frame(size)
            return 0
        if vad is not None:
            vad.frame(<const uint8_t *>data, size)
        return 0

    def feed(self, data):
        """One binary frame as it arrives.

        Args:
            data: The frame: bytes, or any contiguous buffer.

        Returns:
            True when it woke a reader.
        """
        cdef Py_buffer view
        cdef int woke
        if type(data) is bytes:
            return self.frame(<const unsigned char *>PyBytes_AS_STRING(data),
                              PyBytes_GET_SIZE(data)) == 1
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            woke = self.frame(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return woke == 1

    def replay(self, data):
        """One held frame (one ``on_pending`` got) through the attached ingest, as a live
        frame goes (decode errors reported the same way, readers' turn after it), except
        that it arrived already: it advances the schedule by its audio with no lateness
        check and leaves the arrival times alone.

        Args:
            data: The frame: bytes, or any contiguous buffer.

        Returns:
            True when it woke a reader, as ``feed``.

        Raises:
            RuntimeError: No ingest is attached (or the sink is detached).
        """
        cdef Py_buffer view
        cdef CallIngest ingest = self._ingest
        if ingest is None:
            raise RuntimeError("the sink is detached" if self._detached
                               else "no ingest is attached")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._ingest_frame(ingest, <const unsigned char *>view.buf, view.len)
            if not self._started:  # nothing arrived live: the schedule starts now
                self._started = True
                self._first = self._last = self._due = pf_monotonic()
            self._due += view.len * self._sec_per_byte
        finally:
            PyBuffer_Release(&view)
        return self.delivery.after_frame()

    # -- what the call sets -------------------------------------------------------------

    def attach(self, CallIngest ingest not None, double sec_per_byte,
               VoiceActivity vad=None):
        """Send frames to ``ingest`` from now on (the first format, or a new one).

        Args:
            ingest: The call's ingest for the format.
            sec_per_byte: The audio one received byte holds, in seconds.
            vad: The voice activity detector each ingested frame goes through too
                (L16 frames of the same format), or None.

        Raises:
            RuntimeError: The sink is detached.
            ValueError: ``sec_per_byte`` is not positive.
        """
        if self._detached:
            raise RuntimeError("the sink is detached")
        if not sec_per_byte > 0:
            raise ValueError("sec_per_byte must be positive")
        self._ingest = ingest
        self._vad = vad
        self._sec_per_byte = sec_per_byte

    def detach(self):
        """The call is over: frames from now on are ignored, and the ingest and the
        hooks are let go (they lead back to the call)."""
        self._ingest = None
        self._vad = None
        self._detached = True
        self._on_pending = None
        self._on_bad_frame = None
        self._on_gap = None
        self._on_rate_limited = None

    def restart_schedule(self):
        """A gap that is not lateness (a pause) ends: the schedule starts again now
        unless it is already ahead."""
        self._due = max(self._due, pf_monotonic())

    def mark_gap(self, str kind not None):
        """The audio stops on purpose (a pause) or by accident (a reconnection): the next
        frame reports the time it is behind the schedule to ``on_gap`` as ``kind``, not
        as lateness, and the schedule restarts from it.

        Args:
            kind: What the gap is (``pause``, ``reconnect``).
        """
        self._gap_kind = kind

    @property
    def vad(self):
        """The voice activity detector frames go through (None without one)."""
        return self._vad

    # -- what the call reads ------------------------------------------------------------

    @property
    def ingest(self):
        """The ingest frames go to (None while the format is pending and once
        detached)."""
        return self._ingest

    @property
    def first_frame(self):
        """When the first frame arrived (None before it)."""
        return self._first if self._started else None

    @property
    def last_frame(self):
        """When the latest frame arrived (None before the first)."""
        return self._last if self._started else None

    @property
    def late_frames(self):
        """Frames that arrived late."""
        return self._late

    @property
    def rate_limited_frames(self):
        """Frames dropped because the peer was more than ``max_ahead`` seconds ahead of
        real time."""
        return self._rate_limited
