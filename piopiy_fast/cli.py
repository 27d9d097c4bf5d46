"""The ``piopiy-fast`` command: ``serve``, ``record``, ``simulate`` and ``demo``.

``serve`` runs a receiver (one line per call start and end, live totals, optional
recording); ``record DIR`` is ``serve --record DIR``; ``simulate`` drives any server
with simulated Piopiy calls; ``demo`` runs both in one process and prints what was
received. SIGINT and SIGTERM shut down cleanly (recordings finalised) with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .protocol import LISTEN_MODES, SAMPLE_RATES

TOKEN_ENV = "PIOPIY_FAST_TOKEN"
SECRET_ENV = "PIOPIY_FAST_SECRET"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="piopiy-fast",
        description="Receive, record and simulate Piopiy (TeleCMI) call audio streams.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a stream receiver")
    _serve_options(serve)
    serve.add_argument("--record", metavar="DIR", type=Path,
                       help="write one WAV per call and channel into DIR")

    record = commands.add_parser("record", help="run a receiver that records every call")
    record.add_argument("record", metavar="DIR", type=Path, help="directory for the WAV files")
    _serve_options(record)

    sim = commands.add_parser("simulate", help="send simulated Piopiy calls to a server")
    sim.add_argument("url", help="ws:// or wss:// URL of the receiver")
    _call_options(sim, calls=1, mode="caller", seconds=None)
    sim.add_argument("--wav", type=Path, help="stream this 16-bit WAV instead of synthetic speech")
    sim.add_argument("--frame-ms", type=float, default=20.0, help="frame length (default 20)")
    sim.add_argument("--no-start-event", dest="start_event", action="store_false",
                     help="send no JSON start event (the format must come from the URL)")
    sim.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                     help=f"send 'Authorization: Bearer TOKEN' (default ${TOKEN_ENV})")
    sim.add_argument("--report", type=Path, metavar="FILE",
                     help="write a JSON report of what was sent (counts, SHA-256 per channel)")
    sim.add_argument("--sent-dir", type=Path, metavar="DIR",
                     help="write exactly what was sent as WAV files into DIR")

    demo = commands.add_parser(
        "demo", help="a receiver fed by simulated calls, then a table of what it received")
    _call_options(demo, calls=20, mode="both", seconds=10.0)
    demo.add_argument("--target-rate", type=int, default=16000, choices=SAMPLE_RATES,
                      help="rate the receiver delivers (default 16000)")
    demo.add_argument("--record", type=Path, metavar="DIR",
                      help="where to write the WAV files (default: a new temporary directory)")
    return parser


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks one)")
    p.add_argument("--target-rate", type=int, default=16000, choices=SAMPLE_RATES,
                   help="rate delivered to readers and recordings (default 16000)")
    p.add_argument("--listen-mode", default="caller", choices=LISTEN_MODES,
                   help="format of calls that name none (default caller)")
    p.add_argument("--source-rate", type=int, default=8000, choices=SAMPLE_RATES,
                   help="rate of calls that name none (default 8000)")
    p.add_argument("--ring-seconds", type=float, default=2.0,
                   help="audio buffered per channel (default 2)")
    p.add_argument("--max-calls", type=int, help="refuse calls beyond this many (HTTP 503)")
    p.add_argument("--transport", default="websockets", choices=("websockets", "picows"),
                   help="WebSocket library (default websockets; picows is the fast option, "
                        "run on uvloop when installed)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"require this bearer token or ?token= (default ${TOKEN_ENV})")
    p.add_argument("--signing-secret", default=os.environ.get(SECRET_ENV),
                   help=f"require URLs signed with this secret (default ${SECRET_ENV})")
    p.add_argument("--certfile", type=Path, help="TLS certificate (PEM) to serve wss://")
    p.add_argument("--keyfile", type=Path, help="TLS private key (PEM)")
    p.add_argument("--stats-interval", type=float, default=10.0,
                   help="seconds between totals lines (default 10; 0 for none)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")


def _call_options(p: argparse.ArgumentParser, *, calls: int, mode: str,
                  seconds: float | None) -> None:
    p.add_argument("--calls", type=int, default=calls, help=f"concurrent calls (default {calls})")
    p.add_argument("--mode", default=mode, choices=LISTEN_MODES,
                   help=f"listen mode (default {mode})")
    p.add_argument("--rate", type=int, default=8000, choices=SAMPLE_RATES,
                   help="source rate, the Piopiy voice_quality (default 8000)")
    p.add_argument("--seconds", type=float, default=seconds,
                   help="audio per call (default: "
                        + (f"{seconds:g})" if seconds else "10, or the whole --wav file)"))
    p.add_argument("--fast", action="store_true",
                   help="send as fast as possible instead of in real time")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic audio (default 0)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command in ("serve", "record"):
        run = serve_command(args)
    elif args.command == "simulate":
        run = simulate_command(args)
    else:
        from .demo import demo_command
        run = demo_command(args)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(args)) as runner:
            return runner.run(run)
    except KeyboardInterrupt:
        return 0


def _loop_factory(args: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the picows transport when it is installed (most of picows' gain
    comes from it); asyncio's own loop otherwise."""
    if getattr(args, "transport", "websockets") != "picows":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def out(*parts: Any) -> None:
    print(*parts, flush=True)


