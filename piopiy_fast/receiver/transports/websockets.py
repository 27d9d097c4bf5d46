"""The pure-Python transport, on ``websockets``' asyncio server.

``transport="auto"`` takes it when picows is not installed, or when the application's
auth hook is a coroutine function (only this transport can await it during the
handshake).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as ssl_module
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ...redaction import redacting_logger
from .base import (
    YIELD_EVERY,
    Admit,
    CloseInfo,
    ConnectionGate,
    Handshake,
    Link,
    Listener,
    Rejection,
    TransportOptions,
    close_info,
    format_address,
    refuse_busy,
)
from .tcp import tune

if TYPE_CHECKING:
    from ...audio import FrameSink

logger = logging.getLogger("piopiy_fast.transport")
# websockets traces request lines and headers at debug level.
_ws_logger = redacting_logger("piopiy_fast.websockets")


class BoundedConnection(ServerConnection):
    """A ``websockets`` server connection that ends itself (1008) when more than
    ``max_unsent_bytes`` wait to be sent: websockets answers every ping at once, and
    a peer that sends pings and reads nothing would grow the server without bound.
    With a ``gate``, it holds a slot from accept to close; past the gate's limit it is
    answered 503 at once, and websockets never sees it."""

    max_unsent_bytes = 1 << 20  # set per transport on a subclass
    gate: ConnectionGate | None = None  # likewise
    _release: Callable[[], None] | None = None
    _refused: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.gate is not None:
            self._release = self.gate.enter(
                format_address(transport.get_extra_info("peername")))
            if self._release is None:
                self._refused = refuse_busy(transport)
                return
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused is not None:
            self._refused.cancel()
            return
        if self._release is not None:
            self._release()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        # Refused: nothing to tell websockets; None lets the transport close.
        if self._refused is None:
            super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return  # refused at accept: what follows is dropped
        super().data_received(data)
        transport = self.transport
        unsent = transport.get_write_buffer_size()
        if unsent > self.max_unsent_bytes and not transport.is_closing():
            route = "-" if self.request is None else self.request.path.split("?", 1)[0]
            logger.warning("stream %s from %s dropped: the peer reads nothing "
                           "(%d bytes unsent)", route, format_address(self.remote_address),
                           unsent)
            self.protocol.fail(1008, "the peer reads nothing")
            transport.abort()


class WebsocketsLink:
    """A ``websockets`` server connection behind the :class:`~.base.Link` interface.

    Args:
        ws: The accepted connection.
        handshake: Its opening request.
    """

    __slots__ = ("_ws", "handshake", "_sink", "_on_text")

    def __init__(self, ws: ServerConnection, handshake: Handshake) -> None:
        self._ws = ws
        self.handshake = handshake

    async def pump(self, sink: FrameSink, on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended.

        Args:
            sink: The call's frame sink; each binary message goes to ``sink.feed``.
            on_text: Called with each text message.
        """
        self._sink, self._on_text = sink, on_text
        recv = self._ws.recv
        sleep = asyncio.sleep
        budget = YIELD_EVERY
        try:
            # The hot loop: one await and one call per message, and a countdown.
            # recv() returns queued messages without suspending, so without the
            # countdown one call's burst (a whole socket read, hundreds of frames)
            # would run before any reader or other call gets the loop.
            while True:
                message = await recv()
                budget -= 1
                if type(message) is bytes:
                    if self._sink.feed(message) or not budget:
                        budget = YIELD_EVERY
                        await sleep(0)
                else:
                    # Text counts too: a flood of it must not hold the loop either.
                    self._on_text(message)  # type: ignore[arg-type]  # text frames arrive as str
                    if not budget:
                        budget = YIELD_EVERY
                        await sleep(0)
        except ConnectionClosed as closed:
            return _close_info(closed)

    def redirect(self, sink: FrameSink, on_text: Callable[[str], object]) -> None:
        """Deliver the messages after this one to another call (a reconnection)."""
        self._sink, self._on_text = sink, on_text

    async def send_text(self, text: str) -> None:
        """Send one text message; ConnectionError once the connection is closing."""
        try:
            await self._ws.send(text)
        except ConnectionClosed as closed:
            raise ConnectionError("the connection is closed") from closed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason``; wait for the closing handshake."""
        await self._ws.close(code, reason)


class WebsocketsListener:
    """A listening ``websockets`` server."""

    __slots__ = ("_server", "port")

    def __init__(self, server: Any) -> None:
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    async def stop_accepting(self) -> None:
        """Close the listening sockets; open connections go on."""
        self._server.close(close_connections=False)

    async def close(self) -> None:
        """Stop accepting, close every open connection (1001 going away), wait."""
        self._server.close(close_connections=True)
        await self._server.wait_closed()


class WebsocketsTransport(TransportOptions):
    """The pure-Python transport, on ``websockets``' asyncio server. Compression is
    off: audio does not compress and deflate state would cost memory per call.

    Args:
        max_queue: Messages websockets queues for a call before it stops reading.
        **options: As for :class:`~.base.TransportOptions`.
    """

    def __init__(self, *, max_queue: int = 16, **options: Any) -> None:
        super().__init__(**options)
        self.max_queue = max_queue

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False,
                     connections: ConnectionGate | None = None) -> Listener:
        connection_class = type("BoundedConnection", (BoundedConnection,),
                                {"max_unsent_bytes": self.max_unsent_bytes,
                                 "gate": connections})
        tickets: weakref.WeakKeyDictionary[ServerConnection, tuple[Handshake, Any]] = (
            weakref.WeakKeyDictionary())

        async def process_request(ws: ServerConnection, request: Any) -> Any:
            remote = format_address(ws.remote_address)
            handshake = Handshake(request.path, request.headers, remote)
            verdict = admit(handshake)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if isinstance(verdict, Rejection):
                return ws.respond(verdict.status, verdict.text)
            tickets[ws] = (handshake, verdict)
            return None

        async def handler(ws: ServerConnection) -> None:
            handshake, ticket = tickets.pop(ws)
            tune(ws.transport.get_extra_info("socket"))
            await session(WebsocketsLink(ws, handshake), ticket)

        server = await serve(
            handler, host, port,
            process_request=process_request,
            create_connection=connection_class,
            compression=None,
            max_size=self.max_message_bytes,
            max_queue=self.max_queue,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            open_timeout=self.open_timeout,
            ssl=ssl,
            logger=_ws_logger,
            # passed on to loop.create_server
            reuse_port=reuse_port,
        )
        return WebsocketsListener(server)


def _close_info(closed: ConnectionClosed) -> CloseInfo:
    rcvd, sent = closed.rcvd, closed.sent
    return close_info(None if rcvd is None else (int(rcvd.code), rcvd.reason),
                      None if sent is None else (int(sent.code), sent.reason),
                      received_first=bool(closed.rcvd_then_sent))
