# cython: language_level=3
"""FrameListener for other Cython modules: picows' WSListener with the frame path in C."""
from picows.picows cimport WSFrame, WSListener, WSTransport

from piopiy_fast._core.framesink cimport FrameSink


cdef class FrameListener(WSListener):
    cdef public FrameSink _sink
    cdef public object _on_binary
    cdef public bint _held
    cdef public int _budget
    cdef public int _yield_every
    cdef public Py_ssize_t _max_message_bytes

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame)
