"""A transport without sockets: the platform's side of a connection, in the same process.

For tests, this package's and an application's: the receiver runs its real admission
(auth, ``max_calls``), its real calls and readers; only the bytes skip the network. ::

    transport = MemoryTransport()
    async with StreamServer(transport=transport, on_call=on_call):
        peer = await transport.connect("/stream?listen_mode=both&voice_quality=8000")
        await peer.send(frame_bytes)
        await peer.close()
        info = await peer.closed        # how the connection ended
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...audio import FrameSink
from .base import (
    YIELD_EVERY,
    Admit,
    CloseInfo,
    ConnectionGate,
    Handshake,
    HostedListener,
    Link,
    Listener,
    Rejection,
)

_CLOSE = object()


class MemoryPeer:
    """The platform's end of one in-memory connection.

    Attributes:
        refused: The receiver's answer when it refused the handshake, else None.
        received: The text messages the receiver sent, in order.
        closed: Resolves to how the connection ended, as the receiver saw it.
    """

    def __init__(self, link: MemoryLink | None, refused: Rejection | None = None) -> None:
        self._link = link
        self.refused = refused
        self.received: list[str] = link.sent if link is not None else []
        self.closed: asyncio.Future[CloseInfo] = (
            link.ended if link is not None else _done(CloseInfo(None, "refused", False)))

    async def send(self, message: bytes | str) -> None:
        """One binary (bytes) or text (str) message to the receiver."""
        if self._link is None or self._link.gone:
            raise ConnectionError("the connection is closed")
        await self._link.inbox.put(message)

    async def close(self, code: int = 1000, reason: str = "") -> CloseInfo:
        """Close from the platform's side (the receiver answers it); how it ended."""
        if self._link is not None and not self._link.gone:
            await self._link.inbox.put((_CLOSE, code, reason, True))
        return await self.closed

    async def drop(self) -> CloseInfo:
        """Lose the connection without a close (the receiver sees 1006)."""
        if self._link is not None and not self._link.gone:
            await self._link.inbox.put((_CLOSE, 1006, "", False))
        return await self.closed


class MemoryLink:
    """The receiver's end: the :class:`~.base.Link` interface over queues."""

    def __init__(self, handshake: Handshake) -> None:
        self.handshake = handshake
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: list[str] = []
        self.ended: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
        self.gone = False
        self._sink: FrameSink | None = None
        self._on_text: Callable[[str], object] | None = None

    async def pump(self, sink: FrameSink, on_text: Callable[[str], object]) -> CloseInfo:
        self._sink, self._on_text = sink, on_text
        budget = YIELD_EVERY
        while True:
            message = await self.inbox.get()
            if type(message) is tuple and message[0] is _CLOSE:
                _, code, reason, clean = message
                return self._end(CloseInfo(code, reason, clean and code in (1000, 1001)))
            budget -= 1
            if isinstance(message, bytes):
                woke = self._sink.feed(message)
            else:
                self._on_text(message)
                woke = False
            if woke or not budget:
                budget = YIELD_EVERY
                await asyncio.sleep(0)

    def redirect(self, sink: FrameSink, on_text: Callable[[str], object]) -> None:
        self._sink, self._on_text = sink, on_text

    async def send_text(self, text: str) -> None:
        if self.gone:
            raise ConnectionError("the connection is closed")
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The receiver closes: the platform's side answers at once."""
        if not self.gone:
            await self.inbox.put((_CLOSE, code, reason, True))
            await asyncio.shield(self.ended)

    def _end(self, info: CloseInfo) -> CloseInfo:
        self.gone = True
        if not self.ended.done():
            self.ended.set_result(info)
        return info


class MemoryTransport:
    """Connections made by :meth:`connect`, in this process, through the receiver's own
    admission and sessions."""

    def __init__(self) -> None:
        self.accepting = False
        self.links: set[MemoryLink] = set()
        self.sessions: set[asyncio.Task[None]] = set()
        self._admit: Admit | None = None
        self._session: Callable[[Link, Any], Awaitable[None]] | None = None

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False,
                     connections: ConnectionGate | None = None) -> Listener:
        # ``connections`` goes unused: a connection in memory holds no descriptor and
        # has no handshake to wait for; admission's own count of calls applies.
        self._admit, self._session = admit, session
        self.accepting = True
        return HostedListener(self)

    async def connect(self, path: str = "/stream", headers: Mapping[str, str] | None = None,
                      remote: str = "memory") -> MemoryPeer:
        """Open a connection as the platform would: the handshake is admitted or
        refused, then a session runs for it."""
        if not self.accepting or self._admit is None or self._session is None:
            raise ConnectionRefusedError("the receiver is not accepting connections")
        handshake = Handshake(path, dict(headers or {}), remote)
        verdict = self._admit(handshake)
        if asyncio.iscoroutine(verdict) or isinstance(verdict, Awaitable):
            verdict = await verdict
        if isinstance(verdict, Rejection):
            return MemoryPeer(None, verdict)
        link = MemoryLink(handshake)
        self.links.add(link)
        task = asyncio.ensure_future(self._session(link, verdict))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)
        link.ended.add_done_callback(lambda _: self.links.discard(link))
        return MemoryPeer(link)


def _done(info: CloseInfo) -> asyncio.Future[CloseInfo]:
    future: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
    future.set_result(info)
    return future
