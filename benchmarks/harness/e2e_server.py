"""A receiver under test, alone in its own process, answering the orchestrator on stdin.

    python -m harness.e2e_server baseline|ours|discard [--transport NAME]   (from benchmarks/)
        [--loop asyncio|uvloop] [--core N] [--ring-seconds S] [--port P --reuse-port]

``baseline`` is the receiver people write by hand: a plain ``websockets`` server doing
numpy de-interleave + two ``soxr.ResampleStream`` (HQ) per `both` frame. ``discard``
receives and counts frames, nothing else (the floor of a transport library). ``ours`` is
``StreamServer(host, port, on_call=...)`` with library defaults (``--transport``
passed only when named) and the README's consumer: ``async for chunk in call.caller``
and ``call.callee``, concurrently.

Both applications note, per channel, when each piece of audio became theirs, so the
server can tell the latency of every frame: the client sends each call a start event
carrying the time its frame 0 is due (``due0``, on the machine's monotonic clock, which
every process shares) and then frame k at ``due0 + k * 20 ms``. In the baseline, frame k
is the application's once its handler has resampled it (soxr's HQ stream itself then
hands out its output in blocks, a fixed algorithmic delay not counted: see
docs/benchmarks.md). In ours, once a reader has yielded every output sample the pipeline can make
from it: ``(k + 1) * 320 - lag`` samples at 16 kHz, ``lag`` being the native ingest's
fixed hold-back, measured once at start; ours wakes its readers on a clock, every
``latency`` seconds (library default), which the server reports beside the figures.
The bookkeeping costs one clock read per chunk (ours) or per frame (the baseline, which
gets its arrays frame by frame).

Commands (one JSON object per line in, one per line out):
  window {start, end, latency: [a, b]}  CPU and frames between two clock times, and
                                         the latency of the frames due in [a, b]
  mark / report {expect}                 CPU and frames from now until the application
                                         has ``expect`` channel-frames readable
  settle                                 wait until every call has ended; totals
  rss                                    resident KiB after a garbage collection
The first line out is ``{"port", "loop", "lag"}``.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import socket
import sys
import threading
import time
from array import array
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .cores import core_times, foreign_share

FRAME_SECONDS = 0.02
OUT_RATE = 16000
OUT_PER_FRAME = 320  # samples per channel per 20 ms at 16 kHz
IN_PAIRS_PER_FRAME = 160  # `both` at 8 kHz: 160 sample pairs of L16 per frame
monotonic = time.monotonic


class Channel:
    """One channel's record: when the application's readable frame count went up."""

    __slots__ = ("due0", "times", "counts")

    def __init__(self, due0: Callable[[], float | None]) -> None:
        self.due0 = due0
        self.times = array("d")
        self.counts = array("q")


class Ledger:
    """What the application has got, over every call since the last ``settle``."""

    def __init__(self) -> None:
        self.channels: list[Channel] = []
        self.app_frames = 0  # channel-frames readable by the application
        self.consumers = 0  # application tasks (or handlers) still running
        # The longest a reader is configured to let audio wait before it is woken (ours:
        # the readers' ``latency`` plus the server's read coalescing, library defaults); 0
        # for per-frame delivery.
        self.delivery = 0.0

    def latency(self, start: float, end: float) -> dict[str, Any]:
        """Latency (readable - due) of every channel-frame due in [start, end]."""
        now = monotonic()
        parts = []
        unreadable = 0
        for channel in self.channels:
            due0 = channel.due0()
            if due0 is None:
                continue
            first = max(0, math.ceil((start - due0) / FRAME_SECONDS))
            last = math.floor((end - due0) / FRAME_SECONDS)
            if last < first:
                continue
            k = np.arange(first, last + 1)
            counts = np.frombuffer(channel.counts, dtype=np.int64)
            # A frame not readable yet gets the latency it has so far: a lower bound.
            times = np.append(np.frombuffer(channel.times, dtype=np.float64), now)
            at = times[np.searchsorted(counts, k, side="right")]
            parts.append(at - (due0 + k * FRAME_SECONDS))
            unreadable += int(np.count_nonzero(k >= (counts[-1] if counts.size else 0)))
        if not parts:
            return {"frames": 0, "unreadable": 0, "p50_ms": None, "p99_ms": None,
                    "max_ms": None, "delivery_ms": 1e3 * self.delivery}
        lat = np.concatenate(parts)
        return {
            "delivery_ms": 1e3 * self.delivery,
            "frames": int(lat.size),
            "unreadable": unreadable,
            "p50_ms": 1e3 * float(np.percentile(lat, 50)),
            "p99_ms": 1e3 * float(np.percentile(lat, 99)),
            "max_ms": 1e3 * float(lat.max()),
        }


def due_from_event(event: Any) -> float | None:
    if isinstance(event, dict) and "due0" in event:
        return float(event["due0"])
    return None


# -- the baseline ----------------------------------------------------------------------------

def baseline(ledger: Ledger) -> tuple[Callable[[], Any], Callable[[], dict[str, int]]]:
    import soxr

    received = [0]

    async def handler(ws: Any) -> None:
        ledger.consumers += 1
        left = soxr.ResampleStream(8000, OUT_RATE, 1, dtype="int16", quality="HQ")
        right = soxr.ResampleStream(8000, OUT_RATE, 1, dtype="int16", quality="HQ")
        due0: list[float | None] = [None]
        record = Channel(lambda: due0[0])
        ledger.channels.append(record)
        times, counts = record.times, record.counts
        frames = 0
        try:
            async for message in ws:
                if type(message) is bytes:
                    received[0] += 1
                    pairs = np.frombuffer(message, dtype="<i2").reshape(-1, 2)
                    left.resample_chunk(np.ascontiguousarray(pairs[:, 0]))
                    right.resample_chunk(np.ascontiguousarray(pairs[:, 1]))
                    # The frame is in the application's hands, both channels.
                    frames += 1
                    ledger.app_frames += 2
                    times.append(monotonic())
                    counts.append(frames)
                elif due0[0] is None:
                    due0[0] = due_from_event(json.loads(message))
        finally:
            ledger.consumers -= 1

    return websockets_start(handler), counted_totals(received)


def websockets_start(handler: Callable[[Any], Any]) -> Callable[[], Any]:
    """A plain ``websockets`` server for ``handler``; its start returns the port."""
    from websockets.asyncio.server import serve

    async def start() -> int:
        server = await serve(handler, "127.0.0.1", 0, compression=None)
        return int(server.sockets[0].getsockname()[1])
    return start


def counted_totals(received: list[int]) -> Callable[[], dict[str, int]]:
    """Totals of a server that counts frames in ``received[0]`` and drops nothing."""
    return lambda: {"frames": received[0], "overruns": 0}


# -- floors: receiving and discarding -------------------------------------------------------

def discard(ledger: Ledger,
            transport: str) -> tuple[Callable[[], Any], Callable[[], dict[str, int]]]:
    """What receiving alone costs on each transport library: count, do nothing else."""
    received = [0]

    def counted() -> Channel:
        ledger.consumers += 1
        return Channel(lambda: None)

    if transport == "picows":
        from picows import WSListener, WSMsgType, ws_create_server

        binary, close = WSMsgType.BINARY, WSMsgType.CLOSE

        class Discard(WSListener):  # type: ignore[misc]
            def on_ws_connected(self, transport: Any) -> None:
                counted()

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type is binary:
                    received[0] += 1
                    ledger.app_frames += 2
                elif frame.msg_type is close:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()

            def on_ws_disconnected(self, transport: Any) -> None:
                ledger.consumers -= 1

        async def start() -> int:
            server = await ws_create_server(lambda request: Discard(), "127.0.0.1", 0)
            return int(server.sockets[0].getsockname()[1])
    else:
        async def handler(ws: Any) -> None:
            counted()
            try:
                async for message in ws:
                    if type(message) is bytes:
                        received[0] += 1
                        ledger.app_frames += 2
            finally:
                ledger.consumers -= 1

        start = websockets_start(handler)

    return start, counted_totals(received)


# -- ours ------------------------------------------------------------------------------------

def ours_lag() -> int:
    """How many output samples the call's native ingest holds back in steady state."""
    from piopiy_fast.audio import CallIngest

    ingest = CallIngest(8000, 2, OUT_RATE)
    frame = np.zeros(2 * IN_PAIRS_PER_FRAME, np.int16).tobytes()
    for _ in range(60):
        ingest.ingest(frame)
    return 60 * OUT_PER_FRAME - ingest.rings[0].available


