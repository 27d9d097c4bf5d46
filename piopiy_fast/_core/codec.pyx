# cython: language_level=3, embedsignature=True
"""L16 and G.711 conversions (Python face of pf_codec.h).

Byte input is any object with the buffer protocol that exports contiguous
bytes (bytes, bytearray, memoryview, mmap...); another object is a TypeError.
A byte count that does not hold whole samples (or whole sample pairs) is a
``piopiy_fast.errors.FrameError`` (the class piopiy_fast.audio hands the core:
see piopiy_fast/_core/errors.py).

Sample input is a numpy array of dtype int16 (or float32 where stated), of any
shape, taken in C order; another type or dtype is a TypeError. An array that
is not C-contiguous, aligned and in native byte order is first copied into one
that is (correct, but slower: pass contiguous arrays on hot paths).

Every function returns new objects. The GIL is released around conversions of
at least ``NOGIL_MIN`` samples; below that, releasing it costs more than the
work, and far more when another thread wants the GIL.
"""
cimport numpy as cnp
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, uint8_t

import numpy as np

from piopiy_fast._core import errors

cnp.import_array()

# From codec.pxd, shared by the codec, the resampler and the fused ingest path; the
# ring buffer's copies have their own threshold (ringbuffer.nogil_threshold()).
NOGIL_MIN = NOGIL_MIN_SAMPLES

cdef float _I16_TO_F32 = 1.0 / 32768.0
cdef float _F32_TO_I16 = 32768.0


cdef inline cnp.ndarray _samples(object obj, int typenum, str what):
    """obj as a C-contiguous, aligned, native-order array of typenum."""
    cdef cnp.ndarray a
    if not cnp.PyArray_Check(obj):
        raise TypeError(f"{what} must be a numpy {np.dtype(cnp.PyArray_DescrFromType(typenum))} "
                        f"array, got {type(obj).__name__}")
    a = <cnp.ndarray>obj
    if cnp.PyArray_TYPE(a) != typenum:
        raise TypeError(f"{what} must have dtype "
                        f"{np.dtype(cnp.PyArray_DescrFromType(typenum))}, got {a.dtype}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a)):
        a = np.array(a, dtype=cnp.PyArray_DescrFromType(typenum), order="C")
    return a


cdef inline object _new_1d(Py_ssize_t n, int typenum):
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return cnp.PyArray_EMPTY(1, dims, typenum, 0)


cdef inline object _new_bytes(Py_ssize_t n):
    return PyBytes_FromStringAndSize(NULL, n)


# ---- L16 ---------------------------------------------------------------

def l16_to_int16(data):
    """L16 bytes (little-endian int16) -> (n,) int16."""
    cdef Py_buffer view
    cdef size_t n
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len & 1:
            raise errors.FrameError(f"L16 data must hold whole 16-bit samples, got {view.len} bytes")
        n = <size_t>view.len >> 1
        out = _new_1d(<Py_ssize_t>n, cnp.NPY_INT16)
        if n >= NOGIL_MIN_SAMPLES:
            with nogil:
                pf_l16le_to_i16(<const uint8_t *>view.buf,
                                <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>out), n)
        else:
            pf_l16le_to_i16(<const uint8_t *>view.buf,
                            <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>out), n)
        return out
    finally:
        PyBuffer_Release(&view)


def l16_to_float32(data):
    """L16 bytes -> (n,) float32 scaled by 1/32768, so -32768 maps to -1.0."""
    cdef Py_buffer view
    cdef size_t n
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len & 1:
            raise errors.FrameError(f"L16 data must hold whole 16-bit samples, got {view.len} bytes")
        n = <size_t>view.len >> 1
        out = _new_1d(<Py_ssize_t>n, cnp.NPY_FLOAT32)
        if n >= NOGIL_MIN_SAMPLES:
            with nogil:
                pf_l16le_to_f32(<const uint8_t *>view.buf,
                                <float *>cnp.PyArray_DATA(<cnp.ndarray>out), n, _I16_TO_F32)
        else:
            pf_l16le_to_f32(<const uint8_t *>view.buf,
                            <float *>cnp.PyArray_DATA(<cnp.ndarray>out), n, _I16_TO_F32)
        return out
    finally:
        PyBuffer_Release(&view)


