"""The receiver's one seam to a WebSocket library.

The receiver needs little from a transport: admit or reject an opening handshake,
then, per accepted connection, hand every binary message to one callable and every
text message to another, send text back, and close.
:class:`~.websockets.WebsocketsTransport` (the default) does this with ``websockets``'
asyncio server; :class:`~.picows.PicowsTransport` does it with picows, the fast
option. Any other library can take their place by offering the same methods
(``listen``, and ``Link.pump`` / ``send_text`` / ``close``).
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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


Admit = Callable[[Handshake], Any]
"""Decide on a handshake: a Rejection refuses it; anything else is the ticket given to
``session`` with the accepted link. The answer may be an awaitable of either, when the
application's own auth hook is a coroutine."""


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

    async def send_text(self, text: str) -> None:
        """Send one text message; ConnectionError once the connection is closing."""

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Listener(Protocol):
    """A listening server: its bound port, and a way to stop it."""

    port: int

    async def close(self) -> None:
        """Stop accepting, close every open link (1001 going away), wait for sessions."""


class TransportOptions:
    """What every transport is told: the largest message (a larger one ends that call
    with 1009), pings to detect a dead peer, and how long the closing and opening
    handshakes may take."""

    def __init__(self, *, max_message_bytes: int = 1 << 16,
                 ping_interval: float | None = 20.0, ping_timeout: float | None = 20.0,
                 close_timeout: float = 5.0, open_timeout: float = 10.0) -> None:
        self.max_message_bytes = max_message_bytes
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout


class Transport(Protocol):
    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False) -> Listener:
        """Listen on ``host``:``port``. ``reuse_port`` sets ``SO_REUSEPORT``, so that
        several processes can listen on one port and the kernel shares connections
        among them."""
        ...


def close_info(received: tuple[int, str] | None, sent: tuple[int, str] | None) -> CloseInfo:
    """How a connection ended, from the close frames each side sent (code, reason).

    The peer's close frame when there was one; else ours (we failed the connection:
    1009 for a message too big, say); else 1006, the connection just dropped. Clean
    means both sides sent one and the code is a normal end (1000, 1001).
    """
    frame = received or sent
    if frame is None:
        return CloseInfo(1006, "", False)
    code, reason = frame
    clean = received is not None and sent is not None and code in (1000, 1001)
    return CloseInfo(code, reason, clean)


def format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)

