# cython: language_level=3, embedsignature=True
"""Lock-free single-producer single-consumer ring of int16 samples (Python face
of pf_ring.h).

Sample arrays are numpy int16 arrays of any shape, taken in C order; another
type or dtype is a TypeError. Input that is not C-contiguous, aligned and in
native byte order is copied first; ``read_into`` needs a writeable array that
already is (ValueError otherwise), since it fills it in place.

The GIL is released while ``read_wait`` blocks, and around copies of at least
``nogil_threshold()`` samples (16384 by default). When another thread wants the
GIL a release can take far longer to come back than a frame-sized copy (a few
hundred samples) takes, so for those holding it is faster.
"""
cimport cython
cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport isfinite
from libc.stdint cimport int16_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import operator

import numpy as np

from piopiy_fast._core import errors

cnp.import_array()

cdef size_t _MAX_CAPACITY = <size_t>1 << 30
cdef size_t _nogil_min = 16384
# A blocking wait wakes this often (seconds) to let Ctrl-C through.
cdef double _WAIT_SLICE = 0.1

POLICIES = ("drop_oldest", "drop_newest")


def nogil_threshold():
    """Copies of at least this many samples release the GIL."""
    return _nogil_min


def set_nogil_threshold(samples):
    """Set the copy size (in samples) from which the GIL is released; 0 means
    always. Returns the previous value."""
    global _nogil_min
    cdef Py_ssize_t v = samples
    if v < 0:
        raise ValueError(f"threshold must be >= 0, got {samples}")
    old = _nogil_min
    _nogil_min = <size_t>v
    return old


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + 1e-9 * <double>ts.tv_nsec


cdef inline cnp.ndarray _input(object obj):
    cdef cnp.ndarray a
    if not cnp.PyArray_Check(obj):
        raise TypeError(f"samples must be a numpy int16 array, got {type(obj).__name__}")
    a = <cnp.ndarray>obj
    if cnp.PyArray_TYPE(a) != cnp.NPY_INT16:
        raise TypeError(f"samples must have dtype int16, got {a.dtype}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a)):
        a = np.array(a, dtype=np.int16, order="C")
    return a


cdef inline size_t _read(pf_ring *r, int16_t *dst, size_t n) noexcept:
    cdef size_t k
    if n >= _nogil_min:
        with nogil:
            k = pf_ring_read(r, dst, n)
    else:
        k = pf_ring_read(r, dst, n)
    return k


cdef object _read_new(pf_ring *r, size_t n):
    # Called with n <= available: only this consumer makes that count shrink.
    cdef cnp.npy_intp dims[1]
    dims[0] = <cnp.npy_intp>n
    out = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INT16, 0)
    cdef size_t k = _read(r, <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>out), n)
    if k != n:  # not expected; never hand out samples that were not filled
        out = out[:k]
    return out