def ours(ledger: Ledger, lag: int, transport: str | None, ring_seconds: float | None,
         port: int = 0, reuse_port: bool = False, publish: str | None = None,
         ) -> tuple[Callable[[], Any], Callable[[], dict[str, int]]]:
    from piopiy_fast import StreamServer

    async def on_published(call: Any) -> None:
        # Publishing: the publisher reads the channels; the application's readers are
        # on the bus (harness/bus_worker.py measures them).
        ledger.consumers += 1
        try:
            await call.wait_closed()
        finally:
            ledger.consumers -= 1

    async def on_call(call: Any) -> None:
        # The README's consumer: both channels read with `async for`, concurrently.
        ledger.consumers += 1
        # What the server delays on purpose: the readers' clock, and the read coalescing
        # that may hold a frame before it is read.
        on_purpose = max(getattr(call.caller, "latency", 0.0),
                         getattr(call.callee, "latency", 0.0))
        ledger.delivery = max(ledger.delivery, on_purpose + server.coalesce_reads)

        def due0() -> float | None:
            for event in call.events:
                due = due_from_event(event)
                if due is not None:
                    return due
            return None

        async def drain(reader: Any) -> None:
            record = Channel(due0)
            ledger.channels.append(record)
            times, counts = record.times, record.counts
            total = readable = 0
            async for chunk in reader:
                total += len(chunk)
                now = (total + lag) // OUT_PER_FRAME
                if now != readable:
                    ledger.app_frames += now - readable
                    readable = now
                    times.append(monotonic())
                    counts.append(now)

        try:
            await asyncio.gather(drain(call.caller), drain(call.callee))
        finally:
            ledger.consumers -= 1

    options: dict[str, Any] = {}
    host: Callable[[], Any] | None = None
    if transport in WEB_APPS:
        # Inside a web application: the application's server owns the port.
        receiver, host = WEB_APPS[transport](port)
        options["transport"] = receiver
    elif transport is not None:
        options["transport"] = transport
    if ring_seconds is not None:
        options["ring_seconds"] = ring_seconds
    if publish is not None:
        options["publish"] = publish
    server = StreamServer("127.0.0.1", port, on_call=on_call if publish is None
                          else on_published, reuse_port=reuse_port, **options)

    async def start() -> int:
        await server.start()
        return int(server.port) if host is None else int(await host())

    def totals() -> dict[str, int]:
        stats = server.stats
        return {"frames": stats.frames, "overruns": stats.overruns,
                "bus_dropped": stats.bus_dropped + stats.bus_unconfirmed}

    return start, totals