def l16_deinterleave(data):
    """Interleaved two-channel L16 bytes -> (left, right), two (n,) int16 arrays.

    The byte count must hold whole sample pairs (a multiple of 4)."""
    cdef Py_buffer view
    cdef size_t n
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len & 3:
            raise errors.FrameError(f"two-channel L16 data must hold whole sample pairs "
                             f"(4 bytes each), got {view.len} bytes")
        n = <size_t>view.len >> 2
        left = _new_1d(<Py_ssize_t>n, cnp.NPY_INT16)
        right = _new_1d(<Py_ssize_t>n, cnp.NPY_INT16)
        if n >= NOGIL_MIN_SAMPLES:
            with nogil:
                pf_l16le_deinterleave_i16(<const uint8_t *>view.buf,
                                          <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>left),
                                          <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>right), n)
        else:
            pf_l16le_deinterleave_i16(<const uint8_t *>view.buf,
                                      <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>left),
                                      <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>right), n)
        return left, right
    finally:
        PyBuffer_Release(&view)


def int16_to_l16(samples):
    """int16 array -> L16 bytes (little-endian), in C order."""
    cdef cnp.ndarray a = _samples(samples, cnp.NPY_INT16, "samples")
    cdef size_t n = <size_t>cnp.PyArray_SIZE(a)
    out = _new_bytes(<Py_ssize_t>(2 * n))
    cdef const int16_t *src = <const int16_t *>cnp.PyArray_DATA(a)
    cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(out)
    if n >= NOGIL_MIN_SAMPLES:
        with nogil:
            pf_i16_to_l16le(src, dst, n)
    else:
        pf_i16_to_l16le(src, dst, n)
    return out


def float32_to_l16(samples):
    """float32 array -> L16 bytes: scaled by 32768, rounded half to even,
    saturated to int16 (NaN gives 0)."""
    cdef cnp.ndarray a = _samples(samples, cnp.NPY_FLOAT32, "samples")
    cdef size_t n = <size_t>cnp.PyArray_SIZE(a)
    out = _new_bytes(<Py_ssize_t>(2 * n))
    cdef char *dst = PyBytes_AS_STRING(out)
    if n >= NOGIL_MIN_SAMPLES:
        with nogil:
            _f32_to_l16(<const float *>cnp.PyArray_DATA(a), <uint8_t *>dst, n)
    else:
        _f32_to_l16(<const float *>cnp.PyArray_DATA(a), <uint8_t *>dst, n)
    return out


cdef inline void _f32_to_l16(const float *src, uint8_t *dst, size_t n) noexcept nogil:
    # Convert in blocks through an aligned int16 scratch buffer on the stack:
    # the bytes object's storage is not guaranteed int16-aligned.
    cdef int16_t block[512]
    cdef size_t k
    while n:
        k = n if n < 512 else 512
        pf_f32_to_i16_sat(src, block, k, _F32_TO_I16)
        pf_i16_to_l16le(block, dst, k)
        src += k
        dst += 2 * k
        n -= k


# ---- G.711 ---------------------------------------------------------------

ctypedef void (*g711_decoder)(const uint8_t *src, int16_t *dst, size_t n) noexcept nogil
ctypedef void (*g711_encoder)(const int16_t *src, uint8_t *dst, size_t n) noexcept nogil


cdef object _g711_decode(data, g711_decoder decode):
    cdef Py_buffer view
    cdef size_t n
    cdef int16_t *dst
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = <size_t>view.len
        out = _new_1d(<Py_ssize_t>n, cnp.NPY_INT16)
        dst = <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>out)
        if n >= NOGIL_MIN_SAMPLES:
            with nogil:
                decode(<const uint8_t *>view.buf, dst, n)
        else:
            decode(<const uint8_t *>view.buf, dst, n)
        return out
    finally:
        PyBuffer_Release(&view)


