"""The fast transport: ``picows`` (a Cython WebSocket library), best on uvloop.

Same contract as :class:`~.websockets.WebsocketsTransport`, different model
underneath: picows calls a listener for every frame straight from the socket read,
with no message queue and no task switch per message. Each connection is a
:class:`PicowsLink` that owns such a listener (:mod:`.picows_frames`): the compiled
``FrameListener`` hands each whole binary frame to the call's ``FrameSink`` as a
pointer and a size, so a frame costs no Python at all; the rest (text, fragments,
control frames) comes to the link, which makes messages of them with a
:class:`~.assembly.MessageAssembly` and answers pings and closes itself. When the
compiled listener cannot load (a build without it, or another picows release), the
same listener in Python takes its place, and one line is logged.

Two things picows decides synchronously, inside the socket read, that the receiver
would otherwise await:

- admission. The receiver's own checks (token, signed URL, max calls) answer at once;
  an application's auth hook that is a coroutine is driven here without a loop turn,
  which works for hooks that return without awaiting I/O. A hook that does wait is
  refused with 500 and logged, never admitted unchecked.
- pongs. picows would answer every ping itself, before the listener sees it (a ping
  with a reserved bit set too) and with no bound on what waits to be sent to a peer
  that does not read. Here the link answers, and ends a connection whose unsent bytes
  pass ``max_unsent_bytes``.

Around picows: the server it runs (``picows_server``) reads each request head before
picows does (to answer an oversize one 431, and so that admission knows the peer's
address); picows' log lines go through ``PicowsLog``, which puts a peer's protocol
violations at INFO; and the listener looks once a second for connections the kernel
has ended that the event loop missed (``drop_if_ended``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

from ...audio import FrameSink
from .assembly import Close, Failure, Message, MessageAssembly, Ping
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
)
from .picows_frames import ListenerClass, PythonFrameListener, frame_listener
from .picows_log import PicowsLog
from .picows_server import create_server
from .tcp import ended_by_kernel, tune

logger = logging.getLogger("piopiy_fast.transport")

# picows traces raw request bytes (query strings, tokens) below DEBUG and notes every
# connection at INFO, a peer's protocol violations too (PicowsLog lowers them from
# ERROR). WARNING keeps all that out of an application's logs; `piopiy-fast -v`/`-vv`
# lowers it to INFO/DEBUG, never below, so the raw trace stays off.
PICOWS_LOGGER = "piopiy_fast.picows"
READ_BUFFER_BYTES = 2048  # initial per-connection read buffer (picows' least); it grows on demand
_picows_logger = logging.getLogger(PICOWS_LOGGER)
_picows_logger.setLevel(logging.WARNING)
_picows_log = PicowsLog(_picows_logger)

_TEXT = WSMsgType.TEXT
_UNKNOWN_PEER = "-"

# How often the listener asks the kernel which of its connections it has already ended
# (see PicowsLink.drop_if_ended).
ENDED_CHECK_SECONDS = 1.0


class _AdmissionWouldWait(Exception):
    """The admission coroutine suspended; picows needs its answer now."""


class PicowsLink:
    """One picows connection behind the :class:`~.base.Link` interface.

    The link owns the listener picows calls (``listener``), which keeps the hot path and
    hands the link everything else: ``other_frame``, ``hold`` (yield before the next
    frame), ``fail`` (a callback raised), and the connection's events.

    Frames that arrive while delivery is held (before ``pump`` starts, or after a
    burst used up its budget and the event loop must run the readers) wait in a
    backlog as messages, and reading from the socket pauses until the backlog is
    drained.

    Args:
        handshake: The opening request, as admitted.
        ticket: What admission answered, for the session.
        listener_class: The listener to own (compiled or Python).
        max_message_bytes: The largest message (a larger one fails 1009).
        max_unsent_bytes: What may wait to be sent to the peer before the connection
            is dropped (1008).
        close_timeout: How long to wait for the peer's answer to our close.
        on_open: Called with the link once the connection is open.
    """

    __slots__ = ("handshake", "ticket", "listener", "_assembly", "_max_unsent_bytes",
                 "_close_timeout", "_on_open", "_ws", "_socket", "_sink", "_on_text",
                 "_holding", "_paused", "_failed", "_failure", "_backlog", "_gone",
                 "_ended", "_writable")

    def __init__(self, handshake: Handshake, ticket: Any, listener_class: ListenerClass, *,
                 max_message_bytes: int, max_unsent_bytes: int, close_timeout: float,
                 on_open: Callable[[PicowsLink], None]) -> None:
        self.handshake = handshake
        self.ticket = ticket
        self.listener = listener_class(self, max_message_bytes, YIELD_EVERY)
        self._assembly = MessageAssembly(max_message_bytes)
        self._max_unsent_bytes = max_unsent_bytes
        self._close_timeout = close_timeout
        self._on_open = on_open
        self._ws: WSTransport | None = None
        self._socket: Any = None
        self._sink: FrameSink | None = None
        self._on_text: Callable[[str], object] | None = None
        self._holding = True  # until pump() has the sink
        self._paused = False
        self._failed = False  # a callback raised: nothing more is delivered
        self._failure: tuple[int, str] | None = None  # how we failed the connection
        self._backlog: deque[str | bytes] = deque()
        self._gone = False
        self._ended: asyncio.Future[CloseInfo] | None = None
        self._writable: asyncio.Event | None = None

    @property
    def frames_in_c(self) -> bool:
        """Whether this link's listener hands binary frames to the sink in C."""
        return not isinstance(self.listener, PythonFrameListener)

    # -- the listener's calls ------------------------------------------------------------

    def connected(self, transport: WSTransport) -> None:
        self._ws = transport
        underlying = transport.underlying_transport
        self._socket = underlying.get_extra_info("socket")
        tune(self._socket)
        if self.handshake.remote == _UNKNOWN_PEER:  # served without the doorman
            self.handshake = Handshake(self.handshake.path, self.handshake.headers,
                                       format_address(underlying.get_extra_info("peername")))
        self._on_open(self)

    def disconnected(self) -> None:
        self._gone = True
        if self._writable is not None:
            self._writable.set()
        if not self._backlog or self._sink is None:
            self._finish()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.Event()
        self._writable.clear()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set()

    # -- the Link interface -------------------------------------------------------------

    async def pump(self, sink: FrameSink, on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended.

        Args:
            sink: The call's frame sink: binary messages go to it (in C on the
                compiled listener, else to ``sink.feed``).
            on_text: Called with each text message.
        """
        self._ended = asyncio.get_running_loop().create_future()
        self._sink = self.listener.sink = sink
        self._on_text = on_text
        self._drain()
        return await self._ended

    def redirect(self, sink: FrameSink, on_text: Callable[[str], object]) -> None:
        """Deliver the messages after this one to another call (a reconnection)."""
        self._sink = self.listener.sink = sink
        self._on_text = on_text

    async def send_text(self, text: str) -> None:
        """Send one text message; ConnectionError once the connection is closing."""
        ws = self._ws
        if ws is None or self._gone or ws.is_close_frame_sent:
            raise ConnectionError("the connection is closed")
        if self._writable is not None and not self._writable.is_set():
            await self._writable.wait()  # the peer is not reading: wait for the buffer
        ws.send(_TEXT, text.encode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, wait up to ``close_timeout`` seconds for the peer's answer,
        then drop the TCP connection."""
        ws = self._ws
        if ws is None or self._gone:
            return
        if not ws.is_close_frame_sent:
            ws.send_close(WSCloseCode(code), reason.encode())
        try:
            await asyncio.wait_for(ws.wait_disconnected(), self._close_timeout)
        except TimeoutError:
            ws.disconnect(graceful=False)
            await ws.wait_disconnected()

    # -- everything but a plain binary frame ---------------------------------------------

    def other_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """A frame off the hot path: made into a message (or a ping, a close, a
        failure) by the assembly."""
        outcome = self._assembly.frame(
            frame.msg_type.value, frame.fin, frame.rsv1 << 2 | frame.rsv2 << 1 | frame.rsv3,
            frame.get_payload_as_bytes())
        if type(outcome) is Message:
            self._backlog.append(outcome.data)
            if not self._holding:
                self._drain()
        elif type(outcome) is Ping:
            transport.send_pong(outcome.payload)
            self._bound_unsent(transport)
        elif type(outcome) is Close:
            # Answer the peer's close (or complete ours), then drop TCP.
            if not transport.is_close_frame_sent:
                code, reason = outcome.answer
                transport.send_close(WSCloseCode(code), reason.encode())
            transport.disconnect()
        elif type(outcome) is Failure:
            self._fail_connection(transport, outcome.code, outcome.reason)
        self._open_fast_path()

    def _open_fast_path(self) -> None:
        """Let the listener take whole binary frames itself only between messages, while
        delivery is not held and the connection has not failed."""
        self.listener.held = (self._holding or self._failed or self._failure is not None
                              or self._assembly.in_message)

    def _fail_connection(self, transport: WSTransport, code: int, reason: str) -> None:
        """The peer broke the protocol: close with ``code``; what it sent before still
        reaches the call."""
        self._failure = (code, reason)
        self.listener.held = True
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode())
        transport.disconnect()

    def _bound_unsent(self, transport: WSTransport) -> None:
        """Drop a peer that does not read what it asks for (pongs to a ping flood): past
        ``max_unsent_bytes`` waiting to be sent, the connection ends (1008)."""
        underlying = transport.underlying_transport
        unsent = underlying.get_write_buffer_size()
        if unsent <= self._max_unsent_bytes or self._failure is not None:
            return
        logger.warning("stream %s from %s dropped: the peer reads nothing (%d bytes unsent)",
                       self.handshake.route, self.handshake.remote, unsent)
        self._failure = (1008, "the peer reads nothing")
        self._assembly.ended = True  # nothing more is read from it
        self.listener.held = True
        underlying.abort()

    # -- holding back a burst ------------------------------------------------------------

    def hold(self) -> None:
        """Let the event loop run before the next message: the rest of this socket read
        waits in the backlog, and reading pauses (uvloop reads a socket several times
        per turn of the loop, so the end of one read is no yield). After the yield the
        budget of frames is whole again."""
        self._holding = self.listener.held = True
        self.listener.budget = self.listener.yield_every
        ws = self._ws
        if ws is not None and not self._gone:
            ws.underlying_transport.pause_reading()
            self._paused = True
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Deliver held messages (or the one message the slow branch just completed) on
        the hot path's budget, text and binary alike: a flood of events must yield to
        the event loop as audio does. Resume reading once none are left."""
        sink, on_text = self._sink, self._on_text
        if sink is None or on_text is None or self._failed:
            return
        listener = self.listener
        backlog = self._backlog
        try:
            while backlog:
                data = backlog.popleft()
                listener.budget -= 1
                if type(data) is bytes:
                    woke = sink.feed(data)
                else:
                    on_text(data)  # type: ignore[arg-type]  # text messages are str
                    woke = False
                if woke or listener.budget <= 0:
                    if backlog:
                        listener.budget = listener.yield_every
                        self._schedule_drain()
                    else:
                        self.hold()
                    return
        except Exception as exc:
            self.fail(exc)
            return
        self._holding = False
        self._open_fast_path()
        if self._gone:
            self._finish()
        elif self._paused and self._ws is not None:
            self._paused = False
            self._ws.underlying_transport.resume_reading()

    # -- the end --------------------------------------------------------------------------

    def drop_if_ended(self) -> bool:
        """Abort this connection if the kernel has already ended it; say whether it did.

        picows reads sockets through aiofastnet, which has the event loop watch each one
        (``add_reader``). When the kernel reports an error on a socket, uvloop calls the
        reader once more and stops watching it for good. A reset that arrives while data
        is still unread is missed that way: the reader reads the data, never the error,
        and the connection stays open here, holding its call, until something is written
        to it (the ping, 20 s later, or never when pings are off). The listener asks the
        kernel every ENDED_CHECK_SECONDS; aborting ends the call as any dropped
        connection does (1006)."""
        ws = self._ws
        if ws is None or self._gone or not ended_by_kernel(self._socket):
            return False
        ws.underlying_transport.abort()
        return True

    def fail(self, exc: Exception) -> None:
        """A callback raised: stop delivering; pump() raises it, and the receiver ends
        the call (1011) like with any other transport."""
        self._failed = self._holding = self.listener.held = True
        self._backlog.clear()
        if self._ended is not None and not self._ended.done():
            self._ended.set_exception(exc)

    def _finish(self) -> None:
        ended = self._ended
        if ended is None or ended.done():
            return
        ended.set_result(_close_info(self._ws, self._failure))


class PicowsListener:
    """A listening picows server and the links it accepted."""

    def __init__(self, server: asyncio.Server, links: set[PicowsLink],
                 sessions: set[asyncio.Task[None]]) -> None:
        self._server = server
        self._links = links
        self._sessions = sessions
        self.port: int = server.sockets[0].getsockname()[1]
        self._checker = asyncio.ensure_future(self._drop_ended_links())

    async def _drop_ended_links(self) -> None:
        while True:
            await asyncio.sleep(ENDED_CHECK_SECONDS)
            for link in list(self._links):
                link.drop_if_ended()

    async def stop_accepting(self) -> None:
        """Close the listening socket; the links accepted go on."""
        self._server.close()

    async def close(self) -> None:
        """Stop accepting, close every open link (1001 going away), wait for sessions."""
        self._checker.cancel()
        self._server.close()
        await asyncio.gather(*(link.close(1001) for link in list(self._links)),
                             return_exceptions=True)
        if self._sessions:
            await asyncio.wait(set(self._sessions))
        await self._server.wait_closed()


class PicowsTransport(TransportOptions):
    """The fast transport, on ``picows``; run the server on uvloop for the full gain.

    Args:
        compiled_listener: Hand binary frames to the call in C when the compiled
            listener loads (False: the frame path in Python, as when it cannot load).
        **options: As for :class:`~.base.TransportOptions`.
    """

    link_class = PicowsLink

    def __init__(self, *, compiled_listener: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.listener_class = frame_listener(compiled_listener)

    @property
    def frames_in_c(self) -> bool:
        """Whether this transport's links hand binary frames to the call in C."""
        return self.listener_class is not PythonFrameListener

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False,
                     connections: ConnectionGate | None = None) -> Listener:
        loop = asyncio.get_running_loop()
        links: set[PicowsLink] = set()
        listener_class, link_class = self.listener_class, self.link_class
        sessions: set[asyncio.Task[None]] = set()
        max_bytes = self.max_message_bytes
        max_unsent = self.max_unsent_bytes
        close_timeout = self.close_timeout

        async def run(link: PicowsLink) -> None:
            try:
                await session(link, link.ticket)
            finally:
                links.discard(link)

        def start_session(link: PicowsLink) -> None:
            links.add(link)
            task = loop.create_task(run(link))
            sessions.add(task)
            task.add_done_callback(sessions.discard)

        def on_request(request: WSUpgradeRequest,
                       peer: Any) -> WSListener | WSUpgradeResponseWithListener:
            path = request.path.decode("latin-1")
            remote = _UNKNOWN_PEER if peer is None else format_address(peer)
            handshake = Handshake(path, request.headers, remote)
            verdict = admit(handshake)
            try:
                if inspect.isawaitable(verdict):
                    verdict = _decide_now(verdict)
            except _AdmissionWouldWait:
                logger.error("stream %s from %s refused: its auth check awaited I/O, which "
                             "the picows transport cannot wait for", handshake.route, remote)
                verdict = Rejection(500, "Internal Server Error\n")
            if isinstance(verdict, Rejection):
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(verdict.status,
                                                            verdict.text.encode()), None)
            link = link_class(handshake, verdict, listener_class, max_message_bytes=max_bytes,
                              max_unsent_bytes=max_unsent, close_timeout=close_timeout,
                              on_open=start_session)
            return link.listener

        pinging = self.ping_interval is not None and self.ping_timeout is not None
        interval = self.ping_interval or 20.0
        server = await create_server(
            on_request, host, port,
            logger_like=_picows_log,
            open_timeout=self.open_timeout,
            pinging=pinging,
            ping_idle=interval,
            # picows wants the reply timeout within the idle one
            ping_reply=min(self.ping_timeout or interval, interval),
            max_frame_size=max_bytes,
            # picows starts each connection with a 16 KiB read buffer and grows it when
            # it fills; a 20 ms frame is at most 1.3 KiB, so 2 KiB holds one, a backlog
            # grows it, and a call's memory stays small.
            read_buffer_bytes=READ_BUFFER_BYTES,
            ssl=ssl,
            reuse_port=reuse_port,
            connections=connections,
        )
        return PicowsListener(server, links, sessions)


def _decide_now(admission: Awaitable[Any]) -> Any:
    """Run an application's coroutine auth hook to its end without the event loop, if it
    never waits."""
    coro: Coroutine[Any, Any, Any] = admission  # type: ignore[assignment]
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise _AdmissionWouldWait


def _close_info(ws: WSTransport | None, failure: tuple[int, str] | None) -> CloseInfo:
    if failure is not None:  # we failed the connection: our code says why
        return CloseInfo(failure[0], failure[1], False)
    handshake = ws.close_handshake if ws is not None else None
    if handshake is None:
        return CloseInfo(1006, "", False)
    # Code 0 in picows: the close frame named no code, which is 1005 on the wire.
    rcvd, sent = handshake.recv, handshake.sent
    return close_info(None if rcvd is None else (int(rcvd.code.value) or 1005, rcvd.reason),
                      None if sent is None else (int(sent.code.value) or 1005, sent.reason),
                      received_first=bool(handshake.recv_then_sent))