# -- inside a web application ---------------------------------------------------------------

def in_starlette(port: int) -> tuple[Any, Callable[[], Any]]:
    """The ASGI adapter at ``/stream`` of a Starlette application under uvicorn (its
    own HTTP and WebSocket protocols, no access log). The StreamServer is started by
    the caller, as an application's lifespan would."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from piopiy_fast.receiver.transports.asgi import AsgiTransport

    receiver = AsgiTransport()
    app = Starlette(routes=[WebSocketRoute("/stream", receiver.app)])
    serving: list[asyncio.Future[None]] = []  # the server's task, kept for the process

    async def start() -> int:
        sock = socket.create_server(("127.0.0.1", port))
        web = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning",
                                            access_log=False, lifespan="off"))
        task = asyncio.ensure_future(web.serve(sockets=[sock]))
        while not web.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        serving.append(task)
        return int(sock.getsockname()[1])

    return receiver, start


def in_aiohttp(port: int) -> tuple[Any, Callable[[], Any]]:
    """The aiohttp adapter at ``/stream`` of an aiohttp application (no access log)."""
    from aiohttp import web

    from piopiy_fast.receiver.transports.aiohttp import AiohttpTransport

    receiver = AiohttpTransport()
    app = web.Application()
    app.router.add_get("/stream", receiver.handler)

    async def start() -> int:
        sock = socket.create_server(("127.0.0.1", port))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        return int(sock.getsockname()[1])

    return receiver, start


WEB_APPS: dict[str, Callable[[int], tuple[Any, Callable[[], Any]]]] = {
    "asgi": in_starlette, "aiohttp": in_aiohttp}


# -- the process -----------------------------------------------------------------------------

def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=["baseline", "ours", "discard"])
    parser.add_argument("--transport", default=None,
                        help="picows, websockets, or inside a web app: asgi, aiohttp")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--ring-seconds", type=float, default=None)
    # one worker of several sharing a port (ours only)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuse-port", action="store_true")
    # ours, publishing every call to NATS JetStream at this URL (bench_bus.py)
    parser.add_argument("--publish", default=None)
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    ledger = Ledger()
    if args.case == "baseline":
        lag = 0
        start, totals = baseline(ledger)
    elif args.case == "discard":
        lag = 0
        start, totals = discard(ledger, args.transport or "websockets")
    else:
        lag = ours_lag()
        start, totals = ours(ledger, lag, args.transport, args.ring_seconds, args.port,
                             args.reuse_port, args.publish)

    def snapshot() -> dict[str, Any]:
        return {"cpu": time.process_time(), "t": monotonic(), **totals(),
                "app_frames": ledger.app_frames, "core": core_times(args.core)}

    def between(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
        frames = second["frames"] - first["frames"]
        cpu = second["cpu"] - first["cpu"]
        wall = second["t"] - first["t"]
        interrupts = second["core"][1] - first["core"][1]
        pinned = args.core is not None
        return {"cpu_s": cpu, "frames": frames, "seconds": wall,
                "cpu_us_per_frame": 1e6 * cpu / frames if frames else None,
                "core_share": cpu / wall,
                # What else ran on this server's core: other processes and the
                # hypervisor's steal are noise, reported beside the figures; interrupts
                # are mostly the network stack working for this server, not counted in
                # its CPU time (the same for every server).
                "foreign_share": foreign_share(first["core"], second["core"], cpu, wall)
                if pinned else None,
                "interrupt_share": interrupts / wall if pinned else None}

    def commands(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        def on_loop(fn: Callable[[], Any]) -> Any:
            async def call() -> Any:
                return fn()
            return asyncio.run_coroutine_threadsafe(call(), loop).result()

        def sleep_until(t: float) -> None:
            while (left := t - monotonic()) > 0:
                time.sleep(left)

        marked: dict[str, Any] = {}
        for line in sys.stdin:
            command = json.loads(line)
            name = command["cmd"]
            if name == "window":
                sleep_until(command["start"])
                first = on_loop(snapshot)
                sleep_until(command["end"])
                second = on_loop(snapshot)
                a, b = command["latency"]
                reply = {**between(first, second),
                         "latency": on_loop(partial(ledger.latency, a, b))}
            elif name == "mark":
                marked = on_loop(snapshot)
                reply = {"ok": True}
            elif name == "report":
                deadline = monotonic() + command.get("timeout", 30.0)
                while ledger.app_frames < command["expect"] and monotonic() < deadline:
                    time.sleep(0.001)
                reply = {**between(marked, on_loop(snapshot)),
                         "app_frames": ledger.app_frames}
            elif name == "settle":
                deadline = monotonic() + command.get("timeout", 30.0)
                while ledger.consumers and monotonic() < deadline:
                    time.sleep(0.005)
                reply = {**on_loop(snapshot), "consumers": ledger.consumers}
                ledger.channels.clear()
                ledger.app_frames = 0
            elif name == "rss":
                on_loop(gc.collect)
                reply = {"rss_kib": rss_kib()}
            else:
                reply = {"error": f"unknown command {name!r}"}
            print(json.dumps(reply), flush=True)
        loop.call_soon_threadsafe(stop.set)  # stdin closed: the run is over

    async def serve() -> None:
        port = await start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        threading.Thread(target=commands, args=(loop, stop), daemon=True).start()
        print(json.dumps({"port": port, "loop": type(loop).__module__, "lag": lag}),
              flush=True)
        await stop.wait()

    if args.loop == "uvloop":
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve())


if __name__ == "__main__":
    main()
