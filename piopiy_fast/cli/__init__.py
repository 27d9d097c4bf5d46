"""The ``piopiy-fast`` command: ``serve``, ``record``, ``simulate`` and ``demo``.

``serve`` runs a receiver (one line per call start and end, live totals, optional
recording); ``record DIR`` is ``serve --record DIR``; ``simulate`` drives any server
with simulated Piopiy calls; ``demo`` runs both in one process and prints what was
received. SIGINT and SIGTERM shut down cleanly (recordings finalised) with status 0.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..receiver.transports import TRANSPORTS
from ..stream.wire import LISTEN_MODES, SAMPLE_RATES
from ._console import LOG_FORMATS, close_console, configure_logging, guarded, run_guarded
from .simulate import add_peer_options

TOKEN_ENV = "PIOPIY_FAST_TOKEN"
SECRET_ENV = "PIOPIY_FAST_SECRET"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="piopiy-fast",
        description="Receive, record and simulate Piopiy (TeleCMI) call audio streams.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug and tracebacks)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="log lines as text (default) or one JSON object each")
    parser.add_argument("--version", action="version", version=f"piopiy-fast {__version__}")
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
    sim.add_argument("--frame-ms", type=positive(float), default=20.0,
                     help="frame length (default 20)")
    sim.add_argument("--no-start-event", dest="start_event", action="store_false",
                     help="send no JSON start event (the format must come from the URL)")
    sim.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                     help=f"send 'Authorization: Bearer TOKEN' (default ${TOKEN_ENV})")
    sim.add_argument("--report", type=Path, metavar="FILE",
                     help="write a JSON report of what was sent (counts, SHA-256 per channel)")
    sim.add_argument("--sent-dir", type=Path, metavar="DIR",
                     help="write exactly what was sent as WAV files into DIR")
    sim.add_argument("--call-id-prefix", default="sim", metavar="PREFIX",
                     help="call ids are PREFIX-001, PREFIX-002... (default sim); give each "
                          "of several simulators its own")
    add_peer_options(sim)

    demo = commands.add_parser(
        "demo", help="a receiver fed by simulated calls, then a table of what it received")
    _call_options(demo, calls=20, mode="both", seconds=10.0)
    demo.add_argument("--target-rate", type=int, default=16000, choices=SAMPLE_RATES,
                      help="rate the receiver delivers (default 16000)")
    demo.add_argument("--record", type=Path, metavar="DIR",
                      help="keep the WAV files in DIR (default: a temporary directory, removed)")
    # The global options are also taken after the command (``serve -v``).
    for sub in (serve, record, sim, demo):
        sub.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                         help="log more (-v info, -vv debug and tracebacks)")
        sub.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS,
                         help="log lines as text (default) or one JSON object each")
    return parser


def positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` greater than zero."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def auto_or_float(text: str) -> float | str:
    """An argparse type: ``auto``, or a number (checked where it is used)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not 'auto' or a number: {text!r}") from None