async def until_stopped(task: asyncio.Future[Any], stop: asyncio.Event) -> bool:
    """Wait for ``task``, or for ``stop`` and then cancel it; True if stopped."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return False
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (for a clean shutdown) instead of killing."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass


# -- serve ------------------------------------------------------------------------------------

async def serve_command(args: argparse.Namespace) -> int:
    from .receiver import StreamServer
    from .recorder import Recorder

    ssl_context = None
    if args.certfile:
        import ssl
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(args.certfile, args.keyfile)
    auth: Any = None
    if args.signing_secret:
        from .signing import SignedURL
        auth = SignedURL(args.signing_secret)
    elif args.token:
        auth = args.token
    recorder = Recorder(args.record) if args.record else None

    async def on_call(call: Any) -> None:
        consumer = asyncio.ensure_future(
            recorder.record(call) if recorder is not None else discard(call))
        if await call.wait_audio():
            out(f"+ call {call.call_id} {call.listen_mode} {call.source_rate} Hz "
                f"from {call.remote}")
        await call.wait_closed()
        files = await consumer
        s = call.stats
        info = call.close_info
        close = f"close {info.code}" if info is not None else f"error {call.error}"
        recorded = f", {len(files)} file(s)" if recorder is not None else ""
        out(f"- call {call.call_id} {s.received_seconds:.2f} s, {s.frames} frames, "
            f"{s.decode_errors} decode errors, {s.overruns} overruns, {s.late_frames} late, "
            f"{close}{recorded}")

    server = StreamServer(
        args.host, args.port, target_rate=args.target_rate, ring_seconds=args.ring_seconds,
        listen_mode=args.listen_mode, source_rate=args.source_rate, auth=auth,
        max_calls=args.max_calls, ssl=ssl_context, on_call=on_call, transport=args.transport)
    stop = asyncio.Event()
    install_stop_signals(stop)
    await server.start()
    out(f"listening on {server.url} (delivering {server.target_rate} Hz; calls that name "
        f"no format: {args.listen_mode} at {args.source_rate} Hz)")
    if recorder is not None:
        out(f"recording to {recorder.directory}")
    ticker = asyncio.ensure_future(print_totals(server, args.stats_interval))
    try:
        await asyncio.wait_for(stop.wait(), args.duration)
    except TimeoutError:
        pass
    out("shutting down")
    ticker.cancel()
    await server.close()
    out(totals_line(server.stats, time.monotonic(), None))
    return 0


async def discard(call: Any) -> list[Path]:
    """Read and drop a call's audio, so its counters show a consumer keeping up."""
    async def drain(name: str) -> None:
        async for _ in call.channel(name):
            pass
    await asyncio.gather(drain("caller"), drain("callee"))
    return []


