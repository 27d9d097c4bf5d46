"""``piopiy-fast serve`` and ``record``: a receiver with one line per call and live totals."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..stream.wire import CHANNEL_NAMES
from ._console import UsageError, checked_file, install_stop_signals, out

if TYPE_CHECKING:
    from ..receiver.recorder import Recorder
    from ..receiver.workers import Worker


async def serve_command(args: argparse.Namespace, worker: Worker | None = None) -> int:
    """Run a receiver until SIGINT or SIGTERM (or ``--duration``); as one worker of
    ``serve --workers`` when ``worker`` is given: its lines say which worker, and its
    banner and totals go to the supervisor, which prints them for all."""
    from ..receiver.limits import raise_fd_limit
    from ..receiver.recorder import RecordingError
    from ..receiver.server import StreamServer

    raise_fd_limit()  # as servers do: max_calls "auto" is what the raised limit holds

    ssl_context, auth, recorder = serve_settings(args)
    publisher = publisher_for_args(args)
    if worker is None:
        say = out
    else:
        tag = f"[w{worker.index}]"

        def say(line: str, **fields: Any) -> None:
            out(tag, line, worker=worker.index, **fields)
    recordings_failed = 0

    async def on_call(call: Any) -> None:
        nonlocal recordings_failed
        # With --publish the publisher reads the channels.
        consumer = asyncio.ensure_future(
            recorder.record(call) if recorder is not None
            else call.wait_closed() if args.publish else discard(call))
        if await call.wait_audio():
            decision = call.format_decision
            how = f" ({decision.how}" + (f"; overruled {', '.join(decision.overruled)}"
                                         if decision.overruled else "") + ")"
            say(f"+ call {call.call_id} {call.listen_mode} {call.source_rate} Hz "
                f"{call.layout}{how} from {call.remote}", event="call_started",
                call_id=call.call_id, layout=call.layout, decided_by=decision.how,
                overruled=list(decision.overruled))
        await call.wait_closed()
        files: list[Path] = []
        try:
            files = await consumer or []
            recorded = f", {len(files)} file(s)" if recorder is not None else ""
        except RecordingError as exc:
            recordings_failed += 1
            files = list(exc.paths)
            recorded = (f", {len(exc.paths)} file(s), recording failed "
                        f"({'; '.join(exc.reasons)})")
        summary = call.analytics.summary() if call.analytics is not None else None
        if summary is not None and recorder is not None and files:
            # Beside the recordings: <id>.analytics.json
            stem = files[0].name.split(".", 1)[0]
            (recorder.directory / f"{stem}.analytics.json").write_text(
                json.dumps(summary, indent=2) + "\n")
        s = call.stats
        info = call.close_info
        close = f"close {info.code}" if info is not None else f"error {call.error}"
        lost = {name: n for name, n in s.overruns_by_channel.items() if n}
        overruns = f"{s.overruns} overruns"
        if lost:
            overruns += (f" ({', '.join(f'{name} {n}' for name, n in lost.items())}: "
                         f"a channel read too slowly, or never)")
        say(f"- call {call.call_id} {s.received_seconds:.2f} s, {s.frames} frames, "
            f"{s.decode_errors} decode errors, {overruns}, {s.late_frames} late, "
            f"{close}{recorded}", event="call_ended", call_id=call.call_id,
            overruns_by_channel=dict(s.overruns_by_channel))
        if summary is not None and summary["duration_seconds"] > 0:
            say(f"  {call.call_id}: {conversation_line(summary)}", event="call_analytics",
                call_id=call.call_id, analytics=summary)

    server = StreamServer(
        args.host, args.port, target_rate=args.target_rate, ring_seconds=args.ring_seconds,
        listen_mode=args.listen_mode, source_rate=args.source_rate, auth=auth,
        max_calls=args.max_calls or "auto", latency=args.latency,
        coalesce_reads=args.coalesce_reads, ssl=ssl_context,
        on_call=on_call, transport=args.transport, metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        idle_timeout=args.idle_timeout, silence_timeout=args.silence_timeout,
        max_call_seconds=args.max_call_seconds, reuse_port=worker is not None,
        publish=publisher, analytics=True if args.analytics else None)
    if worker is not None:
        await listen(server, args)
        if server.metrics_port is not None:
            say(f"metrics on {http_url(args.metrics_host, server.metrics_port)}/metrics")
        await worker.serve(server, drain_seconds=args.drain_seconds)
        return 1 if recordings_failed else 0
    stop = asyncio.Event()
    install_stop_signals(stop)
    await listen(server, args)
    out(banner(server.url, args))
    if recorder is not None:
        out(f"recording to {recorder.directory}")
    if publisher is not None:
        out(f"publishing to {without_credentials(args.publish)}, stream "
            f"{publisher.stream}, subjects {publisher.subjects.everything}")
    if server.metrics_port is not None:
        out(f"metrics on {http_url(args.metrics_host, server.metrics_port)}/metrics, "
            f"health on /healthz")
    ticker = asyncio.ensure_future(print_totals(server, args.stats_interval))
    try:
        await asyncio.wait_for(stop.wait(), args.duration)
    except TimeoutError:
        pass
    else:
        await drain(server, stop, args.drain_seconds, say)
    out("shutting down")
    ticker.cancel()
    await server.close()
    out(totals_line(server.stats, time.monotonic(), None), **totals_fields(server.stats))
    if recordings_failed:
        out(f"{recordings_failed} call(s) not recorded in full")
        return 1
    return 0


def conversation_line(summary: dict[str, Any]) -> str:
    """A call's conversation metrics in one line: talk time per party, overlap,
    interruptions, long silences."""
    parties = ", ".join(
        f"{name} {p['talk_seconds']:.1f} s ({100 * p['talk_share']:.0f}%)"
        for name, p in summary["parties"].items())
    cuts = summary["interruptions"]
    who = "; ".join(f"{i['by']} cut in on {i['of']} at {i['at_seconds']:.1f} s"
                    for i in cuts[:3]) + (" ..." if len(cuts) > 3 else "")
    silences = summary["silences"]
    return (f"talk {parties}; overlap {summary['overlap_seconds']:.1f} s; "
            f"{len(cuts)} interruption(s){': ' + who if cuts else ''}; "
            f"{silences['count']} silence(s) over {silences['threshold_seconds']:g} s "
            f"(longest {silences['longest_seconds']:.1f} s)")


async def drain(server: Any, stop: asyncio.Event, seconds: float,
                say: Callable[..., None]) -> None:
    """After a stop signal: stop accepting and let live calls finish for up to
    ``seconds``; a second signal (``stop`` set again) closes them at once."""
    if seconds <= 0 or not server.active_calls:
        return
    say(f"draining: {len(server.active_calls)} live call(s), up to {seconds:g} s "
        f"(a second signal ends them now)", event="draining",
        live=len(server.active_calls))
    stop.clear()
    draining = asyncio.ensure_future(server.drain(seconds))
    again = asyncio.ensure_future(stop.wait())
    await asyncio.wait({draining, again}, return_when=asyncio.FIRST_COMPLETED)
    if not draining.done():
        say("second signal: closing the live calls now", event="drain_cut")
        await server.close()
    again.cancel()
    await draining


def publisher_for_args(args: argparse.Namespace) -> Any:
    """The NATS publisher ``--publish`` asks for, or None; a UsageError when ``record``
    asks for the channels too or nats-py is missing."""
    if not getattr(args, "publish", None):
        return None
    if args.record:
        raise UsageError("--publish and --record both read the calls' audio: record "
                         "from a worker reading the bus instead")
    from ..bus.nats import NatsPublisher
    from ..errors import PiopiyValidationError
    try:
        return NatsPublisher(args.publish)
    except PiopiyValidationError as exc:
        raise UsageError(str(exc)) from None


def banner(url: str, args: argparse.Namespace, workers: int | None = None) -> str:
    run_by = f" with {workers} worker{'s' if workers > 1 else ''}" if workers else ""
    return (f"listening on {reachable(url, args.host)}{run_by} (delivering "
            f"{args.target_rate} Hz; calls that name no format: {args.listen_mode} at "
            f"{args.source_rate} Hz)")


def serve_settings(args: argparse.Namespace) -> tuple[Any, Any, Recorder | None]:
    """The TLS context, the auth check and the recorder ``args`` ask for; a UsageError
    naming the file or directory when one cannot be had."""
    ssl_context = None
    if args.certfile:
        import ssl
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certfile = checked_file(args.certfile, "certificate file")
        keyfile = checked_file(args.keyfile, "key file") if args.keyfile else None
        try:
            ssl_context.load_cert_chain(certfile, keyfile)
        except ssl.SSLError:
            source = f"{certfile} and {keyfile}" if keyfile else str(certfile)
            raise UsageError(f"cannot load a PEM certificate and private key from {source}"
                             ) from None
    auth: Any = None
    if args.signing_secret:
        from ..signing import SignedURL
        auth = SignedURL(args.signing_secret)
    elif args.token:
        auth = args.token
    recorder = None
    if args.record:
        from ..receiver.recorder import Recorder
        recorder = Recorder(writable_directory(args.record))
    return ssl_context, auth, recorder


def without_credentials(urls: str) -> str:
    """Bus URLs as a log may show them: no user or password."""
    return ",".join(url.split("://", 1)[0] + "://" + url.rsplit("@", 1)[-1].split("://")[-1]
                    if "@" in url else url for url in urls.split(","))


async def listen(server: Any, args: argparse.Namespace) -> None:
    from ..errors import PiopiyValidationError
    try:
        await server.start()
    except PiopiyValidationError as exc:  # the bus refuses the configuration
        raise UsageError(str(exc)) from None
    except OSError as exc:
        host, port = getattr(exc, "host", None), getattr(exc, "port", None)
        if host is not None and port is not None:  # the metrics endpoint's (MetricsListenError)
            raise UsageError(listen_error(host, port, exc, "for /metrics")) from None
        raise UsageError(listen_error(args.host, args.port, exc)) from None


def listen_error(host: str, port: int, exc: OSError, purpose: str = "") -> str:
    """One line: which address could not be had, what for, and the OS's reason."""
    # asyncio's bind error repeats the address; the OS's own words for the errno do
    # not (a name-lookup failure has its own).
    why = exc.strerror if isinstance(exc, socket.gaierror) or not exc.errno \
        else os.strerror(exc.errno)
    return f"cannot listen on {host} port {port}{' ' + purpose if purpose else ''}: {why or exc}"


