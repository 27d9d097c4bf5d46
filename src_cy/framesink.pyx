# cython: language_level=3, embedsignature=True
"""Where a call's binary frames go: ingest, counters and the real-time schedule.

One ``FrameSink`` per call. Per frame it hands the bytes to the call's
``CallIngest`` (decode, de-interleave, resample, ring write), reports the first
frame that holds no whole samples, and keeps the real-time schedule that counts
late frames. It touches Python only at the first frame (``on_start`` settles the
format and attaches the ingest), at the first bad frame, and when the call's
readers need a frame to run something (``after_frame``): a callback reader on
every frame, a waiting reader only when it wants every frame or when
``burst_frames`` frames arrived since readers were last woken (the rest of the
time a clock wakes them). So a transport written in Cython can deliver frames
through ``frame()`` with no Python object and no Python call per frame; a Python
transport calls ``feed(bytes)``.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_SIZE
from libc.stdint cimport uint8_t

from piopiy_fast._core.ingest cimport CallIngest


cdef extern from "pf_clock.h":
    double pf_monotonic()


cdef class FrameSink:
    """The receive path of one call, below Python.

    ``on_start()`` runs at the first frame and must ``attach`` an ingest;
    ``on_bad_frame(size)`` runs at the first frame that holds no whole samples (it
    is dropped and counted in the ingest's ``decode_errors``). ``after_frame()``
    runs after a frame as ``watch`` says, and a true result means it woke a reader.
    A frame is late when it
    arrives more than ``late_after`` seconds after the audio before it ran out; the
    schedule then restarts from its arrival. Times are ``time.monotonic()``.
    """

    def __init__(self, on_start, on_bad_frame, *, late_after, after_frame=None):
        if not callable(on_start) or not callable(on_bad_frame):
            raise TypeError("on_start and on_bad_frame must be callable")
        if after_frame is not None and not callable(after_frame):
            raise TypeError("after_frame must be callable or None")
        self._on_start = on_start
        self._on_bad_frame = on_bad_frame
        self._after_frame = after_frame
        self._late_after = float(late_after)
        self._taps = []
        self._waiting = []
        self._burst_frames = 1

    # -- the frame path -------------------------------------------------------------------

    cdef int frame(self, const unsigned char *data, Py_ssize_t size) except -1:
        cdef CallIngest ingest = self._ingest
        cdef double now, due
        cdef bint waiting
        if ingest is None:
            if self._detached:
                return 0        # the call is over: nothing more goes in
            self._on_start()
            ingest = self._ingest
            if ingest is None:
                raise RuntimeError("on_start attached no ingest")
            self._started = True
            self._first = self._due = pf_monotonic()
        if ingest.frame(<const uint8_t *>data, size) < 0 and not self._bad_seen:
            self._bad_seen = True
            self._on_bad_frame(size)
        # Real-time schedule: late when the audio before this frame ran out more than
        # late_after seconds ago; then the schedule restarts from now.
        now = pf_monotonic()
        due = self._due
        if now > due + self._late_after:
            self._late += 1
            due = now
        self._due = due + size * self._sec_per_byte
        self._last = now
        waiting = PyList_GET_SIZE(self._waiting) > 0
        if waiting:
            self.unseen_frames += 1
        if self._after_frame is not None and (
                PyList_GET_SIZE(self._taps) > 0 or (waiting and (
                    self.per_frame > 0 or self.unseen_frames >= self._burst_frames))):
            return 1 if self._after_frame() else 0
        return 0

    def feed(self, data):
        """One binary frame (bytes, or any contiguous buffer); True when the
        after-frame hook woke a reader."""
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

    # -- what the call sets -------------------------------------------------------------

    def watch(self, list taps not None, list waiting not None, Py_ssize_t burst_frames):
        """When ``after_frame`` runs: after every frame while ``taps`` has entries; and
        while ``waiting`` has entries, frames are counted in ``unseen_frames`` and it
        runs when ``per_frame`` is positive or ``unseen_frames`` reaches
        ``burst_frames`` (resetting the count is the hook's business). The lists are
        the caller's own, read in place on every frame."""
        if burst_frames < 1:
            raise ValueError("burst_frames must be at least 1")
        self._taps = taps
        self._waiting = waiting
        self._burst_frames = burst_frames

    def attach(self, CallIngest ingest not None, double sec_per_byte):
        """Send frames to ``ingest`` from now on (the first format, or a new one);
        ``sec_per_byte`` is the audio one received byte holds."""
        if self._detached:
            raise RuntimeError("the sink is detached")
        if not sec_per_byte > 0:
            raise ValueError("sec_per_byte must be positive")
        self._ingest = ingest
        self._sec_per_byte = sec_per_byte

    def detach(self):
        """The call is over: frames from now on are ignored."""
        self._ingest = None
        self._detached = True

    def restart_schedule(self):
        """A gap that is not lateness (a pause) ends: the schedule starts again now
        unless it is already ahead."""
        self._due = max(self._due, pf_monotonic())

    # -- what the call reads ------------------------------------------------------------

    @property
    def ingest(self):
        """The ingest frames go to (None before the first frame and once detached)."""
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