@cython.final
@cython.auto_pickle(False)
cdef class RingBuffer:
    """Fixed capacity (a power of two), one producer thread, one consumer thread.

    ``write`` never blocks. When the ring is full, ``policy`` decides what is
    lost: ``"drop_oldest"`` (default) overwrites the oldest unread samples (but
    keeps only what fits of a write that comes while the reader is copying
    them, so that no slot is ever written and read at once), ``"drop_newest"``
    discards what does not fit. ``overruns`` counts every lost sample exactly.
    """

    def __cinit__(self, capacity, policy="drop_oldest"):
        cdef int pol
        if isinstance(capacity, bool):
            raise TypeError("capacity must be an int, got bool")
        try:
            capacity = operator.index(capacity)
        except TypeError:
            raise TypeError(f"capacity must be an int, got {type(capacity).__name__}") from None
        if capacity < 1 or capacity > _MAX_CAPACITY or capacity & (capacity - 1):
            raise errors.ValidationError(
                f"capacity must be a power of two from 1 to 2**30 samples, got {capacity}")
        if not isinstance(policy, str):
            raise TypeError(f"policy must be a str, got {type(policy).__name__}")
        if policy == "drop_oldest":
            pol = PF_DROP_OLDEST
        elif policy == "drop_newest":
            pol = PF_DROP_NEWEST
        else:
            raise errors.ValidationError(
                f"policy must be one of {', '.join(map(repr, POLICIES))}, got {policy!r}")
        if pf_ring_init(&self.ring, <size_t>capacity, pol) != 0:
            raise MemoryError(f"cannot allocate a ring of {capacity} samples")

    def __dealloc__(self):
        pf_ring_free(&self.ring)

    def __repr__(self):
        return (f"RingBuffer(capacity={pf_ring_capacity(&self.ring)}, policy={self.policy!r}, "
                f"available={pf_ring_available(&self.ring)}, "
                f"overruns={pf_ring_overruns(&self.ring)}, closed={self.closed})")

    @property
    def capacity(self):
        return pf_ring_capacity(&self.ring)

    @property
    def policy(self):
        return POLICIES[pf_ring_policy(&self.ring)]

    @property
    def available(self):
        """Samples ready to read now."""
        return pf_ring_available(&self.ring)

    @property
    def overruns(self):
        """Samples lost to overflow since creation."""
        return pf_ring_overruns(&self.ring)

    @property
    def written(self):
        """Samples offered to ``write`` since creation (stored or lost)."""
        return pf_ring_written(&self.ring)

    @property
    def read_index(self):
        """Index of the next sample a read returns: samples read plus samples dropped
        from the oldest end (it only grows)."""
        return pf_ring_read_index(&self.ring)

    @property
    def write_index(self):
        """Index the next stored sample gets (samples stored since creation)."""
        return pf_ring_write_index(&self.ring)

    @property
    def closed(self):
        return pf_ring_closed(&self.ring) != 0

    def write(self, samples):
        """Producer side. Returns the number of samples stored."""
        cdef cnp.ndarray a = _input(samples)
        cdef size_t n = <size_t>cnp.PyArray_SIZE(a)
        cdef const int16_t *src = <const int16_t *>cnp.PyArray_DATA(a)
        cdef size_t k
        if n >= _nogil_min:
            with nogil:
                k = pf_ring_write(&self.ring, src, n)
        else:
            k = pf_ring_write(&self.ring, src, n)
        return k

    def read(self, n=None):
        """Consumer side, non-blocking: up to ``n`` samples (all available when None)."""
        cdef size_t avail = pf_ring_available(&self.ring)
        cdef Py_ssize_t want
        if n is not None:
            want = n
            if want < 0:
                raise ValueError(f"n must be >= 0, got {n}")
            if <size_t>want < avail:
                avail = <size_t>want
        return _read_new(&self.ring, avail)

    def read_into(self, out):
        """Fill a caller's contiguous int16 array without allocating; returns the count."""
        cdef cnp.ndarray a
        if not cnp.PyArray_Check(out):
            raise TypeError(f"out must be a numpy int16 array, got {type(out).__name__}")
        a = <cnp.ndarray>out
        if cnp.PyArray_TYPE(a) != cnp.NPY_INT16:
            raise TypeError(f"out must have dtype int16, got {a.dtype}")
        if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
                and cnp.PyArray_ISNOTSWAPPED(a)):
            raise ValueError("out must be C-contiguous, aligned and in native byte order")
        if not cnp.PyArray_ISWRITEABLE(a):
            raise ValueError("out must be writeable")
        return _read(&self.ring, <int16_t *>cnp.PyArray_DATA(a), <size_t>cnp.PyArray_SIZE(a))

    def read_wait(self, n, timeout=None):
        """Block (GIL released) until ``n`` samples are available, the ring is
        closed, or ``timeout`` seconds pass; return what is there, at most ``n``.

        The wait ends once the ring is full, so an ``n`` above the capacity
        returns at most ``capacity`` samples. ``timeout=None`` waits without
        limit; a signal (Ctrl-C) still interrupts the wait."""
        cdef Py_ssize_t want = n
        cdef double deadline = -1.0
        cdef double step
        cdef int ready
        cdef size_t avail
        if want < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if timeout is not None:
            step = timeout
            if not (step >= 0.0):
                raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
            if isfinite(step):
                deadline = _now() + step
        if want > 0 and pf_ring_available(&self.ring) < <size_t>want:
            # Wait in slices so that a signal is handled within _WAIT_SLICE.
            while True:
                step = _WAIT_SLICE
                if deadline >= 0.0:
                    step = deadline - _now()
                    if step <= 0.0:
                        break
                    if step > _WAIT_SLICE:
                        step = _WAIT_SLICE
                with nogil:
                    ready = pf_ring_wait(&self.ring, <size_t>want, step)
                if ready or pf_ring_closed(&self.ring):
                    break
                PyErr_CheckSignals()
        avail = pf_ring_available(&self.ring)
        if <size_t>want < avail:
            avail = <size_t>want
        return _read_new(&self.ring, avail)

    def close(self):
        """Mark the end of the stream; wakes a blocked reader. Reads drain what
        is left; writes are still accepted."""
        pf_ring_close(&self.ring)
