"""``mod_audio_stream``'s WebSocket client up to mid-2025 (IXWebSocket), as the module
drives it.

- Audio captured before the connection is open is **dropped** (the module sends only
  while the client is open); on open the module sends the metadata text first.
- With a heartbeat of N s, a ping ``ixwebsocket::heartbeat::Ns::K`` (K counting from
  0) goes out right after opening, then every N s; when the next one is due and no
  pong came back since the last, the client closes with 1011 "Ping timeout".
- A server's ping gets a pong with the same payload. A server's close is echoed with
  the same code and reason and the socket is closed.
- **Automatic reconnection** (on unless the channel sets ``STREAM_NO_RECONNECT``):
  after any close the client did not ask for (the server's close, a dropped
  connection, its own ping timeout) it connects again at once, then after 100 ms,
  200 ms, 400 ms... (at most 10 s) while connecting fails; each new connection sends
  the metadata again. Audio in the gap is dropped.
- ``stop`` sends the optional final text, then close 1000 "Normal closure", and waits
  a little (300 ms) for the server's close.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
import time
from collections.abc import Callable, Mapping

from .handshake import IXWEBSOCKET_USER_AGENT, HandshakeRefused, ixwebsocket_request
from .peer_events import PeerEvents
from .peer_socket import PeerSocket
from .ws_uri import WsTarget
from .wsframes import BINARY, CLOSE, PING, PONG, TEXT, FrameError, close_payload, parse_close

__all__ = ["IxWebSocketClient", "retry_wait"]

HANDSHAKE_TIMEOUT = 60.0
CLOSING_WAIT = 0.3


def retry_wait(retries: int) -> float:
    """Seconds before reconnection attempt ``retries + 1`` after a failed one:
    100 ms doubling, at most 10 s (the first reconnection is immediate)."""
    wait_ms = 2 ** retries * 100 if retries < 26 else 10_000
    return min(max(wait_ms, 1), 10_000) / 1000


class IxWebSocketClient:
    """One stream's IXWebSocket connection (reconnecting unless ``reconnect=False``)."""

    generation = "ixwebsocket"

    def __init__(self, target: WsTarget, metadata: str = "", *, heartbeat: float = 0,
                 reconnect: bool = True, headers: Mapping[str, str] | None = None,
                 user_agent: str = IXWEBSOCKET_USER_AGENT,
                 ssl: ssl_module.SSLContext | None = None,
                 mask_key: Callable[[], bytes] | None = None,
                 max_connections: int = 100) -> None:
        self.target = target
        self.metadata = metadata
        self.heartbeat = heartbeat
        self.reconnect = reconnect
        self.headers = dict(headers or {})
        self.user_agent = user_agent
        self.ssl = ssl
        self.mask_key = mask_key
        self.max_connections = max_connections  # a bound on a server that closes at once
        self.events = PeerEvents()
        self.state = "idle"  # idle, connecting, open, closing, closed, stopped
        self._ws: PeerSocket | None = None
        self._run: asyncio.Task[None] | None = None
        self._stopping = False
        self._pong_since_ping = True
        self._ping_count = 0
        self._closed = asyncio.Event()

    # --- what the module calls ------------------------------------------------------

    def start(self) -> None:
        self.state = "connecting"
        self._run = asyncio.ensure_future(self._loop())

    @property
    def accepting(self) -> bool:
        """The module's ``isConnected()``: the socket is open."""
        return self.state == "open"

    def send_audio(self, payload: bytes, tag: int) -> None:
        if self.state == "open" and self._ws is not None:
            self._ws.send(BINARY, payload)
            self.events.record_audio(len(payload), tag)
        else:
            self.events.dropped += 1

    def send_text(self, text: str) -> None:
        if self.state == "open" and self._ws is not None:
            self._ws.send(TEXT, text.encode())
            self.events.texts_sent.append(text)

    async def stop(self, text: str | None = None) -> None:
        if text:
            self.send_text(text)
        self._stopping = True
        if self.state == "open" and self._ws is not None:
            self._close(1000, "Normal closure")
            with contextlib.suppress(ConnectionError, OSError):
                await self._ws.drain()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed.wait()), CLOSING_WAIT)
        if self._run is not None and not self._run.done():
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._run
        if self._ws is not None:
            self._ws.abort()
        self.state = "stopped"
        self.events.opened.set()

    # --- the connection loop (WebSocket::run / checkConnection) ---------------------

    async def _loop(self) -> None:
        retries = 0
        first = True
        while not self._stopping:
            if not first and not self.reconnect:
                break
            if self.events.connections >= self.max_connections:
                self.events.errors.append(f"gave up after {self.max_connections} connections")
                break
            first = False
            if retries:
                await asyncio.sleep(retry_wait(retries - 1))
            self.state = "connecting"
            try:
                self._ws, _ = await asyncio.wait_for(
                    PeerSocket.open(self.target, self._request, strict_accept=True,
                                    ssl=self.ssl, mask_key=self.mask_key), HANDSHAKE_TIMEOUT)
            except (TimeoutError, HandshakeRefused, OSError, ssl_module.SSLError) as exc:
                self.events.errors.append(f"{type(exc).__name__}: {exc}")
                self.state = "closed"
                self.events.opened.set()
                if not self.reconnect:
                    break
                retries += 1
                continue
            retries = 0
            self.state = "open"
            self._closed.clear()
            self.events.connections += 1
            self.events.opened_at.append(time.time())
            if self.metadata:  # the module's open callback
                self.send_text(self.metadata)
            self.events.opened.set()
            pings = None
            if self.heartbeat > 0:
                self._heartbeat()  # one right away
                pings = asyncio.ensure_future(self._pings())
            try:
                await self._read()
            finally:
                if pings is not None:
                    pings.cancel()
            self._closed.set()
        if self.state != "stopped":
            self.state = "closed"
        self._closed.set()

    def _request(self, key: str) -> bytes:
        return ixwebsocket_request(self.target.host, self.target.port, self.target.target, key,
                                   secure=self.target.secure, headers=self.headers,
                                   user_agent=self.user_agent)

    def _heartbeat(self) -> None:
        assert self._ws is not None
        payload = f"ixwebsocket::heartbeat::{self.heartbeat:g}s::{self._ping_count}".encode()
        self._ping_count += 1
        self._pong_since_ping = False
        self._ws.send(PING, payload)
        self.events.pings_sent.append(payload)

    async def _pings(self) -> None:
        while self.state == "open":
            await asyncio.sleep(self.heartbeat)
            if self.state != "open":
                return
            if not self._pong_since_ping:
                self._close(1011, "Ping timeout")
                return
            self._heartbeat()

    def _close(self, code: int, reason: str) -> None:
        assert self._ws is not None
        self.state = "closing"
        self._ws.send(CLOSE, close_payload(code, reason))
        self.events.closes_sent.append((code, reason))
        asyncio.get_running_loop().call_later(CLOSING_WAIT, self._ws.abort)

    async def _read(self) -> None:
        assert self._ws is not None
        while True:
            try:
                frame = await self._ws.next_frame()
            except FrameError as exc:
                self.events.errors.append(f"protocol error: {exc}")
                self._ws.abort()
                return
            if frame is None:
                if self.state == "open":
                    self.events.closed_by.append((1006, "Abnormal closure", "transport"))
                self._ws.abort()
                return
            if frame.opcode == PING:
                self._ws.send(PONG, frame.payload)
            elif frame.opcode == PONG:
                self._pong_since_ping = True
                self.events.pongs_received += 1
            elif frame.opcode == TEXT:
                self.events.received.append(frame.payload.decode("utf-8", "replace"))
            elif frame.opcode == CLOSE:
                code, reason = parse_close(frame.payload)
                if self.state == "open":
                    self.state = "closing"
                    self._ws.send(CLOSE, close_payload(code, reason))
                    self.events.closed_by.append((code, reason, "server"))
                else:
                    self.events.closed_by.append((code, reason, "answer"))
                self._ws.abort()
                return
