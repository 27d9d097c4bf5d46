"""The receiver inside an ASGI application (FastAPI, Starlette, or any ASGI server).

The web application's server owns the port and the sockets; the receiver gets each
WebSocket connection routed to :attr:`AsgiTransport.app` and runs its calls exactly as
on its own transports (same admission, same calls, same readers)::

    receiver = AsgiTransport()
    server = StreamServer(transport=receiver, on_call=on_call)   # binds nothing
    app = FastAPI(lifespan=lifespan)      # lifespan: ``async with server: yield``
    app.router.add_websocket_route("/stream", receiver.app)

The handshake is decided before ``websocket.accept``. A refusal is answered with its
HTTP status and body through the ASGI ``websocket.http.response`` extension where the
server offers it (uvicorn, hypercorn, daphne do); elsewhere by a close (1008) before
the accept, which the server answers with HTTP 403. A connection that arrives before
the ``StreamServer`` has started, or after it stopped accepting, is refused with 503.

What the ASGI server does for the receiver on its own transports is the server's own
business here: pings (uvicorn's ``--ws-ping-interval``), the largest message it reads
(``--ws-max-size``; the receiver then ends a call whose message is larger than
``max_message_bytes`` with 1009, as its own transports do), and flow control on the
messages it has read and not yet handed over. So ``StreamServer``'s ``host``, ``port``,
``ssl``, ``reuse_port``, ``ping_interval``, ``ping_timeout`` and ``max_frame_bytes`` do
not apply: give this transport its ``max_message_bytes`` and the server its own limits.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl as ssl_module
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from websockets.datastructures import Headers

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
    TransportOptions,
    close_info,
    format_address,
)

if TYPE_CHECKING:
    from ...audio import FrameSink

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NOT_ACCEPTING = Rejection(503, "The receiver is not accepting calls\n")
HTTP_RESPONSE = "websocket.http.response"
# A refusal where the server cannot send an HTTP response: a close before the accept,
# which the ASGI server answers with HTTP 403.
REFUSED_CLOSE = 1008
DROPPED = 1006  # a disconnect's code when the connection dropped without a close frame


class AsgiLink:
    """One accepted ASGI WebSocket connection behind the :class:`~.base.Link` interface.

    Args:
        handshake: Its opening request.
        receive: The ASGI ``receive`` of the connection.
        send: The ASGI ``send`` of the connection.
        max_message_bytes: The largest message; a larger one ends the call (1009).
        close_timeout: How long a close waits for the peer's answer.
    """

    def __init__(self, handshake: Handshake, receive: Receive, send: Send, *,
                 max_message_bytes: int, close_timeout: float) -> None:
        self.handshake = handshake
        self._receive = receive
        self._send = send
        self._max = max_message_bytes
        self._close_timeout = close_timeout
        self._sent: tuple[int, str] | None = None  # our close, once sent
        self._pumping = False
        self._draining = False
        self.ended: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
        self._sink: FrameSink | None = None
        self._on_text: Callable[[str], object] | None = None

    async def pump(self, sink: FrameSink, on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended.

        Args:
            sink: The call's frame sink; each binary message goes to ``sink.feed``.
            on_text: Called with each text message.
        """
        self._sink, self._on_text = sink, on_text
        receive = self._receive
        sleep = asyncio.sleep
        limit = self._max
        budget = YIELD_EVERY
        self._pumping = True
        try:
            # The hot loop, as on the other transports: an ASGI server's receive()
            # returns queued messages without suspending, so the countdown lets readers
            # and other calls run during a burst.
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if self._sent is not None:
                        continue  # closing: what the peer still sends is not read
                    budget -= 1
                    data = message.get("bytes")
                    if data is not None:
                        if len(data) > limit:
                            await self._too_big(len(data))
                            continue
                        if self._sink.feed(data) or not budget:
                            budget = YIELD_EVERY
                            await sleep(0)
                    else:
                        text = message.get("text") or ""
                        if len(text) > limit // 4 and len(text.encode()) > limit:
                            await self._too_big(len(text.encode()))
                            continue
                        self._on_text(text)
                        if not budget:
                            budget = YIELD_EVERY
                            await sleep(0)
                elif kind == "websocket.disconnect":
                    return self._end(message)
        finally:
            self._pumping = False

    def redirect(self, sink: FrameSink, on_text: Callable[[str], object]) -> None:
        """Deliver the messages after this one to another call (a reconnection)."""
        self._sink, self._on_text = sink, on_text

    async def send_text(self, text: str) -> None:
        """Send one text message; ConnectionError once the connection is closing."""
        if self._sent is not None or self.ended.done():
            raise ConnectionError("the connection is closed")
        try:
            await self._send({"type": "websocket.send", "text": text})
        except (OSError, RuntimeError) as exc:
            # ASGI servers report a connection gone as an OSError (uvicorn's
            # ClientDisconnected) or a RuntimeError (a send after the close).
            raise ConnectionError("the connection is closed") from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason``; wait (up to ``close_timeout``) for the
        peer's answer."""
        if self.ended.done():
            return
        if self._sent is None:
            self._sent = (code, reason)
            try:
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
            except (OSError, RuntimeError):
                pass  # already gone: the disconnect says how
        try:
            if self._pumping or self._draining:
                # The pump (or another close) reads the disconnect.
                await asyncio.wait_for(asyncio.shield(self.ended), self._close_timeout)
            else:
                self._draining = True
                await asyncio.wait_for(self._drain(), self._close_timeout)
        except TimeoutError:
            pass

    async def _drain(self) -> None:
        """Read (and drop) what the peer still sends until the disconnect."""
        while not self.ended.done():
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self._end(message)

    async def _too_big(self, size: int) -> None:
        """A message over the limit: the call ends with 1009, as on the other
        transports (the pump goes on reading until the peer's answer)."""
        self._sent = (1009, f"message of {size} bytes over the limit of {self._max}")
        try:
            await self._send({"type": "websocket.close", "code": 1009,
                              "reason": self._sent[1]})
        except (OSError, RuntimeError):
            pass

    def _end(self, message: Message) -> CloseInfo:
        code = int(message.get("code") or 1005)
        received = None if code == DROPPED else (code, str(message.get("reason") or ""))
        sent = self._sent
        if sent is None and received is not None:
            sent = received  # the ASGI server answered the peer's close itself
        info = close_info(received, sent, received_first=self._sent is None)
        if not self.ended.done():
            self.ended.set_result(info)
        return info


