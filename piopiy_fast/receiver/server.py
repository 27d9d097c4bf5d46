"""The WebSocket server Piopiy's media server connects to.

Each accepted connection becomes a :class:`~piopiy_fast.receiver.call.CallStream`,
handed to the application through ``on_call`` or ``async for call in
server.calls()``. A failure inside one call (a bad frame, an oversize message, a
dead peer, a bug in a callback) ends at most that call: it is logged once and
counted, and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import logging
import ssl as ssl_module
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..audio import POLICIES, QUALITIES
from ..errors import PiopiyValidationError
from ..wire import LISTEN_MODES, SAMPLE_RATES, StreamFormat
from .auth import Authenticator, Verdict
from .call import CallSettings, CallStats, CallStream, PolicyViolation
from .pacing import ReadCoalescer, coalescing_interval
from .transports import make_transport

if TYPE_CHECKING:
    from .metrics import MetricsEndpoint
from .transports.base import Handshake, Link, Listener, Rejection, Transport
from .wakeups import DEFAULT_LATENCY, DeliveryClocks

logger = logging.getLogger("piopiy_fast.receiver")

SERVER_BUSY = Rejection(503, "Too many calls\n")


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Totals over every call the server has seen, live ones included."""

    active_calls: int
    total_calls: int
    rejected_calls: int
    failed_calls: int
    frames: int
    bytes: int
    decode_errors: int
    overruns: int
    late_frames: int
    received_seconds: float
    app_errors: int
    timed_out_calls: int
    """Calls the server closed (1008) for a limit: no audio, silence, or length."""
    refused_by_reason: dict[str, int]
    """``rejected_calls`` by reason: ``busy`` (max_calls), ``malformed`` (400: a bad
    credential header), ``unauthorized`` (401: no credential), ``forbidden`` (403: a
    wrong one), ``error`` (the check failed)."""


# The HTTP status of a refusal, as a reason a person reads.
REFUSAL_REASONS = {503: "busy", 400: "malformed", 401: "unauthorized", 403: "forbidden"}


@dataclass(slots=True)
class CallTotals:
    """Counters summed over calls: the ended ones are kept; live ones are added for stats."""

    frames: int = 0
    bytes: int = 0
    decode_errors: int = 0
    overruns: int = 0
    late_frames: int = 0
    received_seconds: float = 0.0

    def add(self, s: CallStats) -> None:
        self.frames += s.frames
        self.bytes += s.bytes
        self.decode_errors += s.decode_errors
        self.overruns += s.overruns
        self.late_frames += s.late_frames
        self.received_seconds += s.received_seconds

    def copy(self) -> CallTotals:
        return dataclasses.replace(self)


SWEEP_EVERY = 1.0  # seconds between checks of the call limits
FDS_PER_CALL = 3  # its socket, and two recordings when a recorder runs
FD_HEADROOM = 64  # listening sockets, logs, the interpreter's own files


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How long a call may go without audio, go silent, and last; None: no limit."""

    idle_timeout: float | None
    silence_timeout: float | None
    max_call_seconds: float | None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.idle_timeout, self.silence_timeout,
                                             self.max_call_seconds))

    def broken_by(self, call: CallStream, now: float, wall: float) -> str | None:
        """Why ``call`` must close now (``now`` monotonic, ``wall`` wall-clock), or None."""
        age = now - call.opened_at
        if self.max_call_seconds is not None and age > self.max_call_seconds:
            return f"longer than {self.max_call_seconds:g} s"
        last = call.stats.last_frame_time
        if last is None:
            if self.idle_timeout is not None and age > self.idle_timeout:
                return f"no audio in {self.idle_timeout:g} s"
        elif (self.silence_timeout is not None and not call.paused
              and wall - max(last, call.resumed_at or last) > self.silence_timeout):
            return f"no audio for {self.silence_timeout:g} s"
        return None


def calls_the_fd_limit_allows() -> int:
    """The default ``max_calls``: what this process's file-descriptor limit holds with
    headroom, after raising the soft limit to the hard one (as servers do)."""
    try:
        import resource
    except ImportError:  # not on this platform: no limit to read
        return 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    limit = hard if soft == resource.RLIM_INFINITY else soft
    return max(1, (limit - FD_HEADROOM) // FDS_PER_CALL)


_ACCEPT_ERROR_EVERY = 10.0  # seconds between log lines about a full fd table


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of file descriptors, asyncio logs every failed accept: at a busy port that is
    hundreds of MB of log. Keep one line per ``_ACCEPT_ERROR_EVERY`` seconds, with the
    count; pass everything else to the loop's previous handler."""
    previous = loop.get_exception_handler()
    if getattr(previous, "quiets_accept_errors", False):
        return
    state = {"last": -_ACCEPT_ERROR_EVERY, "skipped": 0}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "accept" in str(context.get("message", "")):
            now = loop.time()
            if now - state["last"] < _ACCEPT_ERROR_EVERY:
                state["skipped"] += 1
                return
            context = {**context, "message": f"{context['message']} "
                       f"({state['skipped']} more since the last such line)"}
            state["last"], state["skipped"] = now, 0
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.quiets_accept_errors = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


