# cython: language_level=3
"""FrameSink for other core modules to cimport: a transport written in Cython hands it
each binary frame as a pointer and a size (``frame``), with no Python object per frame."""
cimport cython

from piopiy_fast._core.delivery cimport CallDelivery
from piopiy_fast._core.ingest cimport CallIngest
from piopiy_fast._core.vad cimport VoiceActivity


@cython.final
cdef class FrameSink:
    cdef readonly CallDelivery delivery   # after_frame() runs after each ingested frame
    cdef CallIngest _ingest           # None while the format is pending and once detached
    cdef VoiceActivity _vad           # None without voice activity detection
    cdef object _on_gap               # on_gap(kind, seconds), or None
    cdef str _gap_kind                # the gap the next frame reports (mark_gap), or None
    cdef bint _detached
    cdef bint _bad_seen               # a frame without whole samples was reported
    cdef bint _started
    cdef object _on_pending           # None once detached
    cdef object _on_bad_frame         # None once detached
    cdef object _on_rate_limited      # None when not wanted, and once detached
    cdef bint _rate_limited_seen      # a frame past the rate cap was reported
    cdef double _late_after, _sec_per_byte, _max_ahead
    cdef double _first, _last, _due
    cdef unsigned long long _late, _rate_limited
    cdef object __weakref__

    # One binary frame: ``data`` must point at ``size`` readable bytes for the call's
    # length. Returns 1 when it woke a reader (a transport then lets the event loop
    # run before the next frame), else 0; -1 with an exception set when a hook raised.
    cdef int frame(self, const unsigned char *data, Py_ssize_t size) except -1
    cdef double _report_gap(self, str kind, double seconds, double now) except? -1.0
    cdef int _ingest_frame(self, CallIngest ingest, const unsigned char *data,
                           Py_ssize_t size) except -1