def http_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets; every interface named as this
    machine's name."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def writable_directory(path: Path) -> Path:
    """``path`` as a directory this process can write into (created if missing), checked
    before the server listens; else a UsageError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"record directory is not a directory: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot create the record directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"record directory is not writable: {path}")
    return path


def reachable(url: str, host: str) -> str:
    """The banner's address: bound to every interface, name this machine as others
    reach it, not 127.0.0.1."""
    if host not in ("", "0.0.0.0", "::"):
        return url
    port = url.rsplit(":", 1)[1]
    return f"{url.split(':', 1)[0]}://{socket.gethostname()}:{port} (all interfaces)"


async def discard(call: Any) -> list[Path]:
    """Read and drop a call's audio, so its counters show a consumer keeping up."""
    async def drain(name: str) -> None:
        async for _ in call.channel(name):
            pass
    await asyncio.gather(*(drain(name) for name in CHANNEL_NAMES))
    return []


def totals_line(stats: Any, now: float, last: tuple[float, int] | None) -> str:
    rate = ""
    if last is not None and now > last[0]:
        rate = f" ({(stats.frames - last[1]) / (now - last[0]):,.0f}/s)"
    return (f"totals: {stats.active_calls} live, {stats.total_calls} calls, "
            f"{stats.rejected_calls} refused, {stats.failed_calls} failed, "
            f"{stats.frames:,} frames{rate}, {stats.received_seconds:,.1f} s of audio, "
            f"{stats.decode_errors} decode errors, {stats.overruns} overruns")


def totals_fields(stats: Any) -> dict[str, Any]:
    """The totals as the fields of a JSON log line."""
    import dataclasses
    return {"event": "totals", **dataclasses.asdict(stats)}


async def print_totals(server: Any, interval: float) -> None:
    if not interval or interval <= 0:
        return
    last = (time.monotonic(), 0)
    while True:
        await asyncio.sleep(interval)
        stats = server.stats
        now = time.monotonic()
        out(totals_line(stats, now, last), **totals_fields(stats))
        last = (now, stats.frames)
