from libc.stdint cimport int16_t


cdef extern from "pf_resample.h" nogil:
    enum: PF_RS_BLOCK
    ctypedef struct pf_fir_bank:
        int up, down, hist
    ctypedef struct pf_resampler:
        int channels
    int pf_fir_bank_init(pf_fir_bank *b, const double *taps, size_t ntaps, int up, int down)
    void pf_fir_bank_free(pf_fir_bank *b)
    int pf_rs_init(pf_resampler *s, const pf_fir_bank *fir, int channels, size_t start)
    void pf_rs_free(pf_resampler *s)
    void pf_rs_reset(pf_resampler *s)
    size_t pf_rs_out_count(const pf_resampler *s, size_t n)
    size_t pf_rs_block_out_max(const pf_fir_bank *fir)
    size_t pf_rs_block_i16(pf_resampler *s, const int16_t *const *inp, ptrdiff_t in_stride,
                           size_t n, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride)
    size_t pf_rs_block_f32(pf_resampler *s, const float *const *inp, ptrdiff_t in_stride,
                           size_t n, float *out, ptrdiff_t out_chan_step, ptrdiff_t out_stride)
    void pf_rs_to_i16(const float *src, int16_t *dst, size_t n)
    const char *pf_rs_kernel_name()
    const char *pf_rs_select_kernels(const char *force)


# Argument checks shared by the core's constructors (they raise errors.ValidationError).
cdef int check_rate(str name, object rate) except -1
cdef int check_channels(object channels) except -1
cdef str check_quality(object quality)


cdef class FilterBank:
    """A shipped filter laid out as a polyphase bank; immutable, shared."""
    cdef pf_fir_bank bank
    cdef readonly int up, down
    cdef readonly int center     # centre tap index, in samples at up * in_rate


cdef class Resampler:
    cdef pf_resampler state
    cdef FilterBank fir          # None when the rates are equal
    cdef float *scratch          # one block of float output, all channels
    cdef readonly int in_rate, out_rate, channels
    cdef readonly str quality, dtype
    cdef readonly double delay
    cdef readonly bint aligned   # the filter's delay trimmed: output k at input time k/out_rate
    cdef long long consumed      # input samples per channel since the last reset
    cdef long long produced      # output samples per channel since the last reset

    cdef Py_ssize_t block_out_max(self) noexcept nogil
    cdef Py_ssize_t block_i16_planar(self, const int16_t **inp, Py_ssize_t n,
                                     int16_t **out) noexcept nogil
    cdef Py_ssize_t tail_block_i16_planar(self, int16_t **out) noexcept nogil
    cdef Py_ssize_t tail_remaining(self) noexcept nogil
    cdef object _checked(self, samples)
    cdef Py_ssize_t _tail_block_f32(self, float[:, ::1] out)
