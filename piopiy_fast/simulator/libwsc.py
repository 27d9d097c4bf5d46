"""``mod_audio_stream``'s current WebSocket client (libwsc), as the module drives it.

What it does, in the order it happens:

- It starts connecting when the stream starts and has ``connect_timeout`` (1 s by
  default) for DNS, TCP and the opening handshake; failing that, the module closes
  the stream (an error event, no audio ever sent).
- While connecting, the module reports it as connected, so every audio frame (and any
  text) is **queued**, up to 1024 messages; more are dropped.
- On the 101 the queue is flushed first, and only then the open callback runs and
  the module sends the metadata text: queued audio reaches the server **before** the
  metadata.
- With a heartbeat set, a ping with the payload ``ping`` goes out every
  ``heartbeat`` seconds whatever the traffic; pongs are not checked.
- A server's ping is answered with a pong of the same payload. A server's close is
  echoed with the same code and reason and the stream goes quiet: libwsc never
  reconnects, and the module keeps reading audio that goes nowhere.
- ``stop`` sends the optional final text, then close 1000 "Normal closure", and waits
  up to 1 s for the server's close before dropping the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Callable, Mapping

from .handshake import HandshakeRefused, libwsc_request
from .peer_events import PeerEvents
from .peer_socket import PeerSocket
from .ws_uri import WsTarget
from .wsframes import BINARY, CLOSE, PING, PONG, TEXT, FrameError, close_payload, parse_close

__all__ = ["LibwscClient", "MAX_QUEUE"]

MAX_QUEUE = 1024
CLOSE_WAIT = 1.0


class LibwscClient:
    """One stream's libwsc connection. ``metadata`` is sent on open (when not empty)."""

    generation = "current"

    def __init__(self, target: WsTarget, metadata: str = "", *, deflate: bool = False,
                 heartbeat: float = 0, connect_timeout: float = 1.0,
                 headers: Mapping[str, str] | None = None,
                 ssl: ssl_module.SSLContext | None = None,
                 mask_key: Callable[[], bytes] | None = None) -> None:
        self.target = target
        self.metadata = metadata
        self.deflate = deflate
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.headers = dict(headers or {})
        self.ssl = ssl
        self.mask_key = mask_key
        self.events = PeerEvents()
        self.state = "idle"  # idle, connecting, connected, closing, closed, failed
        self._queue: deque[tuple[int, bytes, int | None]] = deque()
        self._ws: PeerSocket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()

    # --- what the module calls ------------------------------------------------------

    def start(self) -> None:
        """Begin connecting (the module's ``client.connect()``)."""
        self.state = "connecting"
        self._tasks.append(asyncio.ensure_future(self._connect()))

    @property
    def accepting(self) -> bool:
        """The module's ``isConnected()``: true while connecting, too."""
        return self.state in ("connecting", "connected")

    def send_audio(self, payload: bytes, tag: int) -> None:
        """One audio message; ``tag`` is recorded in ``events.sent_tags`` once it is
        written (queued ones when the queue is flushed)."""
        self._send(BINARY, payload, tag)

    def send_text(self, text: str) -> None:
        self._send(TEXT, text.encode(), None)

    async def stop(self, text: str | None = None) -> None:
        """The module's cleanup: the final text (if any), then close 1000."""
        if text and self.accepting:
            self.send_text(text)
        if self.state == "connecting":
            # Not upgraded: libwsc aborts, nothing queued is sent.
            self._queue.clear()
            self._finish("failed", "stopped while connecting")
        elif self.state == "connected" and self._ws is not None:
            self.state = "closing"
            self._ws.send(CLOSE, close_payload(1000, "Normal closure"))
            self.events.closes_sent.append((1000, "Normal closure"))
            with contextlib.suppress(ConnectionError, OSError):
                await self._ws.drain()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), CLOSE_WAIT)
            self._finish("closed")
        await self._cancel_tasks()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- the connection -------------------------------------------------------------

    def _send(self, opcode: int, payload: bytes, tag: int | None) -> None:
        if self.state == "connecting":
            if len(self._queue) >= MAX_QUEUE:
                self.events.dropped += opcode == BINARY
                return
            self._queue.append((opcode, payload, tag))
        elif self.state == "connected" and self._ws is not None:
            self._write(opcode, payload, tag)
        elif opcode == BINARY:
            self.events.dropped += 1

    def _write(self, opcode: int, payload: bytes, tag: int | None) -> None:
        assert self._ws is not None
        self._ws.send(opcode, payload)
        if opcode == BINARY:
            self.events.record_audio(len(payload), tag)
        else:
            self.events.texts_sent.append(payload.decode())

    async def _connect(self) -> None:
        def request(key: str) -> bytes:
            return libwsc_request(self.target.host, self.target.port, self.target.target, key,
                                  deflate=self.deflate, headers=self.headers)
        try:
            self._ws, answer = await asyncio.wait_for(
                PeerSocket.open(self.target, request, strict_accept=False, ssl=self.ssl,
                                mask_key=self.mask_key), self.connect_timeout)
        except TimeoutError:
            self._finish("failed", f"Timeout (no connection in {self.connect_timeout:g} s)")
            return
        except HandshakeRefused as exc:
            self._finish("failed", f"WebSocket upgrade failed: {exc}")
            return
        except (OSError, ssl_module.SSLError) as exc:
            self._finish("failed", f"{type(exc).__name__}: {exc}")
            return
        if "permessage-deflate" in answer.get("sec-websocket-extensions", "").lower():
            # Compressing is not emulated: a server that accepts the offer gets
            # uncompressed frames it may refuse. Say so rather than pretend.
            self.events.notes.append("the server accepted permessage-deflate; "
                                     "frames are sent uncompressed")
        self.state = "connected"
        self.events.connections += 1
        self.events.opened_at.append(time.time())
        while self._queue:  # flushSendQueue, then the open callback
            self._write(*self._queue.popleft())
        if self.metadata:
            self._write(TEXT, self.metadata.encode(), None)
        self.events.opened.set()
        if self.heartbeat > 0:
            self._tasks.append(asyncio.ensure_future(self._pings()))
        await self._read()

    async def _pings(self) -> None:
        while self.state == "connected" and self._ws is not None:
            await asyncio.sleep(self.heartbeat)
            if self.state == "connected":
                self._ws.send(PING, b"ping")
                self.events.pings_sent.append(b"ping")

    async def _read(self) -> None:
        assert self._ws is not None
        while True:
            try:
                frame = await self._ws.next_frame()
            except FrameError as exc:
                self.events.errors.append(f"protocol error: {exc}")
                if self.state == "connected":
                    self._ws.send(CLOSE, close_payload(1002, str(exc)[:123]))
                self._finish("closed", f"protocol error: {exc}")
                return
            if frame is None:
                if self.state == "connected":
                    self.events.errors.append("Connection closed without WebSocket CLOSE")
                    self.events.closed_by.append((1006, "Abnormal closure", "transport"))
                self._finish("closed")
                return
            if frame.opcode == PING:
                self._ws.send(PONG, frame.payload)
            elif frame.opcode == PONG:
                self.events.pongs_received += 1
            elif frame.opcode == TEXT:
                self.events.received.append(frame.payload.decode("utf-8", "replace"))
            elif frame.opcode == CLOSE:
                code, reason = parse_close(frame.payload)
                if self.state == "connected":
                    self._ws.send(CLOSE, frame.payload[:125])
                    self.events.closed_by.append((code, reason, "server"))
                else:
                    self.events.closed_by.append((code, reason, "answer"))
                self._finish("closed")
                return

    def _finish(self, state: str, error: str | None = None) -> None:
        if self.state in ("closed", "failed"):
            return
        self.state = state
        if error:
            self.events.errors.append(error)
        if self._ws is not None:
            self._ws.abort()
        self.events.opened.set()
        self._closed.set()

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
