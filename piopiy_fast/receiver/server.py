"""The WebSocket server Piopiy's media server connects to.

Each accepted connection becomes a :class:`~piopiy_fast.receiver.call.CallStream`,
handed to the application through ``on_call`` or ``async for call in
server.calls()`` once what identifies it has arrived (the metadata, or the first
audio; at most ``hold_seconds`` after connecting). A connection naming a call whose
connection dropped a moment ago continues that call (:mod:`.continuity`). A failure
inside one call (a bad frame, an oversize message, a dead peer, a bug in a callback)
ends at most that call: it is logged once and counted, and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import ssl as ssl_module
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from ..analytics.call import AnalyticsSettings
from ..audio import POLICIES, QUALITIES
from ..errors import PiopiyValidationError
from ..redaction import printable
from ..stream.call import MAX_AHEAD_SECONDS, CallSettings, PolicyViolation
from ..stream.events import call_id_from_params
from ..stream.wire import LAYOUTS, LISTEN_MODES, StreamFormat, as_sample_rate
from .auth import Authenticator, Verdict
from .call import CallStream
from .clock import DEFAULT_LATENCY, DeliveryClocks
from .continuity import Continuity
from .limits import CallLimits, calls_the_fd_limit_allows, ring_capacity
from .logs import RateLimitedLog
from .pacing import ReadCoalescer, coalescing_interval
from .stats import ServerStats, refusal_reason, total
from .transports import make_transport
from .transports.base import (
    CloseInfo,
    ConnectionGate,
    Handshake,
    Link,
    Listener,
    Rejection,
    Transport,
)

if TYPE_CHECKING:
    from ..sdk.client import RestClient
    from .metrics import MetricsEndpoint

logger = logging.getLogger("piopiy_fast.receiver")
_refusals = RateLimitedLog(logger)

SERVER_BUSY = Rejection(503, "Too many calls\n")
CALL_ENDED = Rejection(410, "This call has ended\n")
SWEEP_EVERY = 1.0  # seconds between checks of the call limits and of dropped calls
# How a connection ends when it dropped rather than ended: no close frame at all (1006),
# or the peer going away, timing out its pings or restarting (1001, 1011-1014).
DROPPED = (1001, 1006, 1011, 1012, 1013, 1014)


class StreamServer:
    """Receive Piopiy call streams over WebSocket.

    ::

        async def on_call(call):
            async for chunk in call.caller:    # int16 at target_rate
                ...

        async with StreamServer("0.0.0.0", 8765, on_call=on_call) as server:
            await server.serve_forever()

    Args:
        host: The address to listen on.
        port: The port to listen on (0: any free one, then see ``port``).
        target_rate: The rate readers get, whatever rate a call arrives at.
        ring_seconds: Audio buffered per channel for a reader that falls behind.
        policy: What a full ring loses: ``drop_oldest`` or ``drop_newest`` (counted in
            ``overruns``).
        quality: The resampler's preset, ``speech`` or ``strict``.
        listen_mode: The mode of a call whose URL and metadata name none (a hint the
            stream may overrule).
        source_rate: Likewise, the rate.
        layout: ``auto`` (the stream decides whether a two-party call is interleaved
            ``stereo`` or one ``mixed`` channel, see :mod:`piopiy_fast.stream.layout`), or
            the layout every call has: ``stereo``, ``mixed``, ``mono``.
        swap_channels: Take channel 1 of a stereo stream as the caller.
        auth: A ``SignedURL``, a token or a callable (see
            :mod:`piopiy_fast.receiver.auth`).
        max_calls: Live calls at most; more get HTTP 503. Connections still in their
            opening handshake count too, from accept, so that a table full of peers
            that never finish one turns new calls away with 503 rather than a timeout.
            ``"auto"``: what the process's open-file limit holds (three per call);
            None: no bound.
        idle_timeout: Seconds without any audio after connecting before the call is
            closed (1008); None: no limit.
        silence_timeout: Seconds without a frame once audio flowed, except while
            paused, before the call is closed (1008); None: no limit.
        max_call_seconds: Seconds a call may last; past them it is closed (1008), its
            id refused if it reconnects, and, with ``rest_client``, hung up.
        max_frame_bytes: The largest message; a larger one ends that call (1009).
        max_audio_ahead: Seconds of audio a call may send ahead of real time (the burst
            the platform's client queues while it connects, up to 20.48 s); frames past
            it are dropped, counted in ``rate_limited_frames``. None: no cap.
        ssl: A TLS context, for ``wss://``.
        reuse_port: Set ``SO_REUSEPORT`` so several processes share the port (see
            :mod:`piopiy_fast.receiver.workers`).
        on_call: Called with each call once it is identified; an awaitable it returns
            runs as a task, and shutdown waits up to ``drain_timeout`` for it.
        latency: Longest wait, in seconds, between audio arriving and an ``async``
            reader being woken (readers are woken together on a clock; 0: every frame).
        coalesce_reads: While calls are live, the event loop turns at most this often
            so one turn reads many sockets (``"auto"``: a tenth of ``latency``, at most
            5 ms; 0: off; see :mod:`piopiy_fast.receiver.pacing`).
        reply_batch_ms: The length of one ``streamAudio`` message ``send_audio`` sends.
        reconnect_grace: Seconds a call whose connection dropped waits for a connection
            naming the same call id to continue it (0: a drop ends the call).
        rest_client: A ``RestClient`` to hang up calls ended for ``max_call_seconds``.
        metrics_port: Serve ``/metrics`` (Prometheus) and ``/healthz`` there.
        metrics_host: Where the metrics listen (default ``127.0.0.1``).
        ping_interval: Seconds of silence from the peer before a ping.
        ping_timeout: Seconds to answer it before the call ends.
        open_timeout: Seconds a connection may take from accept to the end of its
            opening handshake (TLS included); one that sends nothing, or half a
            request, is dropped then and frees its slot.
        drain_timeout: Seconds shutdown waits for the application's call tasks.
        late_after: A frame this many seconds behind the real-time schedule is late.
        transport: ``"auto"`` (picows when installed, unless ``auth`` is a coroutine
            function), ``"picows"``, ``"websockets"``, or an object with the
            :class:`~piopiy_fast.receiver.transports.base.Transport` interface.
        publish: A message bus to publish every call to (``"nats://host:4222"``, or a
            :class:`~piopiy_fast.bus.publisher.Publisher`): it reads the calls' channels,
            the application keeps their events and controls (see :mod:`piopiy_fast.bus`).
        analytics: Voice activity and conversation metrics per call (``call.analytics``,
            see :mod:`piopiy_fast.analytics`): True for the defaults, an
            ``AnalyticsSettings``, or None (off: no detector runs).
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
        # format
        listen_mode: str = "caller",
        source_rate: int = 8000,
        layout: str = "auto",
        swap_channels: bool = False,
        # access and limits
        auth: Any = None,
        max_calls: int | Literal["auto"] | None = "auto",
        idle_timeout: float | None = 30.0,
        silence_timeout: float | None = 60.0,
        max_call_seconds: float | None = 4 * 3600.0,
        max_frame_bytes: int = 1 << 16,
        max_audio_ahead: float | None = MAX_AHEAD_SECONDS,
        ssl: ssl_module.SSLContext | None = None,
        reuse_port: bool = False,
        # calls
        on_call: Callable[[CallStream], Any] | None = None,
        latency: float = DEFAULT_LATENCY,
        coalesce_reads: float | Literal["auto"] = "auto",
        reply_batch_ms: float = 300.0,
        reconnect_grace: float = 10.0,
        rest_client: RestClient | None = None,
        # observability
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        # timeouts
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float = 10.0,
        drain_timeout: float = 5.0,
        late_after: float = 0.2,
        transport: Transport | str = "auto",
        publish: Any = None,
        analytics: AnalyticsSettings | bool | None = None,
    ) -> None:
        target_rate = as_sample_rate("target_rate", target_rate)
        source_rate = as_sample_rate("source_rate", source_rate)
        _check("listen_mode", listen_mode, LISTEN_MODES)
        _check("layout", layout, ("auto", *LAYOUTS))
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
        if isinstance(open_timeout, bool) or not (
                isinstance(open_timeout, (int, float)) and open_timeout > 0):
            raise PiopiyValidationError(f"open_timeout must be positive seconds, "
                                        f"not {open_timeout!r}")
        if not (isinstance(reconnect_grace, (int, float)) and reconnect_grace >= 0):
            raise PiopiyValidationError(
                f"reconnect_grace must be seconds, 0 or more, not {reconnect_grace!r}")
        if max_audio_ahead is not None and (
                isinstance(max_audio_ahead, bool)
                or not isinstance(max_audio_ahead, (int, float)) or not max_audio_ahead >= 1):
            raise PiopiyValidationError(
                f"max_audio_ahead must be 1 or more seconds, or None, not {max_audio_ahead!r}")
        self._limits = CallLimits(idle_timeout, silence_timeout, max_call_seconds)
        if max_frame_bytes < 1024:
            raise PiopiyValidationError(
                f"max_frame_bytes must be at least 1024, not {max_frame_bytes}")
        if metrics_port is not None and not 0 <= metrics_port <= 65535:
            raise PiopiyValidationError(
                f"metrics_port must be from 0 to 65535, not {metrics_port}")
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
            layout=layout,
            swap_channels=swap_channels,
            late_after=late_after,
            reply_batch_ms=reply_batch_ms,
            analytics=(AnalyticsSettings() if analytics is True
                       else analytics if isinstance(analytics, AnalyticsSettings) else None),
            max_ahead_seconds=None if max_audio_ahead is None else float(max_audio_ahead),
        )
        self._auth = Authenticator(auth)
        self._signed = callable(getattr(auth, "verify", None))
        self._max_calls = max_calls
        self._connections = ConnectionGate(max_calls, self._refused_at_accept)
        self._on_call = on_call
        self._rest = rest_client
        self._clocks = DeliveryClocks(latency)
        self._coalescer = ReadCoalescer(
            coalescing_interval(coalesce_reads, self._clocks.latency),
            live=lambda: bool(self._active))
        self._continuity: Continuity[CallStream] = Continuity(float(reconnect_grace))
        self._metrics_at = None if metrics_port is None else (metrics_host, metrics_port)
        self._metrics: MetricsEndpoint | None = None
        self._sweeper: asyncio.Future[None] | None = None
        self._drain_timeout = drain_timeout
        self._transport = make_transport(transport, async_auth=_is_async_hook(auth),
                                         max_message_bytes=max_frame_bytes,
                                         ping_interval=ping_interval,
                                         ping_timeout=ping_timeout,
                                         open_timeout=float(open_timeout))
        self._listener: Listener | None = None
        self._active: dict[CallStream, None] = {}  # connected calls, insertion-ordered
        self._app_tasks: set[asyncio.Task[Any]] = set()
        self._queues: list[asyncio.Queue[CallStream | None]] = []
        self._draining = False
        self._idle: asyncio.Event | None = None  # set when no call is connected
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._loop_handler: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._number = 0
        self._refused: collections.Counter[str] = collections.Counter()
        self._timed_out = 0
        self._failed = 0
        self._app_errors = 0
        self._resumed = 0
        self._ended = ServerStats()  # the audio counters of the calls that ended
        self._publisher = None if publish is None else _publisher(publish)

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
            if self._publisher is not None:
                await self._publisher.start()
            if self._metrics_at is not None:
                self._metrics = _metrics_endpoint(self)
                await self._metrics.start(*self._metrics_at)
            self._listener = await self._transport.listen(
                self.host, self._port, admit=self._admit, session=self._session, ssl=self._ssl,
                reuse_port=self._reuse_port, connections=self._connections)
            self._quiet_accept_errors()
            self._sweeper = asyncio.ensure_future(self._sweep())
            # Port 0 once started: a transport without a socket of its own (a web
            # application's route, memory).
            logger.info("%s (target %d Hz)", f"listening on {self.url}" if self.port else
                        "accepting calls through its transport, no port of its own",
                        self.target_rate)
        return self

    @property
    def serving(self) -> bool:
        """True while the server accepts calls: started, not draining, not closing."""
        return self._listener is not None and self._closing is None and not self._draining

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

    async def drain(self, seconds: float) -> None:
        """Stop accepting calls (``/healthz`` answers 503 and the listening socket
        closes, so a load balancer moves on), let the live calls end on their own for up
        to ``seconds``, then :meth:`close` the rest."""
        if self._listener is None or self._closing is not None:
            return await self.close()
        if not self._draining:
            self._draining = True
            logger.info("draining: %d calls live, up to %g s", len(self._active), seconds)
            await self._listener.stop_accepting()
        if self._active:
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), seconds)
        if self._active:
            logger.info("drain time over: closing %d calls", len(self._active))
        await self.close()

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
        for call in self._continuity.waiting():
            self._continuity.resume(call.call_id)
            self._end(call, call.close_info, None)
        if self._app_tasks:
            done, pending = await asyncio.wait(set(self._app_tasks), timeout=self._drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("%d call tasks still running after %.1f s: cancelled",
                               len(pending), self._drain_timeout)
                await asyncio.wait(pending)
        if self._publisher is not None:
            await self._publisher.close()
        for queue in self._queues:
            queue.put_nowait(None)
        if self._metrics is not None:
            await self._metrics.close()
        self._coalescer.close()
        self._restore_loop_handler()
        self._closed.set()
        logger.info("server closed")

    # -- calls --------------------------------------------------------------------------

    async def calls(self) -> AsyncIterator[CallStream]:
        """Yield each call as it is handed over, until the server closes."""
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
        """Totals over every call so far, live ones (and dropped ones waiting for their
        connection) included."""
        return total((
            self._ended,
            *(ServerStats.of_call(call.stats)
              for call in (*self._active, *self._continuity.waiting())),
            ServerStats(
                active_calls=len(self._active), total_calls=self._number,
                rejected_calls=sum(self._refused.values()), failed_calls=self._failed,
                app_errors=self._app_errors, timed_out_calls=self._timed_out,
                resumed_calls=self._resumed, refused_by_reason=dict(self._refused)),
            self._publisher.stats if self._publisher is not None else ServerStats()))

    def _refused_at_accept(self, remote: str) -> None:
        self._refused["busy"] += 1
        _refusals.warning("connection from %s refused: %d connections already (calls and "
                          "opening handshakes)", remote, self._connections.open)

    def _admit(self, handshake: Handshake) -> Verdict | Awaitable[Verdict]:
        if self._max_calls is not None and len(self._active) >= self._max_calls:
            self._refused["busy"] += 1
            _refusals.warning("stream %s from %s refused: %d calls already",
                              printable(handshake.route), handshake.remote, len(self._active))
            return SERVER_BUSY
        verdict = self._auth(handshake)
        if inspect.isawaitable(verdict):
            return self._admit_later(verdict, handshake)
        return self._counted(verdict, handshake)

    async def _admit_later(self, pending: Awaitable[Verdict], handshake: Handshake) -> Verdict:
        try:
            verdict = await pending
        except BaseException:
            # No verdict: the handshake was abandoned (cancelled, or a transport that
            # cannot wait gave up on the check). It was not let in.
            self._refused["error"] += 1
            raise
        return self._counted(verdict, handshake)

    def _counted(self, verdict: Verdict, handshake: Handshake) -> Verdict:
        if not isinstance(verdict, Rejection):
            why = self._continuity.barred(_named_id(verdict), time.monotonic())
            if why is None:
                return verdict
            _refusals.info("stream %s from %s refused: its call has ended (%s)",
                           printable(handshake.route), handshake.remote, why)
            verdict = CALL_ENDED
        self._refused[refusal_reason(verdict.status)] += 1
        return verdict

    async def _session(self, link: Link, params: dict[str, Any]) -> None:
        if self._max_calls is not None and len(self._active) >= self._max_calls:
            # Several handshakes raced past the check in _admit: the limit is exact here.
            self._refused["busy"] += 1
            await link.close(1013, "too many calls")
            return
        named = _named_id(params)
        resumed = self._continuity.resume(named) if named is not None else None
        if resumed is not None:
            call = self._continue(resumed, link)
        else:
            self._number += 1
            call = CallStream(link, params, self._settings, self._clocks, number=self._number,
                              signed=self._signed, on_known=self._hand_over)
            logger.info("call %s connected from %s on %s", call.call_id, call.remote,
                        printable(call.route))
        current = [call]  # the call this connection feeds; a text frame may change it
        self._active[call] = None
        self._coalescer.wake()

        def on_text(text: str) -> None:
            target = current[0]
            knew = target.id_from_metadata
            event = target.receive_text(text)
            if not knew and target.id_from_metadata and target is call and resumed is None:
                self._identified(target, link, current, on_text)
                if current[0] is not target:
                    return  # the metadata again, of the call this connection continues
            target.announce()
            target.dispatch(event)

        close_info: CloseInfo | None = None
        error = None
        close_code, close_reason = 1011, "internal error"
        try:
            close_info = await link.pump(call.sink, on_text)
        except PolicyViolation as exc:
            error = str(exc)
            close_code, close_reason = exc.code, error
            log = _refusals.info if current[0].discarded else logger.warning
            log("call %s closed: %s", current[0].call_id, error)
        except Exception as exc:
            # Contained: whatever went wrong ends this call only.
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("call %s failed", current[0].call_id)
        finally:
            ended = current[0]
            self._active.pop(ended, None)
            if self._idle is not None and not self._active:
                self._idle.set()
            if not ended.discarded and not self._suspend(ended, close_info, error):
                self._end(ended, close_info, error)
        if error is not None:
            with contextlib.suppress(Exception):
                await link.close(close_code, close_reason)

    def _identified(self, call: CallStream, link: Link, current: list[CallStream],
                    on_text: Callable[[str], None]) -> None:
        """The metadata named ``call``'s id: refuse a call that has ended, continue one
        whose connection dropped (when this connection has brought no audio yet)."""
        now = time.monotonic()
        why = self._continuity.barred(call.call_id, now)
        if why is not None:
            # Not a call: the platform's client coming back to one the receiver ended.
            call.discard()
            self._number -= 1
            self._refused["ended"] += 1
            raise PolicyViolation(f"call {call.call_id} has ended ({why})")
        if call.audio_started or call.sink.first_frame is not None:
            return
        dropped = self._continuity.resume(call.call_id)
        if dropped is None:
            return
        current[0] = self._continue(dropped, link)
        link.redirect(dropped.sink, on_text)
        self._active.pop(call, None)
        self._active[dropped] = None
        self._number -= 1  # not a call of its own
        call.discard()

    def _continue(self, call: CallStream, link: Link) -> CallStream:
        call.reconnect(link)
        self._resumed += 1
        logger.info("call %s reconnected from %s (%d so far); continuing it", call.call_id,
                    call.remote, call.stats.reconnects)
        return call

    def _suspend(self, call: CallStream, close_info: CloseInfo | None, error: str | None) -> bool:
        """Keep a call whose connection dropped (not ended by either side on purpose)
        waiting for it to come back; True if it waits."""
        if (error is not None or call.closed_by_receiver is not None or not call.id_known
                or self._closing is not None or self._draining):
            return False
        if close_info is not None and close_info.code not in DROPPED:
            return False  # the platform ended the stream, or broke the protocol
        if not self._continuity.suspend(call.call_id, call, time.monotonic()):
            return False
        call.suspend(close_info)
        logger.info("call %s: connection dropped (close %s); waiting %g s for it to return",
                    call.call_id, None if close_info is None else close_info.code,
                    self._continuity.grace)
        return True

    def _end(self, call: CallStream, close_info: CloseInfo | None, error: str | None) -> None:
        # End the call (readers get everything, then the end) before any closing
        # handshake, which may wait on the peer.
        try:
            call.finish(close_info, error)
        except Exception:
            error = error or "failed to finish the call"
            logger.exception("call %s: failed to finish", call.call_id)
        if call.closed_by_receiver is not None and call.id_known:
            self._continuity.bar(call.call_id, call.closed_by_receiver, time.monotonic())
        self._count_ended(call, close_info, error)

    async def _sweep(self) -> None:
        """Once a second: close the calls past a limit (no audio since connecting, silent
        and not paused since the last frame, on for too long), and end the dropped calls
        whose connection did not come back in time."""
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            wall = time.time()
            for call in list(self._active):
                reason = self._limits.broken_by(call, wall)
                if (reason is not None and not call.ended
                        and call.closed_by_receiver is None):
                    logger.info("call %s closed: %s", call.call_id, reason)
                    self._timed_out += 1
                    asyncio.ensure_future(call.close(1008, reason))
                    if self._rest is not None and reason.startswith("longer"):
                        asyncio.ensure_future(self._hang_up(call))
            for call in self._continuity.expired(time.monotonic()):
                logger.info("call %s: its connection did not return", call.call_id)
                self._end(call, call.close_info, None)

    async def _hang_up(self, call: CallStream) -> None:
        """Ask the platform to end a call the receiver ended, so the media server's
        client stops reconnecting to it."""
        rest = self._rest
        assert rest is not None
        try:
            await asyncio.to_thread(rest.hangup, call.call_id)
        except Exception as exc:
            logger.warning("call %s: hang-up through the REST API failed: %s", call.call_id,
                           exc)

    def _hand_over(self, call: CallStream) -> None:
        """Hand ``call`` to the application: it is known (its metadata or its audio
        came, or it ended), or ``hold_seconds`` passed since it connected."""
        if self._publisher is not None:
            self._publisher.add_call(call)
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

    def _count_ended(self, call: CallStream, close_info: CloseInfo | None,
                     error: str | None) -> None:
        s = call.stats
        decision = call.format_decision
        layouts = {} if decision is None else {
            f"{decision.format.layout} by {decision.how}": 1}
        self._ended = (self._ended + ServerStats.of_call(s) + ServerStats(layouts=layouts)
                       + _conversation(call))
        clean = error is None and close_info is not None and close_info.clean
        if not clean:
            self._failed += 1
        logger.info("call %s ended: %s, %.2f s of audio, %d frames, %d decode errors, "
                    "%s, close %s%s", call.call_id, call.format_summary, s.received_seconds,
                    s.frames, s.decode_errors, _overruns(s.overruns_by_channel),
                    close_info.code if close_info is not None else None,
                    f" ({error})" if error else "")

    # -- the event loop's handler of failed accepts ---------------------------------------

    def _quiet_accept_errors(self) -> None:
        """Out of file descriptors, asyncio logs every failed accept: at a busy port that
        is hundreds of MB of log. Keep one line per 10 s (the rest counted) while this
        server runs; the loop's own handler is put back when it closes."""
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        accepts = RateLimitedLog(logging.getLogger("asyncio"), burst=1, per=10.0)

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if "accept" in str(context.get("message", "")):
                accepts.log(logging.ERROR, "%s", context.get("message"))
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        self._loop_handler = (loop, previous)
        loop.set_exception_handler(handler)

    def _restore_loop_handler(self) -> None:
        if self._loop_handler is not None:
            loop, previous = self._loop_handler
            loop.set_exception_handler(previous)
            self._loop_handler = None


def _conversation(call: CallStream) -> ServerStats:
    """What an ended call's conversation adds to the totals (nothing without analytics)."""
    if call.analytics is None:
        return ServerStats()
    summary = call.analytics.summary()
    return ServerStats(
        talk_seconds={name: p["talk_seconds"] for name, p in summary["parties"].items()},
        overlap_seconds=summary["overlap_seconds"],
        interruptions=len(summary["interruptions"]),
        long_silences=summary["silences"]["count"])


def _named_id(params: Any) -> str | None:
    """The call id a connection's (verified) parameters name: ``call_id`` and its
    kin, else the application's ``call_ref``."""
    if not isinstance(params, dict):
        return None
    named = call_id_from_params(params)
    if named is None and params.get("call_ref"):
        named = printable(str(params["call_ref"]))
    return named


def _overruns(by_channel: dict[str, int] | Any) -> str:
    """``overruns 0``, or per channel, with a hint when one was never read."""
    total = sum(by_channel.values())
    if not total:
        return "0 overruns"
    parts = ", ".join(f"{name} {count}" for name, count in by_channel.items() if count)
    return f"overruns {parts} (samples lost: a channel read too slowly, or not at all)"


def _is_async_hook(auth: Any) -> bool:
    """True for an auth hook that is a coroutine function (or an object whose
    ``__call__`` is one): its checks must be awaited during the handshake."""
    call = type(auth).__dict__.get("__call__") if auth is not None else None
    return inspect.iscoroutinefunction(auth) or inspect.iscoroutinefunction(call)


def _publisher(publish: Any) -> Any:
    """The publisher ``publish`` names. The bus is a layer above the receiver (it reads
    calls): loaded by name, only when a server publishes."""
    import importlib
    return importlib.import_module("piopiy_fast.bus.nats").publisher_for(publish)


def _metrics_endpoint(server: StreamServer) -> MetricsEndpoint:
    try:
        from .metrics import MetricsEndpoint
    except ImportError as exc:
        raise PiopiyValidationError(
            "metrics need prometheus-client: pip install 'piopiy-fast[metrics]'") from exc
    return MetricsEndpoint(lambda: server.stats, lambda: server.serving)


def _check(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise PiopiyValidationError(
            f"{name} must be one of {', '.join(map(str, allowed))}, not {value!r}")
