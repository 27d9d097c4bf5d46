"""The receiver's one seam to a WebSocket library.

The receiver needs little from a transport: admit or reject an opening handshake,
then, per accepted connection, hand every binary message to the call's ``FrameSink``
and every text message to a callable, send text back, and close.
:class:`~.picows.PicowsTransport` (what ``transport="auto"``, the default, takes when
picows is installed) does this with picows, handing frames to the sink in C;
:class:`~.websockets.WebsocketsTransport` does it with ``websockets``' asyncio server.
Any other library can take their place by offering the same methods (``listen``, and
``Link.pump`` / ``send_text`` / ``close``).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ...audio import FrameSink

# Frames handled before the receive loop must let others run: 32 frames of 20 ms is
# 0.64 s of audio, well inside the 2 s a ring holds by default.
YIELD_EVERY = 32

# How long a connection refused at accept may go on sending before it is closed
# regardless: closing with its request unread would reset it, and the peer could lose
# the answer.
REFUSAL_LINGER_SECONDS = 1.0

BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                 b"Content-Type: text/plain\r\nContent-Length: 15\r\n\r\nToo many calls\n")

# What may wait to be sent to one peer. Replies wait for the peer to read once the
# event loop's high-water mark (64 KiB) is passed, so a reading peer stays far under it.
MAX_UNSENT_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Handshake:
    """An opening request as the receiver sees it.

    Args:
        path: The request's path, query string included.
        headers: The request's headers.
        remote: The peer's address (``host:port``), ``-`` where a transport cannot
            know it.
    """

    path: str
    headers: Mapping[str, str]
    remote: str

    @property
    def route(self) -> str:
        """The path without its query string: safe to log (queries may carry secrets)."""
        return self.path.split("?", 1)[0]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Refuse a handshake with an HTTP status and a short body.

    Args:
        status: The HTTP status.
        text: The response body.
    """

    status: int
    text: str


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How a connection ended.

    Args:
        code: The close code (1006 when the connection dropped without one).
        reason: The close reason.
        clean: Whether both sides closed and the code is a normal end (1000, 1001).
    """

    code: int | None
    reason: str
    clean: bool


class ConnectionGate:
    """Counts a listener's connections from accept to close, opening handshakes and
    calls alike: each holds a file descriptor and can become a call. Past ``limit``, a
    new connection is answered 503 at once (:data:`BUSY_RESPONSE`) and closed, so a
    table full of peers that connect and never finish their handshake (until the open
    timeout drops them) turns new calls away with an answer, never a timeout.

    Args:
        limit: Connections at most (None: no bound).
        on_refused: Called with the peer's address of each connection refused.
    """

    __slots__ = ("limit", "open", "_on_refused")

    def __init__(self, limit: int | None,
                 on_refused: Callable[[str], object] | None = None) -> None:
        self.limit = limit
        self.open = 0
        self._on_refused = on_refused

    def enter(self, remote: str) -> Callable[[], None] | None:
        """A connection was accepted: its release (call it once it is closed; calling
        again does nothing), or None when the table is full and it is refused."""
        if self.limit is not None and self.open >= self.limit:
            if self._on_refused is not None:
                self._on_refused(remote)
            return None
        self.open += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open -= 1

        return release


def refuse_busy(transport: Any) -> asyncio.TimerHandle:
    """Answer 503 on a connection refused at accept, end our side, and close it once the
    peer has closed or REFUSAL_LINGER_SECONDS passed; returns the timer to cancel when
    the connection is lost first. Its protocol must drop what the peer sends."""
    transport.write(BUSY_RESPONSE)
    if transport.can_write_eof():
        transport.write_eof()
    return asyncio.get_running_loop().call_later(REFUSAL_LINGER_SECONDS, transport.close)


Admit = Callable[[Handshake], Any]
"""Decide on a handshake: a Rejection refuses it; anything else is the ticket given to
``session`` with the accepted link. The answer may be an awaitable of either, when the
application's own auth hook is a coroutine."""