def ring_capacity(seconds: float, rate: int) -> int:
    """The smallest power of two holding ``seconds`` of audio at ``rate`` (at least 1024)."""
    need = max(1024, int(seconds * rate + 0.5))
    return 1 << (need - 1).bit_length()


class StreamServer:
    """Receive Piopiy call streams over WebSocket.

    ::

        async def on_call(call):
            async for chunk in call.caller:    # int16 at target_rate
                ...

        async with StreamServer("0.0.0.0", 8765, on_call=on_call) as server:
            await server.serve_forever()

    Audio: ``target_rate`` is what readers get; ``ring_seconds`` of it are buffered per
    channel, and when a consumer falls further behind, ``policy`` decides what is lost
    (counted in ``overruns``). ``latency`` (seconds, default 0.05) is the longest an
    ``async`` reader's audio waits before the reader is woken: readers are woken together on
    a clock, not once per frame, which is most of what a call costs the server; 0 wakes them
    with every frame. A reader can set its own (``call.caller.latency``). While calls are
    live, the event loop turns at most every ``coalesce_reads`` seconds so that one turn
    reads many sockets (``"auto"``: a tenth of ``latency``, at most 5 ms; 0 turns it off;
    see :mod:`piopiy_fast.receiver.pacing`).
    ``reply_batch_ms`` is the length of one ``streamAudio`` message that ``call.send_audio``
    sends (see :mod:`piopiy_fast.receiver.replies`). Format: calls that name no format in a
    start event or the query string get ``listen_mode`` at ``source_rate``;
    ``swap_channels`` takes channel 1 of a ``both`` stream as the caller. Access: ``auth``
    is a ``SignedURL``, a token or a callable (see :mod:`piopiy_fast.receiver.auth`),
    ``max_calls`` bounds the live calls (more get HTTP 503; ``"auto"``, the default, is what
    the process's file-descriptor limit holds, three per call, after raising the soft limit
    to the hard one; None for no bound), ``max_frame_bytes`` bounds one message (a larger
    one ends that call); ``reuse_port`` lets several processes listen on one port
    (``SO_REUSEPORT``: the kernel spreads new connections among them; one server per core,
    see :mod:`piopiy_fast.receiver.workers`). Limits per call, each closing the call with
    1008 and counted in ``timed_out_calls`` (None turns one off): ``idle_timeout`` seconds
    without any audio after connecting (default 30), ``silence_timeout`` seconds without a
    frame once audio flowed, except while paused (default 60: Piopiy sends silence as audio),
    ``max_call_seconds`` in all (default 4 hours). ``on_call(call)`` runs when a call
    connects; when it returns an awaitable, that runs as a task, and shutdown waits up to
    ``drain_timeout`` seconds for such tasks (recorders, say) to finish with the audio.
    Timeouts: ``ping_interval``/``ping_timeout`` end a call whose peer stopped answering; a
    frame arriving more than ``late_after`` seconds behind the real-time schedule counts as
    late. Observability: ``metrics_port`` serves ``/metrics`` (Prometheus) and ``/healthz``
    (200 while serving, 503 once draining) on ``metrics_host`` (default ``host``); see
    :mod:`piopiy_fast.receiver.metrics`. Transport: ``"auto"`` (the default: picows when
    installed, as it is with the package's dependencies, unless ``auth`` is a coroutine
    function), ``"picows"`` (fastest on uvloop), ``"websockets"``, or any object with the
    :class:`~piopiy_fast.receiver.transports.base.Transport` interface.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        # audio
        target_rate: int = 16000,
        ring_seconds: float = 2.0,
        policy: str = "drop_oldest",
        quality: str = "speech",
        # format defaults
        listen_mode: str = "caller",
        source_rate: int = 8000,
        swap_channels: bool = False,
        # access and limits
        auth: Any = None,
        max_calls: int | Literal["auto"] | None = "auto",
        idle_timeout: float | None = 30.0,
        silence_timeout: float | None = 60.0,
        max_call_seconds: float | None = 4 * 3600.0,
        max_frame_bytes: int = 1 << 16,
        ssl: ssl_module.SSLContext | None = None,
        reuse_port: bool = False,
        # application
        on_call: Callable[[CallStream], Any] | None = None,
        latency: float = DEFAULT_LATENCY,
        coalesce_reads: float | Literal["auto"] = "auto",
        reply_batch_ms: float = 300.0,
        # observability
        metrics_port: int | None = None,
        metrics_host: str | None = None,
        # timeouts
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        drain_timeout: float = 5.0,
        late_after: float = 0.2,
        transport: Transport | str = "auto",
    ) -> None:
        _check("target_rate", target_rate, SAMPLE_RATES)
        _check("source_rate", source_rate, SAMPLE_RATES)
        _check("listen_mode", listen_mode, LISTEN_MODES)
        _check("policy", policy, POLICIES)
        _check("quality", quality, QUALITIES)
        if not ring_seconds > 0:
            raise PiopiyValidationError(f"ring_seconds must be positive, not {ring_seconds}")
        if max_calls == "auto":
            max_calls = calls_the_fd_limit_allows()
        elif max_calls is not None and (not isinstance(max_calls, int) or max_calls < 1):
            raise PiopiyValidationError(
                f"max_calls must be at least 1, 'auto' or None, not {max_calls!r}")
        for name, value in (("idle_timeout", idle_timeout),
                            ("silence_timeout", silence_timeout),
                            ("max_call_seconds", max_call_seconds)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise PiopiyValidationError(f"{name} must be positive seconds or None, "
                                            f"not {value!r}")
        self._limits = CallLimits(idle_timeout, silence_timeout, max_call_seconds)
        if max_frame_bytes < 1024:
            raise PiopiyValidationError(
                f"max_frame_bytes must be at least 1024, not {max_frame_bytes}")
        self.host = host
        self._port = port
        self._ssl = ssl
        self._reuse_port = reuse_port
        self._settings = CallSettings(
            target_rate=target_rate,
            ring_capacity=ring_capacity(ring_seconds, target_rate),
            policy=policy,
            quality=quality,
            default_format=StreamFormat(listen_mode, source_rate),
            swap_channels=swap_channels,
            late_after=late_after,
            reply_batch_ms=reply_batch_ms,
        )
        self._auth = Authenticator(auth)
        self._max_calls = max_calls
        self._on_call = on_call
        self._clocks = DeliveryClocks(latency)
        self._coalescer = ReadCoalescer(
            coalescing_interval(coalesce_reads, self._clocks.latency),
            live=lambda: bool(self._active))
        if metrics_port is not None and not 0 <= metrics_port <= 65535:
            raise PiopiyValidationError(
                f"metrics_port must be from 0 to 65535, not {metrics_port}")
        self._metrics_at = None if metrics_port is None else (metrics_host or host, metrics_port)
        self._metrics: MetricsEndpoint | None = None
        self._sweeper: asyncio.Future[None] | None = None
        self._drain_timeout = drain_timeout
        self._transport = make_transport(transport, async_auth=_is_async_hook(auth),
                                         max_message_bytes=max_frame_bytes,
                                         ping_interval=ping_interval,
                                         ping_timeout=ping_timeout)
        self._listener: Listener | None = None
        self._active: dict[CallStream, None] = {}  # insertion-ordered set
        self._app_tasks: set[asyncio.Task[Any]] = set()
        self._queues: list[asyncio.Queue[CallStream | None]] = []
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._number = 0
        self._refused: collections.Counter[str] = collections.Counter()
        self._timed_out = 0
        self._failed = 0
        self._app_errors = 0
        self._ended = CallTotals()

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def target_rate(self) -> int:
        return self._settings.target_rate

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        return self._listener.port if self._listener is not None else self._port

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss`` with TLS) as clients on this machine reach it."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'wss' if self._ssl else 'ws'}://{host}:{self.port}"

    async def start(self) -> StreamServer:
        """Bind and start accepting calls."""
        if self._listener is None:
            if self._metrics_at is not None:
                self._metrics = _metrics_endpoint(self)
                await self._metrics.start(*self._metrics_at)
            self._listener = await self._transport.listen(
                self.host, self._port, admit=self._admit, session=self._session, ssl=self._ssl,
                reuse_port=self._reuse_port)
            _quiet_accept_errors(asyncio.get_running_loop())
            if self._limits.any:
                self._sweeper = asyncio.ensure_future(self._sweep())
            logger.info("listening on %s (target %d Hz)", self.url, self.target_rate)
        return self

    @property
    def serving(self) -> bool:
        """True while the server accepts calls: started, and not closing."""
        return self._listener is not None and self._closing is None

    @property
    def coalesce_reads(self) -> float:
        """Seconds the event loop may gather socket reads while calls are live (0: off);
        audio reaches readers at most this much later than ``latency`` alone allows."""
        return self._coalescer.interval

    @property
    def metrics_port(self) -> int | None:
        """The bound port of ``/metrics`` and ``/healthz``, when they are served."""
        return None if self._metrics is None else self._metrics.port

    async def __aenter__(self) -> StreamServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or this coroutine is cancelled."""
        await self.start()
        try:
            await self._closed.wait()
        except asyncio.CancelledError:
            await asyncio.shield(self.close())
            raise

    async def close(self) -> None:
        """Shut down: stop accepting, end every call cleanly (1001 going away), give the
        application's call tasks ``drain_timeout`` seconds to finish, then return."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._listener is not None:
            await self._listener.close()
        if self._app_tasks:
            done, pending = await asyncio.wait(set(self._app_tasks), timeout=self._drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("%d call tasks still running after %.1f s: cancelled",
                               len(pending), self._drain_timeout)
                await asyncio.wait(pending)
        for queue in self._queues:
            queue.put_nowait(None)
        if self._metrics is not None:
            await self._metrics.close()
        self._coalescer.close()
        self._closed.set()
        logger.info("server closed")

    # -- calls --------------------------------------------------------------------------

    async def calls(self) -> AsyncIterator[CallStream]:
        """Yield each call as it connects, until the server closes."""
        queue: asyncio.Queue[CallStream | None] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while not self._closed.is_set():
                call = await queue.get()
                if call is None:
                    return
                yield call
        finally:
            self._queues.remove(queue)

    @property
    def active_calls(self) -> list[CallStream]:
        """The calls connected now, oldest first."""
        return list(self._active)

    @property
    def stats(self) -> ServerStats:
        totals = self._ended.copy()
        for call in self._active:
            totals.add(call.stats)
        return ServerStats(
            active_calls=len(self._active), total_calls=self._number,
            rejected_calls=sum(self._refused.values()), failed_calls=self._failed,
            frames=totals.frames, bytes=totals.bytes, decode_errors=totals.decode_errors,
            overruns=totals.overruns, late_frames=totals.late_frames,
            received_seconds=totals.received_seconds, app_errors=self._app_errors,
            timed_out_calls=self._timed_out, refused_by_reason=dict(self._refused))

    def _admit(self, handshake: Handshake) -> Verdict | Awaitable[Verdict]:
        if self._max_calls is not None and len(self._active) >= self._max_calls:
            self._refused["busy"] += 1
            logger.warning("stream %s from %s refused: %d calls already", handshake.route,
                           handshake.remote, len(self._active))
            return SERVER_BUSY
        verdict = self._auth(handshake)
        if inspect.isawaitable(verdict):
            return self._admit_later(verdict)
        return self._counted(verdict)

    async def _admit_later(self, pending: Awaitable[Verdict]) -> Verdict:
        try:
            verdict = await pending
        except BaseException:
            # No verdict: the handshake was abandoned (cancelled, or a transport that
            # cannot wait gave up on the check). It was not let in.
            self._refused["error"] += 1
            raise
        return self._counted(verdict)

    def _counted(self, verdict: Verdict) -> Verdict:
        if isinstance(verdict, Rejection):
            self._refused[REFUSAL_REASONS.get(verdict.status, "error")] += 1
        return verdict

    async def _session(self, link: Link, params: dict[str, Any]) -> None:
        if self._max_calls is not None and len(self._active) >= self._max_calls:
            # Several handshakes raced past the check in _admit: the limit is exact here.
            self._refused["busy"] += 1
            await link.close(1013, "too many calls")
            return
        self._number += 1
        call = CallStream(link, params, self._settings, self._number, self._clocks)
        self._active[call] = None
        self._coalescer.wake()
        logger.info("call %s connected from %s on %s", call.call_id, call.remote, call.route)
        self._announce(call)
        close_info = None
        error = None
        close_code, close_reason = 1011, "internal error"
        try:
            close_info = await link.pump(call._on_binary, call._on_text)
        except PolicyViolation as exc:
            error = str(exc)
            close_code, close_reason = exc.code, error
            logger.warning("call %s closed: %s", call.call_id, error)
        except Exception as exc:
            # Contained: whatever went wrong ends this call only.
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("call %s failed", call.call_id)
        finally:
            # End the call (readers get everything, then the end) before any closing
            # handshake, which may wait on the peer.
            try:
                call._end(close_info, error)
            except Exception:
                error = error or "failed to finish the call"
                logger.exception("call %s: failed to finish", call.call_id)
            del self._active[call]
            self._count_ended(call, close_info, error)
        if error is not None:
            with contextlib.suppress(Exception):
                await link.close(close_code, close_reason)

    async def _sweep(self) -> None:
        """Once a second, close the calls past a limit: no audio since connecting, silent
        (and not paused) since the last frame, or on for too long."""
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            now = time.monotonic()
            wall = time.time()
            for call in list(self._active):
                reason = self._limits.broken_by(call, now, wall)
                if reason is not None and not call.ended:
                    logger.info("call %s closed: %s", call.call_id, reason)
                    self._timed_out += 1
                    asyncio.ensure_future(call.close(1008, reason))

    def _announce(self, call: CallStream) -> None:
        if self._on_call is not None:
            try:
                result = self._on_call(call)
            except Exception:
                self._app_errors += 1
                logger.exception("on_call failed for call %s", call.call_id)
            else:
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._app_tasks.add(task)
                    task.add_done_callback(self._app_task_done)
        for queue in self._queues:
            queue.put_nowait(call)

    def _app_task_done(self, task: asyncio.Task[Any]) -> None:
        self._app_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._app_errors += 1
            logger.error("call task failed", exc_info=task.exception())

    def _count_ended(self, call: CallStream, close_info: Any, error: str | None) -> None:
        s = call.stats
        self._ended.add(s)
        clean = error is None and close_info is not None and close_info.clean
        if not clean:
            self._failed += 1
        logger.info("call %s ended: %.2f s of audio, %d frames, %d decode errors, "
                    "%d overruns, close %s%s", call.call_id, s.received_seconds, s.frames,
                    s.decode_errors, s.overruns,
                    close_info.code if close_info is not None else None,
                    f" ({error})" if error else "")


def _is_async_hook(auth: Any) -> bool:
    """True for an auth hook that is a coroutine function (or an object whose
    ``__call__`` is one): its checks must be awaited during the handshake."""
    call = type(auth).__dict__.get("__call__") if auth is not None else None
    return inspect.iscoroutinefunction(auth) or inspect.iscoroutinefunction(call)


def _metrics_endpoint(server: StreamServer) -> MetricsEndpoint:
    try:
        from .metrics import MetricsEndpoint
    except ImportError as exc:
        raise PiopiyValidationError(
            "metrics need prometheus-client: pip install 'piopiy-fast[metrics]'") from exc
    return MetricsEndpoint(server)


def _check(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise PiopiyValidationError(
            f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
