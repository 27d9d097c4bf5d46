"""The listener picows calls for each connection, compiled or in Python, and the choice.

The compiled ``FrameListener`` (``_core/picows_listener.pyx``) hands each whole binary
frame to the call's ``FrameSink`` in C; :class:`PythonFrameListener` is the same in
Python, for a build without the compiled one or a picows release it was not built
against. Either hands every other frame and the connection's events to its link
(:class:`~.picows.PicowsLink`), which owns it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from ...audio import FrameSink, picows_frame_listener

if TYPE_CHECKING:
    from ..._core.picows_listener import FrameListener

logger = logging.getLogger("piopiy_fast.transport")

_BINARY = WSMsgType.BINARY
_PONG = WSMsgType.PONG


class PythonFrameListener(WSListener):
    """The compiled ``FrameListener`` in Python: whole binary frames of an allowed size
    with no reserved bit set, while the link does not hold them, go to ``sink.feed``;
    every other frame to ``link.other_frame``.

    Args:
        link: The link that owns this listener (``other_frame``, ``hold``, ``fail``,
            ``connected``, ``disconnected``, ``pause_writing``, ``resume_writing``).
        max_message_bytes: The largest frame the fast path takes.
        yield_every: Frames in a row before the link must let the event loop run.
    """

    __slots__ = ("link", "sink", "held", "budget", "yield_every", "max_message_bytes")

    def __init__(self, link: Any, max_message_bytes: int, yield_every: int) -> None:
        super().__init__()
        self.link = link
        self.sink: FrameSink | None = None
        self.held = True
        self.max_message_bytes = max_message_bytes
        self.budget = self.yield_every = yield_every

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        try:
            sink = self.sink
            if (frame.msg_type is _BINARY and frame.fin and not self.held
                    and sink is not None and frame.payload_size <= self.max_message_bytes
                    and not (frame.rsv1 or frame.rsv2 or frame.rsv3)):
                woke = sink.feed(frame.get_payload_as_memoryview())
                self.budget -= 1
                if woke or self.budget <= 0:
                    self.link.hold()
                return
            self.link.other_frame(transport, frame)
        except Exception as exc:
            self.link.fail(exc)

    def is_user_specific_pong(self, frame: WSFrame) -> bool:
        # A pong with a reserved bit set goes to on_ws_frame, which fails the connection.
        return frame.msg_type is _PONG and not (frame.rsv1 or frame.rsv2 or frame.rsv3)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.link.connected(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.link.disconnected()

    def pause_writing(self) -> None:
        self.link.pause_writing()

    def resume_writing(self) -> None:
        self.link.resume_writing()


ListenerClass = type["FrameListener"] | type[PythonFrameListener]


def frame_listener(compiled: bool = True) -> ListenerClass:
    """The listener class a transport gives its links: the compiled one when ``compiled``
    and it loads, else the Python one (and one line says why the compiled one did not
    load).

    Args:
        compiled: Whether to try the compiled listener.
    """
    if not compiled:
        return PythonFrameListener
    try:
        return picows_frame_listener()
    except ImportError as exc:
        logger.warning("picows transport: compiled frame listener unavailable (%s); "
                       "frames take the Python path", exc)
        return PythonFrameListener
