# cython: language_level=3
"""FrameListener for other Cython modules: picows' WSListener with the frame path in C."""
from picows.picows cimport WSFrame, WSListener, WSTransport

from piopiy_fast._core.framesink cimport FrameSink


cdef class FrameListener(WSListener):
    cdef public object link
    cdef public FrameSink sink
    cdef public bint held
    cdef public int budget
    cdef public int yield_every
    cdef public Py_ssize_t max_message_bytes

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame)