class AsgiTransport(TransportOptions):
    """The receiver's calls through an ASGI application's WebSocket route.

    :meth:`listen` (what ``StreamServer.start`` calls) binds nothing: it starts
    accepting the connections the web application routes to :attr:`app`.

    Args:
        max_message_bytes: The largest message; a larger one ends that call with 1009.
        close_timeout: How long a close waits for the peer's answer.
    """

    def __init__(self, *, max_message_bytes: int = 1 << 16, close_timeout: float = 5.0) -> None:
        super().__init__(max_message_bytes=max_message_bytes, close_timeout=close_timeout)
        self.accepting = False
        self.links: set[AsgiLink] = set()
        self.sessions: set[asyncio.Future[None]] = set()
        self._admit: Admit | None = None
        self._session: Callable[[Link, Any], Awaitable[None]] | None = None
        self.app = ReceiverApp(self)

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False,
                     connections: ConnectionGate | None = None) -> Listener:
        """Start accepting the connections routed to :attr:`app`; ``host``, ``port``,
        ``ssl`` and ``reuse_port`` are the web application server's."""
        self._admit, self._session = admit, session
        self.accepting = True
        return HostedListener(self)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one WebSocket connection: admit or refuse it, then its call.

        Args:
            scope: The connection's ASGI scope (type ``websocket``).
            receive: Its ASGI ``receive``.
            send: Its ASGI ``send``.
        """
        first = await receive()
        if first["type"] != "websocket.connect":
            return  # gone before it connected
        handshake = handshake_of(scope)
        admit, session = self._admit, self._session
        if not self.accepting or admit is None or session is None:
            verdict: Any = NOT_ACCEPTING
        else:
            verdict = admit(handshake)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        if isinstance(verdict, Rejection):
            await refuse(scope, send, verdict)
            return
        assert session is not None
        await send({"type": "websocket.accept"})
        link = AsgiLink(handshake, receive, send, max_message_bytes=self.max_message_bytes,
                        close_timeout=self.close_timeout)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.links.add(link)
        self.sessions.add(done)
        try:
            await session(link, verdict)
        finally:
            self.links.discard(link)
            self.sessions.discard(done)
            done.set_result(None)


class ReceiverApp:
    """The ASGI application to route the platform's WebSocket connections to (an
    object, not a function, so that Starlette's ``WebSocketRoute`` and ``Mount`` take
    it as an ASGI application)."""

    def __init__(self, transport: AsgiTransport) -> None:
        self._transport = transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._transport.serve(scope, receive, send)
        elif kind == "http":
            await send({"type": "http.response.start", "status": 426,
                        "headers": [(b"upgrade", b"websocket"), (b"connection", b"upgrade"),
                                    (b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body",
                        "body": b"This endpoint takes WebSocket connections\n"})
        elif kind == "lifespan":
            # Run as the whole application, it has nothing to start: the StreamServer
            # is started by whoever owns it.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return


def handshake_of(scope: Scope) -> Handshake:
    """The :class:`~.base.Handshake` of a WebSocket scope: the path as the peer sent it
    (``raw_path``, percent-encoding kept, with the query string), its headers (names
    case-insensitive, repeats kept), and its address."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope.get("path") or "/")
    query = scope.get("query_string") or b""
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    headers = Headers([(name.decode("latin-1"), value.decode("latin-1"))
                       for name, value in scope.get("headers") or ()])
    client = scope.get("client")
    return Handshake(path, headers, format_address(tuple(client)) if client else "-")


async def refuse(scope: Scope, send: Send, rejection: Rejection) -> None:
    """Answer a handshake with ``rejection``: its HTTP status and body where the server
    has the ``websocket.http.response`` extension, else a close before the accept
    (HTTP 403 from the server)."""
    if HTTP_RESPONSE in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": rejection.status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "websocket.http.response.body",
                    "body": rejection.text.encode()})
    else:
        await send({"type": "websocket.close", "code": REFUSED_CLOSE,
                    "reason": rejection.text.strip()})