cdef object _g711_encode(samples, g711_encoder encode):
    cdef cnp.ndarray a = _samples(samples, cnp.NPY_INT16, "samples")
    cdef size_t n = <size_t>cnp.PyArray_SIZE(a)
    out = _new_bytes(<Py_ssize_t>n)
    cdef const int16_t *src = <const int16_t *>cnp.PyArray_DATA(a)
    cdef uint8_t *dst = <uint8_t *>PyBytes_AS_STRING(out)
    if n >= NOGIL_MIN_SAMPLES:
        with nogil:
            encode(src, dst, n)
    else:
        encode(src, dst, n)
    return out


def ulaw_decode(data):
    """G.711 mu-law bytes -> (n,) int16."""
    return _g711_decode(data, pf_ulaw_decode)


def alaw_decode(data):
    """G.711 A-law bytes -> (n,) int16."""
    return _g711_decode(data, pf_alaw_decode)


def ulaw_encode(samples):
    """int16 array -> G.711 mu-law bytes, in C order."""
    return _g711_encode(samples, pf_ulaw_encode)


def alaw_encode(samples):
    """int16 array -> G.711 A-law bytes, in C order."""
    return _g711_encode(samples, pf_alaw_encode)


# ---- channels ------------------------------------------------------------

def deinterleave(samples):
    """(n*2,) or (n, 2) interleaved int16 -> (left, right), two (n,) arrays.

    An odd length is a FrameError; any other shape a ValueError."""
    cdef cnp.ndarray a = _samples(samples, cnp.NPY_INT16, "samples")
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef size_t n
    if nd == 1:
        if cnp.PyArray_DIM(a, 0) & 1:
            raise errors.FrameError(f"interleaved samples must hold whole pairs, "
                             f"got {cnp.PyArray_DIM(a, 0)} samples")
        n = <size_t>cnp.PyArray_DIM(a, 0) >> 1
    elif nd == 2 and cnp.PyArray_DIM(a, 1) == 2:
        n = <size_t>cnp.PyArray_DIM(a, 0)
    else:
        raise ValueError(f"interleaved samples must have shape (n*2,) or (n, 2), "
                         f"got {samples.shape}")
    left = _new_1d(<Py_ssize_t>n, cnp.NPY_INT16)
    right = _new_1d(<Py_ssize_t>n, cnp.NPY_INT16)
    if n >= NOGIL_MIN_SAMPLES:
        with nogil:
            pf_deinterleave_i16(<const int16_t *>cnp.PyArray_DATA(a),
                                <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>left),
                                <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>right), n)
    else:
        pf_deinterleave_i16(<const int16_t *>cnp.PyArray_DATA(a),
                            <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>left),
                            <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>right), n)
    return left, right


def interleave(left, right):
    """Two int16 arrays of equal size -> (n*2,) interleaved (left first).

    Different sizes are a ValueError."""
    cdef cnp.ndarray lft = _samples(left, cnp.NPY_INT16, "left")
    cdef cnp.ndarray rgt = _samples(right, cnp.NPY_INT16, "right")
    cdef size_t n = <size_t>cnp.PyArray_SIZE(lft)
    if <size_t>cnp.PyArray_SIZE(rgt) != n:
        raise ValueError(f"left and right must have the same size, "
                         f"got {cnp.PyArray_SIZE(lft)} and {cnp.PyArray_SIZE(rgt)}")
    out = _new_1d(<Py_ssize_t>(2 * n), cnp.NPY_INT16)
    if n >= NOGIL_MIN_SAMPLES:
        with nogil:
            pf_interleave_i16(<const int16_t *>cnp.PyArray_DATA(lft),
                              <const int16_t *>cnp.PyArray_DATA(rgt),
                              <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>out), n)
    else:
        pf_interleave_i16(<const int16_t *>cnp.PyArray_DATA(lft),
                          <const int16_t *>cnp.PyArray_DATA(rgt),
                          <int16_t *>cnp.PyArray_DATA(<cnp.ndarray>out), n)
    return out
