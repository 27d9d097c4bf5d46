"""The receiver inside an ``aiohttp.web`` application.

The application's server owns the port; the receiver gets each request routed to
:meth:`AiohttpTransport.handler` and runs its calls exactly as on its own transports::

    from aiohttp import web
    from piopiy_fast import StreamServer
    from piopiy_fast.receiver.transports.aiohttp import AiohttpTransport

    receiver = AiohttpTransport()
    server = StreamServer(transport=receiver, on_call=on_call)

    async def start(app): await server.start()      # binds nothing
    async def stop(app): await server.close()

    app = web.Application()
    app.router.add_get("/stream", receiver.handler)
    app.on_startup.append(start)
    app.on_shutdown.append(stop)    # before aiohttp waits for open handlers

The handshake is decided before the WebSocket response is prepared: a refusal is an
ordinary HTTP response with its status and body; a request that is not a WebSocket
upgrade gets 426. A connection that arrives before the ``StreamServer`` has started,
or after it stopped accepting, is refused with 503. The server's ``on_shutdown`` must
close the ``StreamServer``: aiohttp waits for every open handler after its shutdown
hooks, and a call's handler runs until its call ends.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl as ssl_module
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

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

NOT_ACCEPTING = Rejection(503, "The receiver is not accepting calls\n")
NOT_WEBSOCKET = Rejection(426, "This endpoint takes WebSocket connections\n")
DROPPED = 1006


class AiohttpLink:
    """An ``aiohttp`` WebSocket response behind the :class:`~.base.Link` interface.

    Args:
        ws: The prepared WebSocket response.
        handshake: Its opening request.
    """

    def __init__(self, ws: web.WebSocketResponse, handshake: Handshake) -> None:
        self._ws = ws
        self.handshake = handshake
        self._sent: tuple[int, str] | None = None  # our close, once sent
        self._closed_by_us = asyncio.Event()
        self._sink: FrameSink | None = None
        self._on_text: Callable[[str], object] | None = None

    async def pump(self, sink: FrameSink, on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended.

        Args:
            sink: The call's frame sink; each binary message goes to ``sink.feed``.
            on_text: Called with each text message.
        """
        self._sink, self._on_text = sink, on_text
        receive = self._ws.receive
        sleep = asyncio.sleep
        binary, text = WSMsgType.BINARY, WSMsgType.TEXT
        budget = YIELD_EVERY
        # The hot loop, as on the other transports: receive() returns queued messages
        # without suspending, so the countdown lets readers and other calls run.
        while True:
            message = await receive()
            kind = message.type
            if kind is binary:
                budget -= 1
                if self._sink.feed(message.data) or not budget:
                    budget = YIELD_EVERY
                    await sleep(0)
            elif kind is text:
                budget -= 1
                self._on_text(message.data)
                if not budget:
                    budget = YIELD_EVERY
                    await sleep(0)
            else:
                return await self._ended(message)

    async def _ended(self, message: Any) -> CloseInfo:
        """How the connection ended, from the message that ended the receive loop."""
        kind = message.type
        if kind is WSMsgType.CLOSE:
            # The peer closed first; aiohttp answered with the same code.
            code, reason = int(message.data), str(message.extra or "")
            return close_info((code, reason), (code, reason), received_first=True)
        if kind is WSMsgType.CLOSING and self._sent is not None:
            # We closed: wait for the peer's answer, which our close() reads.
            await self._closed_by_us.wait()
            answer = self._ws.close_code
            received = None if answer in (None, DROPPED) else (int(answer), "")
            return close_info(received, self._sent, received_first=False)
        if kind is WSMsgType.ERROR:
            # A message over max_msg_size (1009), a missed pong, a broken frame:
            # aiohttp has closed with the code it names.
            code = self._ws.close_code or DROPPED
            return CloseInfo(int(code), str(message.data or ""), False)
        return CloseInfo(DROPPED, "", False)

    def redirect(self, sink: FrameSink, on_text: Callable[[str], object]) -> None:
        """Deliver the messages after this one to another call (a reconnection)."""
        self._sink, self._on_text = sink, on_text

    async def send_text(self, text: str) -> None:
        """Send one text message; ConnectionError once the connection is closing."""
        if self._ws.closed or self._sent is not None:
            raise ConnectionError("the connection is closed")
        try:
            await self._ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionError("the connection is closed") from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason``; wait for the closing handshake."""
        if self._sent is None:
            self._sent = (code, reason)
        try:
            await self._ws.close(code=code, message=reason.encode())
        finally:
            self._closed_by_us.set()


class AiohttpTransport(TransportOptions):
    """The receiver's calls through an ``aiohttp.web`` route.

    :meth:`listen` (what ``StreamServer.start`` calls) binds nothing: it starts
    accepting the requests the application routes to :meth:`handler`.
    Compression is off: audio does not compress and deflate state would cost memory
    per call.

    Args:
        **options: As for :class:`~.base.TransportOptions`: ``max_message_bytes``
            (aiohttp ends a call whose message is larger with 1009),
            ``ping_interval`` (aiohttp's heartbeat; it waits half of it for the
            pong), ``close_timeout``.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.accepting = False
        self.links: set[AiohttpLink] = set()
        self.sessions: set[asyncio.Future[None]] = set()
        self._admit: Admit | None = None
        self._session: Callable[[Link, Any], Awaitable[None]] | None = None

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False,
                     connections: ConnectionGate | None = None) -> Listener:
        """Start accepting the requests routed to :meth:`handler`; ``host``, ``port``,
        ``ssl`` and ``reuse_port`` are the application server's."""
        self._admit, self._session = admit, session
        self.accepting = True
        return HostedListener(self)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """The request handler to route the platform's connections to
        (``app.router.add_get(path, transport.handler)``).

        Args:
            request: The opening request.

        Returns:
            The refusal, or the WebSocket response once its call has ended.
        """
        ws = web.WebSocketResponse(
            max_msg_size=self.max_message_bytes, heartbeat=self.ping_interval,
            timeout=self.close_timeout, compress=False)
        if not ws.can_prepare(request).ok:
            return _response(NOT_WEBSOCKET)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        handshake = Handshake(request.raw_path, request.headers,
                              format_address(peer) if peer else request.remote or "-")
        admit, session = self._admit, self._session
        if not self.accepting or admit is None or session is None:
            return _response(NOT_ACCEPTING)
        verdict = admit(handshake)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if isinstance(verdict, Rejection):
            return _response(verdict)
        await ws.prepare(request)
        link = AiohttpLink(ws, handshake)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.links.add(link)
        self.sessions.add(done)
        try:
            await session(link, verdict)
        finally:
            self.links.discard(link)
            self.sessions.discard(done)
            done.set_result(None)
        return ws


def _response(rejection: Rejection) -> web.Response:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade"} \
        if rejection.status == 426 else None
    return web.Response(status=rejection.status, text=rejection.text, headers=headers)
