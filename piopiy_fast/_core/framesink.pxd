# cython: language_level=3
"""FrameSink for other core modules to cimport: a transport written in Cython hands it
each binary frame as a pointer and a size (``frame``), with no Python object per frame."""
cimport cython

from piopiy_fast._core.ingest cimport CallIngest


@cython.final
cdef class FrameSink:
    cdef CallIngest _ingest           # None before the first frame and after detach()
    cdef bint _detached
    cdef bint _bad_seen               # a frame without whole samples was reported
    cdef bint _started
    cdef object _on_start
    cdef object _on_bad_frame
    cdef object _after_frame          # None, or called when _taps or _waiting say so
    cdef list _taps                   # while it has entries: after_frame on every frame
    cdef list _waiting                # while it has entries: frames counted in unseen_frames
    cdef Py_ssize_t _burst_frames     # ... and after_frame once this many are unseen
    cdef public Py_ssize_t unseen_frames
    cdef public Py_ssize_t per_frame  # readers that want after_frame on every frame
    cdef double _late_after, _sec_per_byte
    cdef double _first, _last, _due
    cdef unsigned long long _late

    # One binary frame: ``data`` must point at ``size`` readable bytes for the call's
    # length. Returns 1 when the after-frame hook said it woke a reader (a transport
    # then lets the event loop run before the next frame), else 0; -1 with an
    # exception set when a hook raised.
    cdef int frame(self, const unsigned char *data, Py_ssize_t size) except -1
