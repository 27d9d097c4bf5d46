# cython: language_level=3, embedsignature=True
"""The picows transport's listener with its frame path in C: ``on_ws_frame`` hands each
whole binary frame's payload to the call's ``FrameSink`` as a pointer and a size, with
no Python object and no Python frame per message.

The listener is what picows calls; the transport's link owns it and does the rest.
Every other frame (text, fragments, control frames, frames while delivery is held,
oversize frames, frames with a reserved bit set) goes to ``link.other_frame``; a frame
path that must yield calls ``link.hold``, and a sink that raised ``link.fail``. The
connection's other events (connected, disconnected, writing paused and resumed) go to
the link as they are.

Yielding is for bursts: frames that arrive back to back (a backlog after a network
stall, a client sending faster than real time) must not keep the event loop from the
readers and the other calls. So the budget of frames before a yield counts a run of
frames that arrive less than ``BURST_GAP`` apart, and starts again after a gap; a
call paced in real time (one frame every 20 ms) never spends it, and never pays for
pausing and resuming its socket.

This module is compiled against picows' declarations (``picows.pxd``) and so
depends on its binary layout. Cython checks the size of every picows class it
uses when this module is imported, and the module refuses to import under a
picows release other than the one it was built with (major.minor), so that the
transport falls back to its Python listener instead of misreading memory.
"""
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from piopiy_fast._core.framesink cimport FrameSink

import picows

# Frames of one call closer together than this (seconds) are a burst.
BURST_GAP = 0.005


cdef extern from *:
    """
    #ifndef PF_PICOWS_VERSION
    #define PF_PICOWS_VERSION "unknown"
    #endif
    """
    const char *PF_PICOWS_VERSION


BUILT_WITH_PICOWS = PF_PICOWS_VERSION.decode()


def _release(version):
    return tuple(version.split(".")[:2])


if _release(picows.__version__) != _release(BUILT_WITH_PICOWS):
    raise ImportError(f"built against picows {BUILT_WITH_PICOWS}, "
                      f"found picows {picows.__version__}")


cdef class FrameListener(WSListener):
    """What picows calls for one connection: whole binary frames go to ``sink`` in C,
    everything else to ``link``.

    ``held`` sends every frame the slow way (set by the link: before it has a sink,
    while a fragmented message is begun, after a failure, while a burst's backlog
    waits); ``budget`` counts a burst's frames down to the next yield, from
    ``yield_every``. (Fields are declared in picows_listener.pxd.)
    """

    def __init__(self, link, Py_ssize_t max_message_bytes, int yield_every):
        self.link = link
        self.sink = None
        self.held = True
        self.max_message_bytes = max_message_bytes
        self.budget = self.yield_every = yield_every

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int woke
        cdef double previous
        cdef FrameSink sink = self.sink
        if (frame.msg_type == WSMsgType.BINARY and frame.fin and not self.held
                and sink is not None and frame.payload_size <= self.max_message_bytes
                and (frame.rsv1 | frame.rsv2 | frame.rsv3) == 0):
            try:
                previous = sink._last
                # picows keeps the payload valid until this method returns
                woke = sink.frame(<const unsigned char *>frame.payload_ptr,
                                  frame.payload_size)
                if sink._last - previous >= BURST_GAP:
                    self.budget = self.yield_every  # not a burst (yet)
                self.budget -= 1
                if woke or self.budget <= 0:
                    self.link.hold()
            except Exception as exc:
                self.link.fail(exc)
            return
        try:
            self.link.other_frame(transport, frame)
        except Exception as exc:
            self.link.fail(exc)

    cpdef is_user_specific_pong(self, WSFrame frame):
        # The answer to picows' own ping, unless it breaks a rule: a pong with a
        # reserved bit set goes to on_ws_frame, which fails the connection.
        return frame.msg_type == WSMsgType.PONG and (frame.rsv1 | frame.rsv2 | frame.rsv3) == 0

    cpdef on_ws_connected(self, WSTransport transport):
        self.link.connected(transport)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.link.disconnected()

    cpdef pause_writing(self):
        self.link.pause_writing()

    cpdef resume_writing(self):
        self.link.resume_writing()
