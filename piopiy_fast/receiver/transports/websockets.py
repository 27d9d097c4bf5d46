"""The default transport, on ``websockets``' asyncio server."""

from __future__ import annotations

import asyncio
import inspect
import ssl as ssl_module
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ...redaction import redacting_logger
from .base import (
    YIELD_EVERY,
    Admit,
    CloseInfo,
    Handshake,
    Link,
    Listener,
    Rejection,
    TransportOptions,
    close_info,
    format_address,
)
from .tcp import tune

# websockets traces request lines and headers at debug level.
_ws_logger = redacting_logger("piopiy_fast.websockets")


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
                budget -= 1
                if type(message) is bytes:
                    if on_binary(message) or not budget:
                        budget = YIELD_EVERY
                        await sleep(0)
                else:
                    # Text counts too: a flood of it must not hold the loop either.
                    on_text(message)  # type: ignore[arg-type]  # text frames arrive as str
                    if not budget:
                        budget = YIELD_EVERY
                        await sleep(0)
        except ConnectionClosed as closed:
            return _close_info(closed)

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as closed:
            raise ConnectionError("the connection is closed") from closed

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


class WebsocketsTransport(TransportOptions):
    """The default transport, on ``websockets``' asyncio server.

    ``max_message_bytes`` bounds one message (a larger one ends that call with 1009);
    ``ping_interval`` / ``ping_timeout`` detect a dead peer. Compression is off: audio
    does not compress and deflate state would cost memory per call.
    """

    def __init__(self, *, max_queue: int = 16, **options: Any) -> None:
        super().__init__(**options)
        self.max_queue = max_queue

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False) -> Listener:
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
                      None if sent is None else (int(sent.code), sent.reason))
