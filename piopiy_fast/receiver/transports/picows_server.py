"""The picows server, with a doorman in front of each connection for its request head.

picows reads an opening request of up to 16 KiB; past that it drops the connection
with no answer (a reset, when more of the request was on the way), and it has no
setting for it. And picows asks for a verdict on a request without saying who sent it.
So each accepted connection meets a :class:`_Doorman` first, which knows the peer's
address (admission gets it with the request) and reads the request head: a head that
ends within REQUEST_HEAD_BYTES is handed to picows' own protocol with every byte read so
far, and from then on the socket talks to picows directly (the doorman costs nothing per
frame); a longer one is answered 431 and the connection closed once the peer has stopped
sending, so that the answer is not lost to a reset.

``ws_create_server`` builds picows' protocol with no way to put anything in front, so
this builds it the same way itself (``WSProtocol``, picows 2.3's arguments). When the
installed picows' protocol takes other arguments, the server is picows' own and an
oversize head gets picows' answer, admission does not know the peer (``None``), and one
line says so.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Callable
from typing import Any

from picows import WSAutoPingStrategy, ws_create_server
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not in picows' stubs

from .base import ConnectionGate, format_address, refuse_busy

logger = logging.getLogger("piopiy_fast.transport")

# The longest request head (request line and headers) let through: picows' own limit.
REQUEST_HEAD_BYTES = 16 * 1024
# How long a refused connection may go on sending before it is closed regardless.
LINGER_SECONDS = 2.0

_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
              b"Content-Type: text/plain\r\nContent-Length: 32\r\n\r\n"
              b"Request header fields too large\n")


class _Doorman(asyncio.Protocol):
    """Reads a connection's request head, then hands the connection to picows, or
    answers 431."""

    __slots__ = ("_inner", "_transport", "_head", "_closer", "_peer", "_gate", "_made")

    def __init__(self, make_inner: Callable[[Callable[[Any], Any]], Any],
                 on_request: Callable[[Any, Any], Any], gate: ConnectionGate | None) -> None:
        self._peer: Any = None
        self._inner = make_inner(lambda request: on_request(request, self._peer))
        self._transport: Any = None
        self._head: bytearray | None = bytearray()  # None once refused
        self._closer: asyncio.TimerHandle | None = None
        self._gate = gate
        self._made = False  # picows' protocol has the connection

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._peer = transport.get_extra_info("peername")
        if self._gate is not None:
            release = self._gate.enter(format_address(self._peer))
            if release is None:  # the table is full: 503 now, before any request
                self._head = None
                self._closer = refuse_busy(transport)
                return
            # picows' protocol has the connection from here to its end, also after
            # the hand-over, when its connection_lost is called directly.
            self._inner.release = release
        # picows' handshake timeout runs from now: a head that never ends is closed too.
        self._made = True
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head is None:
            return  # refused: what follows is dropped
        start = max(0, len(head) - 3)
        head += data
        end = head.find(b"\r\n\r\n", start)
        if 0 <= end < REQUEST_HEAD_BYTES:
            self._hand_over(head)
        elif end >= 0 or len(head) >= REQUEST_HEAD_BYTES:
            self._refuse()

    def _hand_over(self, head: bytearray) -> None:
        transport, inner = self._transport, self._inner
        self._head = None
        transport.set_protocol(inner)
        view = memoryview(head)
        while view and not transport.is_closing():
            buffer = inner.get_buffer(len(view))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            inner.buffer_updated(size)
            view = view[size:]

    def _refuse(self) -> None:
        transport = self._transport
        self._head = None
        logger.info("request from %s refused: its head is over %d bytes (431)",
                    format_address(transport.get_extra_info("peername")), REQUEST_HEAD_BYTES)
        transport.write(_TOO_LARGE)
        if transport.can_write_eof():
            transport.write_eof()  # the peer reads the answer, then the end, and closes
        self._closer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def eof_received(self) -> bool:
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closer is not None:
            self._closer.cancel()
        if self._made:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._made:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._made:
            self._inner.resume_writing()


class _CountedProtocol(WSProtocol):  # type: ignore[misc]  # picows' protocol has no stubs
    """picows' protocol that gives its connection's slot back when the connection ends
    (``release``, set by the doorman; picows' frame path is untouched)."""

    release: Callable[[], None] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.release is not None:
            self.release()
        super().connection_lost(exc)


async def create_server(on_request: Callable[[Any, Any], Any], host: str, port: int, *,
                        logger_like: Any, open_timeout: float, pinging: bool,
                        ping_idle: float, ping_reply: float, max_frame_size: int,
                        read_buffer_bytes: int, ssl: ssl_module.SSLContext | None,
                        reuse_port: bool, connections: ConnectionGate | None = None) -> Any:
    """What ``picows.ws_create_server`` does with these settings, plus the doorman.

    ``on_request`` is called with each request and the peer's address. picows' own
    answer to pings is off: the listener answers them (and bounds what waits to be sent).
    ``connections`` counts each connection from accept to close, refusing those past
    its limit (503).
    """
    settings = dict(host_port=None, ws_path=None, is_client_side=False,
                    logger=logger_like,
                    disconnect_on_exception=True, websocket_handshake_timeout=open_timeout,
                    enable_auto_ping=pinging, auto_ping_idle_timeout=ping_idle,
                    auto_ping_reply_timeout=ping_reply,
                    auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
                    enable_auto_pong=False, max_frame_size=max_frame_size,
                    extra_headers=None, read_buffer_init_size=read_buffer_bytes)

    def picows_protocol(factory: Callable[[Any], Any]) -> Any:
        return _CountedProtocol(ws_listener_factory=factory, **settings)

    try:
        WSProtocol(ws_listener_factory=lambda request: None, **settings)
    except TypeError as exc:
        logger.warning("picows transport: an oversize request head gets picows' answer "
                       "(its protocol takes other arguments: %s); connections count "
                       "toward max_calls from their request only", exc)
        return await ws_create_server(
            lambda request: on_request(request, None), host, port, ssl=ssl,
            logger_name=logger_like, enable_auto_pong=False,
            websocket_handshake_timeout=open_timeout, enable_auto_ping=pinging,
            auto_ping_idle_timeout=ping_idle, auto_ping_reply_timeout=ping_reply,
            max_frame_size=max_frame_size, read_buffer_init_size=read_buffer_bytes,
            reuse_port=reuse_port)

    def doorman() -> _Doorman:
        return _Doorman(picows_protocol, on_request, connections)

    loop = asyncio.get_running_loop()
    try:
        import aiofastnet  # what picows serves with when it is installed (it requires it)
    except ImportError:
        return await loop.create_server(doorman, host, port, ssl=ssl, reuse_port=reuse_port)
    return await aiofastnet.create_server(loop, doorman, host, port, ssl=ssl,
                                          reuse_port=reuse_port)
