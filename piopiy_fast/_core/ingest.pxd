# cython: language_level=3
"""CallIngest for other core modules to cimport: the frame sink hands it each frame's
bytes through ``frame`` (a pointer and a size, no Python object)."""
cimport cython
from libc.stdint cimport int16_t, uint8_t

from piopiy_fast._core.resample cimport Resampler
from piopiy_fast._core.ringbuffer cimport pf_ring

cdef enum Encoding:
    L16 = 0
    PCMU = 1
    PCMA = 2


@cython.final
cdef class CallIngest:
    cdef readonly int source_rate, target_rate, channels
    cdef readonly str encoding, quality
    cdef readonly bint aligned        # on the call's timeline (the resampler's delay trimmed)
    cdef Encoding enc
    cdef Py_ssize_t unit              # bytes of one sample on every channel
    cdef Resampler resampler          # None when the rates are equal
    cdef tuple _rings
    cdef pf_ring *ring_ptr[2]
    cdef int16_t *decoded             # interleaved block, then one block per channel
    cdef int16_t *resampled           # one block of output per channel
    cdef Py_ssize_t out_block
    cdef unsigned long long n_frames, n_bytes, n_errors

    # One received frame: ``data`` must point at ``nbytes`` readable bytes for the
    # call's length (the caller's promise; nothing here can check it). Returns the
    # samples written per channel, or -1 when the frame holds no whole samples (or
    # sample pairs): then it is counted in decode_errors and changes nothing else.
    # Needs the GIL; releases it for large frames.
    cdef Py_ssize_t frame(self, const uint8_t *data, Py_ssize_t nbytes) noexcept
    cdef Py_ssize_t _ingest(self, const uint8_t *data, Py_ssize_t per_channel) noexcept nogil
    cdef void _decode(self, const uint8_t *src, Py_ssize_t n, int16_t **planar) noexcept nogil