class Link(Protocol):
    """One accepted WebSocket connection."""

    handshake: Handshake

    async def pump(self, sink: FrameSink, on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended.

        When the sink says a frame woke a reader, and at least every ``YIELD_EVERY``
        messages, yield to the event loop before the next message, so that a burst of
        queued frames cannot outrun the readers it feeds.

        Args:
            sink: The call's frame sink: each binary message goes to it
                (``sink.feed(data)``, or straight from the socket's buffer in C).
            on_text: Called with each text message.
        """

    def redirect(self, sink: FrameSink, on_text: Callable[[str], object]) -> None:
        """From the next message on, deliver to ``sink`` and ``on_text`` instead: the
        connection turned out to continue another call."""

    async def send_text(self, text: str) -> None:
        """Send one text message; ConnectionError once the connection is closing."""

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Listener(Protocol):
    """A listening server: its bound port, and a way to stop it."""

    port: int

    async def stop_accepting(self) -> None:
        """Close the listening socket (a load balancer moves on); open links go on."""

    async def close(self) -> None:
        """Stop accepting, close every open link (1001 going away), wait for sessions."""



class Hosted(Protocol):
    """A transport whose connections some other server accepts (a web application,
    or the test's memory): whether it takes new ones, its open links, their sessions."""

    accepting: bool
    links: Any
    sessions: Any


class HostedListener:
    """What a ``StreamServer`` holds for a :class:`Hosted` transport instead of a
    listening socket: stopping means refusing new connections (503), closing means
    closing the open ones too (1001 going away) and waiting for their sessions."""

    port = 0  # the other server owns the port

    def __init__(self, transport: Hosted) -> None:
        self._transport = transport

    async def stop_accepting(self) -> None:
        """Refuse new connections; open ones go on."""
        self._transport.accepting = False

    async def close(self) -> None:
        """Refuse new connections, close the open ones, wait for their sessions."""
        transport = self._transport
        transport.accepting = False
        await asyncio.gather(*(link.close(1001) for link in list(transport.links)),
                             return_exceptions=True)
        if transport.sessions:
            await asyncio.wait(set(transport.sessions))

class TransportOptions:
    """What every transport is told.

    Args:
        max_message_bytes: The largest message; a larger one ends that call with 1009.
        max_unsent_bytes: What may wait to be sent to a peer (pongs it asked for,
            replies) before its call ends with 1008: a peer that sends pings and never
            reads the pongs would otherwise grow the server without bound.
        ping_interval: Seconds without data from the peer before a ping is sent
            (None: no pings).
        ping_timeout: Seconds to wait for the pong before the call ends.
        close_timeout: How long the closing handshake may take.
        open_timeout: How long the opening handshake may take.
    """

    def __init__(self, *, max_message_bytes: int = 1 << 16,
                 max_unsent_bytes: int = MAX_UNSENT_BYTES,
                 ping_interval: float | None = 20.0, ping_timeout: float | None = 20.0,
                 close_timeout: float = 5.0, open_timeout: float = 10.0) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_unsent_bytes = max_unsent_bytes
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout


class Transport(Protocol):
    """A WebSocket library behind the seam."""

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False,
                     connections: ConnectionGate | None = None) -> Listener:
        """Listen on ``host``:``port``. ``reuse_port`` sets ``SO_REUSEPORT``, so that
        several processes can listen on one port and the kernel shares connections
        among them. ``connections`` counts each connection from accept to close and
        refuses those past its limit (503)."""
        ...


def close_info(received: tuple[int, str] | None, sent: tuple[int, str] | None, *,
               received_first: bool) -> CloseInfo:
    """How a connection ended, from the close frames each side sent (code, reason).

    The close frame of the side that closed first: the other side's is only its answer
    (a peer may answer our 1009 with 1000; the call still ended 1009). With neither,
    1006: the connection just dropped. Clean means both sides sent one and the code is
    a normal end (1000, 1001).

    Args:
        received: The peer's close frame, if any.
        sent: Ours, if any.
        received_first: Whether the peer's came first (when there are both).
    """
    if received is None or sent is None:
        frame = received or sent
        if frame is None:
            return CloseInfo(1006, "", False)
        return CloseInfo(frame[0], frame[1], False)
    code, reason = received if received_first else sent
    return CloseInfo(code, reason, code in (1000, 1001))


def format_address(address: Any) -> str:
    """``host:port`` of a socket address (``[host]:port`` for IPv6)."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)

