# cython: language_level=3
"""Declarations of src_cy/include/pf_ring.h and the RingBuffer class, for other
core modules to cimport:

    from piopiy_fast._core.ringbuffer cimport RingBuffer, pf_ring_write
    with nogil:
        pf_ring_write(&rb.ring, ptr, n)

One producer and one consumer; see pf_ring.h for the contract of each call.
"""
from libc.stdint cimport int16_t, uint64_t


cdef extern from "pf_ring.h" nogil:
    enum:
        PF_DROP_OLDEST
        PF_DROP_NEWEST

    ctypedef struct pf_ring:
        pass

    int pf_ring_init(pf_ring *r, size_t capacity, int policy)
    void pf_ring_free(pf_ring *r)
    size_t pf_ring_capacity(const pf_ring *r)
    int pf_ring_policy(const pf_ring *r)
    size_t pf_ring_write(pf_ring *r, const int16_t *src, size_t n)
    size_t pf_ring_read(pf_ring *r, int16_t *dst, size_t max)
    size_t pf_ring_available(pf_ring *r)
    uint64_t pf_ring_overruns(pf_ring *r)
    uint64_t pf_ring_written(pf_ring *r)
    uint64_t pf_ring_read_index(pf_ring *r)
    uint64_t pf_ring_write_index(pf_ring *r)
    int pf_ring_wait(pf_ring *r, size_t n, double timeout_s)
    void pf_ring_close(pf_ring *r)
    int pf_ring_closed(pf_ring *r)


cdef class RingBuffer:
    # Initialised in __cinit__, so every RingBuffer that exists has a usable ring.
    cdef pf_ring ring
