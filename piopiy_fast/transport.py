"""The receiver's one seam to a WebSocket library.

The receiver needs little from a transport: admit or reject an opening handshake,
then, per accepted connection, hand every binary message to one callable and every
text message to another, send text back, and close. :class:`WebsocketsTransport`
(the default) does this with ``websockets``' asyncio server;
:class:`~piopiy_fast.transport_picows.PicowsTransport` does it with picows, the fast
option. Any other library can take their place by offering the same methods
(``listen``, and ``Link.pump`` / ``send_text`` / ``close``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl as ssl_module
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

logger = logging.getLogger("piopiy_fast.transport")

# Frames handled before the receive loop must let others run: 32 frames of 20 ms is
# 0.64 s of audio, well inside the 2 s a ring holds by default.
YIELD_EVERY = 32


@dataclass(frozen=True, slots=True)
class Handshake:
    """An opening request as the receiver sees it. ``path`` includes the query string."""

    path: str
    headers: Mapping[str, str]
    remote: str

    @property
    def route(self) -> str:
        """The path without its query string: safe to log (queries may carry secrets)."""
        return self.path.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Refuse a handshake with an HTTP status and a short body."""

    status: int
    text: str


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How a connection ended: close code and reason, and whether it was clean."""

    code: int | None
    reason: str
    clean: bool


Admit = Callable[[Handshake], Awaitable["Rejection | Any"]]
"""Decide on a handshake: a Rejection refuses it; anything else is the ticket given to
``session`` with the accepted link."""


class Link(Protocol):
    """One accepted WebSocket connection."""

    handshake: Handshake

    async def pump(self, on_binary: Callable[[bytes], object],
                   on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended.

        When ``on_binary`` returns True (it woke a reader), and at least every
        ``YIELD_EVERY`` frames, yield to the event loop before the next message, so
        that a burst of queued frames cannot outrun the readers it feeds.
        """

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Listener(Protocol):
    """A listening server: its bound port, and a way to stop it."""

    port: int

    async def close(self) -> None:
        """Stop accepting, close every open link (1001 going away), wait for sessions."""


class Transport(Protocol):
    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None) -> Listener: ...


# -- websockets -----------------------------------------------------------------------------

class _RedactSecrets(logging.Filter):
    """websockets logs request lines and headers at debug level: drop query strings
    (tokens, signatures) and credential header values."""

    _query = re.compile(r"\?\S*")
    _credentials = frozenset({"authorization", "proxy-authorization", "cookie"})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if args and isinstance(args, tuple):
            if (len(args) == 2 and isinstance(args[0], str)
                    and args[0].lower() in self._credentials):
                args = (args[0], "<redacted>")
            record.args = tuple(self._query.sub("?<redacted>", a) if isinstance(a, str) else a
                                for a in args)
        return True


_ws_logger = logging.getLogger("piopiy_fast.websockets")
_ws_logger.addFilter(_RedactSecrets())


class WebsocketsLink:
    """A ``websockets`` server connection behind the :class:`Link` interface."""

    __slots__ = ("_ws", "handshake")

    def __init__(self, ws: ServerConnection, handshake: Handshake) -> None:
        self._ws = ws
        self.handshake = handshake

    async def pump(self, on_binary: Callable[[bytes], object],
                   on_text: Callable[[str], object]) -> CloseInfo:
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
                if type(message) is bytes:
                    budget -= 1
                    if on_binary(message) or not budget:
                        budget = YIELD_EVERY
                        await sleep(0)
                else:
                    on_text(message)  # type: ignore[arg-type]  # text frames arrive as str
        except ConnectionClosed as closed:
            return _close_info(closed)

    async def send_text(self, text: str) -> None:
        await self._ws.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)


class WebsocketsListener:
    __slots__ = ("_server", "port")

    def __init__(self, server: Any) -> None:
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close(close_connections=True)
        await self._server.wait_closed()


class WebsocketsTransport:
    """The default transport, on ``websockets``' asyncio server.

    ``max_message_bytes`` bounds one message (a larger one ends that call with 1009);
    ``ping_interval`` / ``ping_timeout`` detect a dead peer. Compression is off: audio
    does not compress and deflate state would cost memory per call.
    """

    def __init__(self, *, max_message_bytes: int = 1 << 16, ping_interval: float | None = 20.0,
                 ping_timeout: float | None = 20.0, close_timeout: float = 5.0,
                 open_timeout: float = 10.0, max_queue: int = 16) -> None:
        self.max_message_bytes = max_message_bytes
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout
        self.max_queue = max_queue

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None) -> Listener:
        tickets: weakref.WeakKeyDictionary[ServerConnection, tuple[Handshake, Any]] = (
            weakref.WeakKeyDictionary())

        async def process_request(ws: ServerConnection, request: Any) -> Any:
            remote = _format_address(ws.remote_address)
            handshake = Handshake(request.path, request.headers, remote)
            verdict = await admit(handshake)
            if isinstance(verdict, Rejection):
                return ws.respond(verdict.status, verdict.text)
            tickets[ws] = (handshake, verdict)
            return None

        async def handler(ws: ServerConnection) -> None:
            handshake, ticket = tickets.pop(ws)
            await session(WebsocketsLink(ws, handshake), ticket)

        server = await serve(
            handler, host, port,
            process_request=process_request,
            compression=None,
            max_size=self.max_message_bytes,
            max_queue=self.max_queue,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            open_timeout=self.open_timeout,
            ssl=ssl,
            logger=_ws_logger,
        )
        return WebsocketsListener(server)


def _close_info(closed: ConnectionClosed) -> CloseInfo:
    """The peer's close frame when there was one; else ours (we failed the connection,
    1009 for a message too big, say); else 1006, the connection just dropped."""
    frame = closed.rcvd or closed.sent
    if frame is None:
        return CloseInfo(1006, "", False)
    clean = closed.rcvd is not None and closed.sent is not None and frame.code in (1000, 1001)
    return CloseInfo(int(frame.code), frame.reason, clean)


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)

