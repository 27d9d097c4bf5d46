# cython: language_level=3, embedsignature=True
"""The picows transport's frame path in C: a ``WSListener`` whose ``on_ws_frame``
hands each whole binary frame's payload to the call's ``FrameSink`` as a pointer and
a size, with no Python object and no Python frame per message.

Everything else (text, fragments, close and control frames, frames while delivery
is held, oversize frames, frames with a reserved bit set) goes to ``_other_frame``, and a frame path that must
yield calls ``_hold``; both are Python methods of the subclass, the transport's
link, which also owns ``_fail`` (a callback raised).

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
    """Base of the picows link: the hot path of ``on_ws_frame``.

    ``_sink`` (a FrameSink) takes whole binary frames in C; without one,
    ``_on_binary`` takes them as bytes. ``_held`` sends every frame the slow way;
    ``_budget`` counts a burst's frames down to the next yield (``_hold``), from
    ``_yield_every``.
    (Fields are declared in picows_listener.pxd.)
    """

    def __cinit__(self, *args, **kwargs):
        self._held = True

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int woke
        cdef double previous
        cdef FrameSink sink = self._sink
        if (frame.msg_type == WSMsgType.BINARY and frame.fin and not self._held
                and frame.payload_size <= self._max_message_bytes
                and (frame.rsv1 | frame.rsv2 | frame.rsv3) == 0):
            try:
                if sink is not None:
                    previous = sink._last
                    # picows keeps the payload valid until this method returns
                    woke = sink.frame(<const unsigned char *>frame.payload_ptr,
                                      frame.payload_size)
                    if sink._last - previous >= BURST_GAP:
                        self._budget = self._yield_every  # not a burst (yet)
                else:
                    woke = 1 if self._on_binary(frame.get_payload_as_bytes()) else 0
                self._budget -= 1
                if woke or self._budget <= 0:
                    self._hold()
            except Exception as exc:
                self._fail(exc)
            return
        try:
            self._other_frame(transport, frame)
        except Exception as exc:
            self._fail(exc)
