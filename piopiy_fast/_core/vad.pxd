# cython: language_level=3
"""VoiceActivity for the frame sink to cimport: it hands each frame's bytes to
``frame`` (a pointer and a size, no Python object)."""
cimport cython
from libc.stdint cimport uint8_t, uint64_t


cdef extern from "pf_vad.h" nogil:
    ctypedef struct pf_vad_params:
        int frame
        int onset
        int hangover
        double margin_db
        double min_dbfs
        double rise_db
        double floor_dbfs

    ctypedef struct pf_vad_event:
        int speech
        uint64_t at

    ctypedef struct pf_vad:
        pf_vad_params p
        double floor_e
        int speaking
        uint64_t samples
        uint64_t frames, loud_frames
        uint64_t clipped
        int peak
        double energy
        double loud_energy

    void pf_vad_init(pf_vad *v, const pf_vad_params *p)
    size_t pf_vad_feed(pf_vad *v, const uint8_t *data, size_t n, size_t stride,
                       pf_vad_event *events, int max_events, int *n_events)
    size_t pf_vad_feed2(pf_vad *v0, pf_vad *v1, const uint8_t *data, size_t n,
                        pf_vad_event *ev0, int *got0, pf_vad_event *ev1, int *got1,
                        int max_events)
    int pf_vad_stop(pf_vad *v, pf_vad_event *ev)


@cython.final
cdef class VoiceActivity:
    cdef pf_vad vad[2]
    cdef readonly int source_rate, target_rate, channels
    cdef object _on_change
    cdef uint64_t _base_src          # source sample of the last timeline move
    cdef readonly long long base     # its timeline sample
    cdef readonly long long gaps     # timeline samples added by gaps

    cdef long long _timeline(self, uint64_t at) noexcept
    cdef int _emit(self, int channel, pf_vad_event *events, int n) except -1
    # One frame of L16 LE bytes: ``data`` must point at ``nbytes`` readable bytes.
    cdef int frame(self, const uint8_t *data, Py_ssize_t nbytes) except -1
    cdef int _check(self, int channel) except -1
