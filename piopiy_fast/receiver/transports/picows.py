"""The fast transport: ``picows`` (a Cython WebSocket library), best on uvloop.

Same contract as :class:`~.websockets.WebsocketsTransport`, different model
underneath: picows calls a listener for every frame straight from the socket read,
with no message queue and no task switch per message. So the receive path here is a
method that hands each binary payload to the call and counts; the rest (text,
fragments, close frames, pings) takes a slower branch. That method is compiled
(``FrameListener``, built against picows' declarations) and gives the payload to the
call's ``FrameSink`` as a pointer and a size, so a frame costs no Python at all. When
the compiled listener cannot load (a build without it, or another picows release),
the same method in Python takes its place (:class:`_PythonFrameListener`), and one
line is logged.

Two things picows decides synchronously, inside the socket read, that the receiver
would otherwise await:

- admission. The receiver's own checks (token, signed URL, max calls) answer at once;
  an application's auth hook that is a coroutine is driven here without a loop turn,
  which works for hooks that return without awaiting I/O. A hook that does wait is
  refused with 500 and logged, never admitted unchecked.
- the peer's address is not known yet when the request is admitted, so
  ``Handshake.remote`` reads ``"-"`` during admission; the link's handshake (and so
  ``CallStream.remote``) has the real one.

Around picows: the server it runs (``picows_server``) reads each request head before
picows does, to answer an oversize one 431; picows' log lines go through ``PicowsLog``,
which puts a peer's protocol violations at INFO; and the listener looks once a second
for connections the kernel has ended that the event loop missed (``drop_if_ended``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

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

from ...audio import FrameSink, picows_frame_listener
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

_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
_CONTINUATION = WSMsgType.CONTINUATION
_UNKNOWN_PEER = "-"

# How often the listener asks the kernel which of its connections it has already ended
# (see _Link.drop_if_ended).
ENDED_CHECK_SECONDS = 1.0


class _AdmissionWouldWait(Exception):
    """The admission coroutine suspended; picows needs its answer now."""


class _PythonFrameListener(WSListener):
    """The hot path of the compiled ``FrameListener``, in Python: whole binary frames
    of an allowed size with no reserved bit set, while delivery is not held, go to
    ``_on_binary`` as bytes; every other frame to ``_other_frame``."""

    __slots__ = ("_sink", "_on_binary", "_held", "_budget", "_yield_every",
                 "_max_message_bytes")

    def __init__(self) -> None:
        super().__init__()
        self._sink: FrameSink | None = None  # the compiled listener's way in; unused here
        self._on_binary: Callable[[bytes], object] | None = None
        self._held = True
        self._budget = self._yield_every = YIELD_EVERY
        self._max_message_bytes = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        try:
            if (frame.msg_type is _BINARY and frame.fin and not self._held
                    and frame.payload_size <= self._max_message_bytes
                    and not (frame.rsv1 or frame.rsv2 or frame.rsv3)):
                woke = self._on_binary(frame.get_payload_as_bytes())  # type: ignore[misc]
                self._budget -= 1
                if woke or self._budget <= 0:
                    self._hold()
                return
            self._other_frame(transport, frame)
        except Exception as exc:
            self._fail(exc)

    def _hold(self) -> None:
        raise NotImplementedError

    def _other_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        raise NotImplementedError

    def _fail(self, exc: Exception) -> None:
        raise NotImplementedError


def _listener_base() -> type[_PythonFrameListener]:
    try:
        compiled = picows_frame_listener()
    except ImportError as exc:
        logger.warning("picows transport: compiled frame listener unavailable (%s); "
                       "frames take the Python path", exc)
        return _PythonFrameListener
    return compiled  # type: ignore[return-value]  # the same fields and hot path, in C


if TYPE_CHECKING:
    _ListenerBase = _PythonFrameListener
else:
    _ListenerBase = _listener_base()


class _Link:
    """One picows connection behind the :class:`~.base.Link` interface, less its hot
    path: the listener class it is mixed with has that (``on_ws_frame``).

    Frames that arrive while delivery is held (before ``pump`` starts, or after a
    burst used up its budget and the event loop must run the readers) wait in a
    backlog, and reading from the socket pauses until the backlog is drained.
    """

    if not TYPE_CHECKING:
        # Empty: the concrete classes below hold the slots (mypy would check each
        # assignment here against this mixin's own).
        __slots__ = ()
    # Whether the listener class hands frames to a FrameSink in C.
    frames_in_c: ClassVar[bool]
    # The hot path's state, kept by the listener class.
    _sink: FrameSink | None
    _on_binary: Callable[[bytes], object] | None
    _held: bool
    _budget: int
    _yield_every: int
    _max_message_bytes: int

    def __init__(self, handshake: Handshake, ticket: Any, *, max_message_bytes: int,
                 close_timeout: float, on_open: Callable[[_Link], None]) -> None:
        super().__init__()
        self.handshake = handshake
        self.ticket = ticket
        self._max_message_bytes = max_message_bytes
        self._close_timeout = close_timeout
        self._on_open = on_open
        self._ws: WSTransport | None = None
        self._socket: Any = None
        self._sink = None
        self._on_binary = None
        self._on_text: Callable[[str], object] | None = None
        self._budget = self._yield_every = YIELD_EVERY
        self._held = True  # until pump() attaches the callbacks
        self._paused = False
        self._failed = False
        self._backlog: deque[tuple[WSMsgType, bytes]] = deque()
        self._fragments: list[bytes] = []
        self._fragment_type = _BINARY
        self._fragment_bytes = 0
        self._gone = False
        self._ended: asyncio.Future[CloseInfo] | None = None
        self._writable: asyncio.Event | None = None

    # -- picows callbacks --------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._ws = transport
        underlying = transport.underlying_transport
        self._socket = underlying.get_extra_info("socket")
        tune(self._socket)
        # picows knows the peer only now; admission saw "-".
        peer = underlying.get_extra_info("peername")
        self.handshake = Handshake(self.handshake.path, self.handshake.headers,
                                   format_address(peer))
        self._on_open(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._gone = True
        if self._writable is not None:
            self._writable.set()
        if not self._backlog or self._on_binary is None:
            self._finish()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.Event()
        self._writable.clear()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set()

    # -- the Link interface -------------------------------------------------------------

    async def pump(self, on_binary: Callable[[bytes], object],
                   on_text: Callable[[str], object]) -> CloseInfo:
        """Deliver every message until the connection ends; return how it ended."""
        self._ended = asyncio.get_running_loop().create_future()
        sink = getattr(on_binary, "__self__", None)
        if self.frames_in_c and isinstance(sink, FrameSink) and on_binary == sink.feed:
            self._sink = sink  # the compiled listener hands it frames without bytes
        self._on_binary = on_binary
        self._on_text = on_text
        self._drain()
        return await self._ended

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

    def _other_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            # picows leaves them to its user, for extensions; this server negotiates none,
            # so a reserved bit set is a protocol error (RFC 6455, 5.2).
            if not self._failed:
                self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "reserved bits set")
            return
        kind = frame.msg_type
        if kind is _CLOSE:
            # Answer the peer's close (or complete ours), then the server drops TCP.
            if not transport.is_close_frame_sent:
                code = frame.get_close_code()
                if code is WSCloseCode.NO_INFO:  # an empty close frame: answer 1000
                    code = WSCloseCode.OK
                transport.send_close(code, frame.get_close_message())
            transport.disconnect()
            return
        if self._failed or (kind is not _BINARY and kind is not _TEXT
                            and kind is not _CONTINUATION):
            return  # pings are answered by picows; pongs need nothing
        if frame.payload_size > self._max_message_bytes:
            # picows has sent 1009 but goes on parsing until it disconnects: this
            # frame and the rest are discarded, as a failed connection's should be.
            self._held = self._failed = True
            self._backlog.clear()
            return
        if kind is not _CONTINUATION and self._fragments:
            self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            return
        if kind is _CONTINUATION and not self._fragments:
            self._protocol_error(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
            return
        payload = frame.get_payload_as_bytes()
        if not frame.fin or self._fragments:
            # A fragmented message: picows gives frames, the receiver wants messages.
            if kind is not _CONTINUATION:
                self._fragment_type = kind
            self._fragment_bytes += len(payload)
            if self._fragment_bytes > self._max_message_bytes:
                self._protocol_error(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
                return
            self._fragments.append(payload)
            if not frame.fin:
                return
            kind, payload = self._fragment_type, b"".join(self._fragments)
            self._fragments = []
            self._fragment_bytes = 0
        self._backlog.append((kind, payload))
        if not self._held:
            self._drain()

    def _protocol_error(self, code: WSCloseCode, reason: str) -> None:
        ws = self._ws
        if ws is not None and not ws.is_close_frame_sent:
            ws.send_close(code, reason.encode())
            ws.disconnect()
        self._held = self._failed = True
        self._backlog.clear()

    # -- holding back a burst ------------------------------------------------------------

    def _hold(self) -> None:
        """Let the event loop run before the next message: the rest of this socket read
        waits in the backlog, and reading pauses (uvloop reads a socket several times
        per turn of the loop, so the end of one read is no yield). After the yield the
        budget of frames is whole again."""
        self._held = True
        self._budget = self._yield_every
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
        on_binary, on_text = self._on_binary, self._on_text
        if on_binary is None or on_text is None or self._failed:
            return
        backlog = self._backlog
        try:
            while backlog:
                kind, payload = backlog.popleft()
                self._budget -= 1
                if kind is _BINARY:
                    woke = on_binary(payload)
                else:
                    try:
                        text = payload.decode()
                    except UnicodeDecodeError:
                        self._protocol_error(WSCloseCode.INVALID_TEXT, "invalid UTF-8")
                        return
                    on_text(text)
                    woke = False
                if woke or self._budget <= 0:
                    if backlog:
                        self._budget = self._yield_every
                        self._schedule_drain()
                    else:
                        self._hold()
                    return
        except Exception as exc:
            self._fail(exc)
            return
        self._held = False
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

    def _fail(self, exc: Exception) -> None:
        """A callback raised: stop delivering; pump() raises it, and the receiver ends
        the call (1011) like with any other transport."""
        self._held = self._failed = True
        self._backlog.clear()
        if self._ended is not None and not self._ended.done():
            self._ended.set_exception(exc)

    def _finish(self) -> None:
        ended = self._ended
        if ended is None or ended.done():
            return
        ended.set_result(_close_info(self._ws))


_LINK_SLOTS = ("handshake", "ticket", "_close_timeout", "_on_open", "_ws", "_socket", "_on_text",
               "_paused", "_failed", "_backlog", "_fragments", "_fragment_type",
               "_fragment_bytes", "_gone", "_ended", "_writable")


class PicowsLink(_Link, _ListenerBase):
    """A picows connection with the compiled frame path (when it loads)."""

    __slots__ = _LINK_SLOTS
    frames_in_c = _ListenerBase is not _PythonFrameListener


class PythonPicowsLink(_Link, _PythonFrameListener):
    """A picows connection with the frame path in Python."""

    __slots__ = _LINK_SLOTS
    frames_in_c = False


class PicowsListener:
    """A listening picows server and the links it accepted."""

    def __init__(self, server: asyncio.Server, links: set[_Link],
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
    """The fast transport, on ``picows`` (install the ``fast`` extra); run the server on
    uvloop for the full gain.

    Options as for :class:`~.websockets.WebsocketsTransport`:
    ``max_message_bytes`` bounds one message (a larger one ends that call with 1009);
    ``ping_interval`` seconds without data from the peer send a ping, and no answer
    within ``ping_timeout`` ends the call; ``close_timeout`` bounds the closing
    handshake and ``open_timeout`` the opening one. ``compiled_listener=False`` runs
    the frame path in Python, as when the compiled listener cannot load.
    """

    def __init__(self, *, compiled_listener: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.link_class: type[PicowsLink | PythonPicowsLink] = (
            PicowsLink if compiled_listener else PythonPicowsLink)

    async def listen(self, host: str, port: int, *, admit: Admit,
                     session: Callable[[Link, Any], Awaitable[None]],
                     ssl: ssl_module.SSLContext | None = None,
                     reuse_port: bool = False) -> Listener:
        loop = asyncio.get_running_loop()
        links: set[_Link] = set()
        link_class = self.link_class
        sessions: set[asyncio.Task[None]] = set()
        max_bytes = self.max_message_bytes
        close_timeout = self.close_timeout

        async def run(link: _Link) -> None:
            try:
                await session(link, link.ticket)
            finally:
                links.discard(link)

        def start_session(link: _Link) -> None:
            links.add(link)
            task = loop.create_task(run(link))
            sessions.add(task)
            task.add_done_callback(sessions.discard)

        def on_request(request: WSUpgradeRequest) -> WSListener | WSUpgradeResponseWithListener:
            path = request.path.decode("latin-1")
            handshake = Handshake(path, request.headers, _UNKNOWN_PEER)
            verdict = admit(handshake)
            try:
                if inspect.isawaitable(verdict):
                    verdict = _decide_now(verdict)
            except _AdmissionWouldWait:
                logger.error("stream %s refused: its auth check awaited I/O, which the "
                             "picows transport cannot wait for", handshake.route)
                verdict = Rejection(500, "Internal Server Error\n")
            if isinstance(verdict, Rejection):
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(verdict.status,
                                                            verdict.text.encode()), None)
            return link_class(handshake, verdict, max_message_bytes=max_bytes,
                              close_timeout=close_timeout, on_open=start_session)

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


def _close_info(ws: WSTransport | None) -> CloseInfo:
    handshake = ws.close_handshake if ws is not None else None
    if handshake is None:
        return CloseInfo(1006, "", False)
    # Code 0 in picows: the close frame named no code, which is 1005 on the wire.
    rcvd, sent = handshake.recv, handshake.sent
    return close_info(None if rcvd is None else (int(rcvd.code.value) or 1005, rcvd.reason),
                      None if sent is None else (int(sent.code.value) or 1005, sent.reason))
