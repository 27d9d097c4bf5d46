"""Prometheus metrics and a health check for a receiver, over HTTP.

``GET /metrics`` answers the Prometheus text format; ``GET /healthz`` answers 200 while
the server accepts calls and 503 once it is draining (or not started), so a load
balancer stops sending it new calls before it goes away.

The call counters are read from the server's own totals at scrape time: nothing is
added to the per-frame path. The one thing measured continuously is the event loop's
lag (how late a timer fires), sampled four times a second: when it grows, frames wait.
Needs ``prometheus-client`` (the ``metrics`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .stats import REFUSAL_KINDS, ServerStats

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_EVERY = 0.25  # seconds between event-loop lag samples
MAX_REQUEST_BYTES = 8192


class MetricsListenError(OSError):
    """The metrics endpoint could not listen: the OS's error, with the address it was for
    (so that a busy metrics port is never taken for the WebSocket port)."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.host = host
        self.port = port


class ServerCollector(Collector):
    """A server's counters as Prometheus metrics, read when scraped.

    Args:
        stats: Gives the server's totals now.
    """

    def __init__(self, stats: Callable[[], ServerStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        yield GaugeMetricFamily("piopiy_fast_calls_live", "Calls connected now",
                                value=s.active_calls)
        yield CounterMetricFamily("piopiy_fast_calls", "Calls accepted", value=s.total_calls)
        refused = CounterMetricFamily("piopiy_fast_calls_refused",
                                      "Connections refused, by reason", labels=["reason"])
        for reason in REFUSAL_KINDS:
            refused.add_metric([reason], s.refused_by_reason.get(reason, 0))
        yield refused
        layouts = CounterMetricFamily(
            "piopiy_fast_calls_by_layout",
            "Ended calls by layout (mono, mixed, stereo) and what decided it",
            labels=["layout", "decided_by"])
        for key, count in sorted(s.layouts.items()):
            layout, _, how = key.partition(" by ")
            layouts.add_metric([layout, how], count)
        yield layouts
        talk = CounterMetricFamily("piopiy_fast_talk_seconds",
                                   "Seconds each party spoke, ended calls (analytics on)",
                                   labels=["party"])
        for party, seconds in sorted(s.talk_seconds.items()):
            talk.add_metric([party], seconds)
        yield talk
        for name, help_text, value in (
            ("calls_timed_out", "Calls closed for a limit: no audio, silence, length",
             s.timed_out_calls),
            ("calls_failed", "Calls that ended abnormally (no clean close, or an error)",
             s.failed_calls),
            ("calls_resumed", "Connections that continued a call whose connection dropped",
             s.resumed_calls),
            ("hints_overruled", "Format hints (URL, metadata, defaults) the stream contradicted",
             s.hints_overruled),
            ("frames", "Audio frames received", s.frames),
            ("bytes", "Audio bytes received", s.bytes),
            ("audio_seconds", "Seconds of call audio received", s.received_seconds),
            ("decode_errors", "Frames dropped: no whole samples", s.decode_errors),
            ("overruns", "Samples lost because a reader fell behind", s.overruns),
            ("late_frames", "Frames late on the real-time schedule", s.late_frames),
            ("rate_limited_frames",
             "Frames dropped: a call sent audio faster than real time past its burst",
             s.rate_limited_frames),
            ("app_errors", "Exceptions in application callbacks and tasks", s.app_errors),
            ("overlap_seconds", "Seconds both parties spoke at once, ended calls",
             s.overlap_seconds),
            ("interruptions", "One party cutting in on the other, ended calls",
             s.interruptions),
            ("long_silences", "Silences over the threshold (5 s by default), ended calls",
             s.long_silences),
            ("bus_published", "Messages the bus confirmed", s.bus_published),
            ("bus_dropped", "Messages dropped, oldest audio first: the bus was slow or gone",
             s.bus_dropped),
            ("bus_dropped_bytes", "Bytes of the messages dropped", s.bus_dropped_bytes),
            ("bus_unconfirmed", "Messages sent and never confirmed", s.bus_unconfirmed),
            ("bus_rejected", "Messages the bus refused", s.bus_rejected),
            ("bus_reconnects", "Connections to the bus after the first", s.bus_reconnects),
        ):
            yield CounterMetricFamily(f"piopiy_fast_{name}", help_text, value=value)
        yield GaugeMetricFamily("piopiy_fast_bus_in_flight_bytes",
                                "Bytes queued for the bus or waiting for its confirmation",
                                value=s.bus_in_flight_bytes)


class MetricsEndpoint:
    """``/metrics`` and ``/healthz`` for one server, on its event loop.

    Args:
        stats: Gives the server's totals now (read at each scrape).
        serving: Says whether the server accepts calls (``/healthz``).
    """

    def __init__(self, stats: Callable[[], ServerStats], serving: Callable[[], bool]) -> None:
        self._serving = serving
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ServerCollector(stats))
        self.loop_lag = Histogram(
            "piopiy_fast_event_loop_lag_seconds", "How late a timer on the event loop fires",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry)
        self._http: asyncio.Server | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (0: a free port, then in :attr:`port`).

        Raises:
            MetricsListenError: The address cannot be had (taken, or not this host's).
        """
        try:
            self._http = await asyncio.start_server(self._answer, host, port,
                                                    limit=MAX_REQUEST_BYTES)
        except OSError as exc:
            raise MetricsListenError(host, port, exc) from exc
        self.port = self._http.sockets[0].getsockname()[1]
        self._lag_task = asyncio.ensure_future(self._measure_lag())

    async def close(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self._http is not None:
            self._http.close()
            await self._http.wait_closed()

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_EVERY
            await asyncio.sleep(LAG_EVERY)
            self.loop_lag.observe(max(0.0, loop.time() - due))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            method, path = (head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""])[:2]
            if method != b"GET":
                status, body = "405 Method Not Allowed", b"GET only\n"
            elif path.split(b"?")[0] == b"/metrics":
                status, body = "200 OK", generate_latest(self.registry)
            elif path.split(b"?")[0] == b"/healthz":
                serving = self._serving()
                status = "200 OK" if serving else "503 Service Unavailable"
                body = b"serving\n" if serving else b"draining\n"
            else:
                status, body = "404 Not Found", b"/metrics or /healthz\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            pass  # a client that sent no whole request gets nothing
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