def seconds_or_off(text: str) -> float | None:
    """An argparse type: seconds, where 0 turns the limit off (None)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more, not {text}")
    return seconds or None


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, not {port}")
    return port


def worker_count(text: str) -> int:
    """An argparse type: ``auto`` (the CPUs this process may run on) or a count."""
    if text == "auto":
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'auto': {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {count}")
    return count


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=port_number, default=8765,
                   help="port (default 8765; 0 picks one)")
    p.add_argument("--target-rate", type=int, default=16000, choices=SAMPLE_RATES,
                   help="rate delivered to readers and recordings (default 16000)")
    p.add_argument("--listen-mode", default="caller", choices=LISTEN_MODES,
                   help="format of calls that name none (default caller)")
    p.add_argument("--source-rate", type=int, default=8000, choices=SAMPLE_RATES,
                   help="rate of calls that name none (default 8000)")
    p.add_argument("--ring-seconds", type=positive(float), default=2.0,
                   help="audio buffered per channel (default 2)")
    p.add_argument("--latency", type=float, default=0.05,
                   help="longest wait, in seconds, before audio is handed to readers "
                        "(default 0.05; readers are woken together on this clock)")
    p.add_argument("--coalesce-reads", type=auto_or_float, default="auto", metavar="SECONDS",
                   help="while calls are live, let the event loop turn at most this often so "
                        "one turn reads many sockets (default auto: latency/10, at most "
                        "0.005; 0 for off)")
    p.add_argument("--idle-timeout", type=seconds_or_off, default=30.0,
                   help="close a call that sends no audio this long after connecting "
                        "(default 30; 0 for never)")
    p.add_argument("--silence-timeout", type=seconds_or_off, default=60.0,
                   help="close a call whose frames stop this long, unless paused "
                        "(default 60; 0 for never)")
    p.add_argument("--max-call-seconds", type=seconds_or_off, default=4 * 3600.0,
                   help="close a call this long (default 14400; 0 for no limit)")
    p.add_argument("--max-calls", type=positive(int),
                   help="refuse calls beyond this many (HTTP 503; default: what the "
                        "file-descriptor limit holds)")
    p.add_argument("--transport", default="auto", choices=TRANSPORTS,
                   help="WebSocket library (default auto: picows on uvloop when installed, "
                        "as with the package's dependencies; else websockets)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"require this bearer token or ?token= (default ${TOKEN_ENV})")
    p.add_argument("--signing-secret", default=os.environ.get(SECRET_ENV),
                   help=f"require URLs signed with this secret (default ${SECRET_ENV})")
    p.add_argument("--certfile", type=Path, help="TLS certificate (PEM) to serve wss://")
    p.add_argument("--keyfile", type=Path, help="TLS private key (PEM)")
    p.add_argument("--metrics-port", type=port_number,
                   help="serve Prometheus /metrics and /healthz on this port; with "
                        "--workers, worker I on this port + I (needs the metrics extra)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address of /metrics and /healthz (default 127.0.0.1, this machine "
                        "only, whatever --host is; 0.0.0.0 or :: for every interface)")
    p.add_argument("--stats-interval", type=float, default=10.0,
                   help="seconds between totals lines (default 10; 0 for none)")
    p.add_argument("--duration", type=positive(float), help="stop after this many seconds")
    p.add_argument("--analytics", action=argparse.BooleanOptionalAction, default=True,
                   help="voice activity and conversation metrics per call: a line per "
                        "call (talk time, overlap, interruptions, silences), "
                        "<id>.analytics.json beside recordings, aggregates in /metrics "
                        "(default on; --no-analytics runs no detector)")
    p.add_argument("--drain-seconds", type=seconds, default=25.0,
                   help="on SIGTERM, SIGINT or SIGHUP: stop accepting (/healthz 503, the "
                        "port closed) and let live calls finish for up to this long before "
                        "closing the rest; a second signal closes them at once (default 25, "
                        "within a rolling deploy's usual 30 s; 0: close at once)")
    p.add_argument("--publish", metavar="URL",
                   help="publish every call's audio and events to NATS JetStream at URL "
                        "(nats://host:4222; comma-separated for a cluster), for workers "
                        "to read (needs the nats extra)")
    p.add_argument("--workers", type=worker_count, metavar="N",
                   help="run N receiver processes on the port (SO_REUSEPORT) under a "
                        "supervisor that restarts any that dies; auto: one per CPU this "
                        "process may use (default: one process, no supervisor)")


def _call_options(p: argparse.ArgumentParser, *, calls: int, mode: str,
                  seconds: float | None) -> None:
    p.add_argument("--calls", type=positive(int), default=calls,
                   help=f"concurrent calls (default {calls})")
    p.add_argument("--mode", default=mode, choices=LISTEN_MODES,
                   help=f"listen mode (default {mode})")
    p.add_argument("--rate", type=int, default=8000, choices=SAMPLE_RATES,
                   help="source rate, the Piopiy voice_quality (default 8000)")
    p.add_argument("--seconds", type=positive(float), default=seconds,
                   help="audio per call (default: "
                        + (f"{seconds:g})" if seconds else "10, or the whole --wav file)"))
    p.add_argument("--fast", action="store_true",
                   help="send as fast as possible instead of in real time")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic audio (default 0)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_format)
    try:
        return _run(args)
    finally:
        close_console()


def _run(args: argparse.Namespace) -> int:
    if args.command in ("serve", "record") and args.workers is not None:
        from .workers import serve_workers
        return guarded(args, lambda: serve_workers(args))
    if args.command in ("serve", "record"):
        from .serve import serve_command
        run = serve_command(args)
    elif args.command == "simulate":
        from .simulate import simulate_command
        run = simulate_command(args)
    else:
        from .demo import demo_command
        run = demo_command(args)
    return run_guarded(args, run)
