# cython: language_level=3
"""Declarations of src_cy/include/pf_codec.h for other core modules to cimport:

    from piopiy_fast._core.codec cimport pf_l16le_deinterleave_i16

All functions are static inline, allocate nothing and may run without the GIL.
Byte input may be unaligned; int16/float pointers must be aligned.
"""
from libc.stdint cimport int16_t, uint8_t

# Samples from which the core releases the GIL around its work. Below it,
# releasing costs more than the work, and when another thread is waiting for the
# GIL, getting it back can take a whole switch interval (5 ms), so a receiver that
# released it on every 20 ms frame would crawl as soon as the application ran a
# Python thread of its own (docs/benchmarks.md has the figures).
cdef enum:
    NOGIL_MIN_SAMPLES = 16384


cdef extern from "pf_codec.h" nogil:
    void pf_l16le_to_i16(const uint8_t *src, int16_t *dst, size_t n)
    void pf_l16le_to_f32(const uint8_t *src, float *dst, size_t n, float scale)
    void pf_l16le_deinterleave_i16(const uint8_t *src, int16_t *left, int16_t *right,
                                   size_t frames)
    void pf_i16_to_l16le(const int16_t *src, uint8_t *dst, size_t n)
    void pf_f32_to_i16_sat(const float *src, int16_t *dst, size_t n, float scale)
    void pf_deinterleave_i16(const int16_t *src, int16_t *left, int16_t *right,
                             size_t frames)
    void pf_interleave_i16(const int16_t *left, const int16_t *right, int16_t *dst,
                           size_t frames)
    int16_t pf_ulaw_to_i16(uint8_t code)
    uint8_t pf_i16_to_ulaw(int16_t s)
    int16_t pf_alaw_to_i16(uint8_t code)
    uint8_t pf_i16_to_alaw(int16_t s)
    void pf_ulaw_decode(const uint8_t *src, int16_t *dst, size_t n)
    void pf_alaw_decode(const uint8_t *src, int16_t *dst, size_t n)
    void pf_ulaw_encode(const int16_t *src, uint8_t *dst, size_t n)
    void pf_alaw_encode(const int16_t *src, uint8_t *dst, size_t n)