def totals_line(stats: Any, now: float, last: tuple[float, int] | None) -> str:
    rate = ""
    if last is not None and now > last[0]:
        rate = f" ({(stats.frames - last[1]) / (now - last[0]):,.0f}/s)"
    return (f"totals: {stats.active_calls} live, {stats.total_calls} calls, "
            f"{stats.rejected_calls} refused, {stats.failed_calls} failed, "
            f"{stats.frames:,} frames{rate}, {stats.received_seconds:,.1f} s of audio, "
            f"{stats.decode_errors} decode errors, {stats.overruns} overruns")


async def print_totals(server: Any, interval: float) -> None:
    if not interval or interval <= 0:
        return
    last = (time.monotonic(), 0)
    while True:
        await asyncio.sleep(interval)
        stats = server.stats
        now = time.monotonic()
        out(totals_line(stats, now, last))
        last = (now, stats.frames)


# -- simulate ----------------------------------------------------------------------------------

async def simulate_command(args: argparse.Namespace) -> int:
    from .simulate import Simulator, write_sent

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    sim = Simulator(
        args.url, calls=args.calls, listen_mode=args.mode, sample_rate=args.rate,
        seconds=args.seconds if args.seconds is not None or args.wav else 10.0,
        realtime=not args.fast, frame_ms=args.frame_ms, wav=args.wav, seed=args.seed,
        start_event=args.start_event, headers=headers)
    pace = "as fast as possible" if args.fast else "in real time"
    out(f"simulating {args.calls} {args.mode} call(s) at {args.rate} Hz, {pace}, "
        f"into {redact(args.url)}")
    stop = asyncio.Event()
    install_stop_signals(stop)
    task = asyncio.ensure_future(sim.run())
    progress = asyncio.ensure_future(show_progress(task, lambda: _sim_progress(sim, args.calls)))
    if await until_stopped(task, stop):
        out("stopped: every call closed")
    await progress
    report = sim.report()
    for call in report.calls:
        status = f"error: {call.error}" if call.error else "ok"
        out(f"  {call.call_id}  {call.listen_mode:6} {call.sample_rate} Hz  "
            f"{call.frames:6d} frames  {call.seconds:8.2f} s sent  {status}")
    speed = report.seconds / report.wall_seconds if report.wall_seconds else 0.0
    out(f"sent {report.seconds:,.1f} s of audio in {report.wall_seconds:.2f} s "
        f"({speed:,.1f}x real time), {report.frames:,} frames; {len(report.failed)} failed")
    if args.report:
        args.report.write_text(report.to_json())
        out(f"report written to {args.report}")
    if args.sent_dir:
        paths = write_sent(report, args.sent_dir)
        out(f"{len(paths)} WAV file(s) of the sent audio written to {args.sent_dir}")
    return 1 if report.failed else 0


def _sim_progress(sim: Any, calls: int) -> str:
    finished, seconds = sim.progress
    return f"{finished}/{calls} calls done, {seconds:,.1f} s of audio sent"


def redact(url: str) -> str:
    """A URL without its query string (which may carry a token or signature)."""
    return url.split("?", 1)[0] + ("?..." if "?" in url else "")


async def show_progress(task: asyncio.Future[Any], describe: Any, every: float = 1.0) -> None:
    """While ``task`` runs, write a progress line to stderr every ``every`` seconds
    (rewritten in place on a terminal)."""
    tty = sys.stderr.isatty()
    started = time.monotonic()
    shown = False
    while not task.done():
        await asyncio.wait([task], timeout=every)
        if task.done():
            break
        line = f"[{time.monotonic() - started:5.1f} s] {describe()}"
        sys.stderr.write(f"\r{line}\x1b[K" if tty else line + "\n")
        sys.stderr.flush()
        shown = True
    if shown and tty:
        sys.stderr.write("\n")
        sys.stderr.flush()
