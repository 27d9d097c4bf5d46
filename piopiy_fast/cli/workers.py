"""``serve --workers N``: N receivers on one port, one process each, under a supervisor.

The supervisor checks what every worker would check (certificate, record directory,
the port) once, so a mistake is one line and status 2 as without workers; then each
worker runs ``serve`` with ``reuse_port`` and its lines tagged ``[wI]``, and the
supervisor prints the banner and the totals of all of them.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import time

from ..receiver.stats import ServerStats
from ..receiver.workers import Supervisor, Worker, reserve_port
from ._console import UsageError, close_console, configure_logging, out, run_guarded
from .serve import (
    banner,
    listen_error,
    serve_command,
    serve_settings,
    totals_fields,
    totals_line,
)


def serve_workers(args: argparse.Namespace) -> int:
    count: int = args.workers
    if not sys.platform.startswith("linux"):
        # Elsewhere SO_REUSEPORT lets the processes share the port, but the kernel hands
        # every connection to one of them.
        raise UsageError("--workers needs Linux, where the kernel spreads connections "
                         "over the workers")
    serve_settings(args)
    try:
        reserved = reserve_port(args.host, args.port)
    except OSError as exc:
        raise UsageError(listen_error(args.host, args.port, exc)) from None
    check_metrics_ports(args, count)
    with reserved:
        worker_args = argparse.Namespace(**vars(args))
        worker_args.port = reserved.getsockname()[1]  # the one port 0 picked, for all
        last = (time.monotonic(), 0)

        def on_ready(url: str) -> None:
            out(banner(url, args, count))
            if args.record:
                out(f"recording to {args.record}")

        def on_totals(stats: ServerStats) -> None:
            nonlocal last
            now = time.monotonic()
            out(totals_line(stats, now, last), **totals_fields(stats))
            last = (now, stats.frames)

        # A worker may drain for drain_seconds, then close its calls and recordings.
        supervisor = Supervisor(serve_worker, count, args=(worker_args,), say=out,
                                stop_timeout=args.drain_seconds + 30.0,
                                on_ready=on_ready, on_totals=on_totals,
                                totals_every=args.stats_interval or None)
        status = supervisor.run(args.duration)
    if status == 0 or supervisor.totals.total_calls:
        out(totals_line(supervisor.totals, time.monotonic(), None),
            **totals_fields(supervisor.totals))
    return status


def check_metrics_ports(args: argparse.Namespace, count: int) -> None:
    """Each worker's metrics port, free now, or a UsageError naming the one that is not:
    a taken port is a mistake no restart mends, so it is found once, before any worker
    starts."""
    base = getattr(args, "metrics_port", None)
    if not base:  # none, or 0: each worker picks a free one
        return
    for index in range(count):
        port = base + index
        try:
            if port > 65535:
                raise OSError(errno.EINVAL, "past the last port, 65535")
            family, kind, proto, _, address = socket.getaddrinfo(
                args.metrics_host or None, port, type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE)[0]
            with socket.socket(family, kind, proto) as probe:
                # As asyncio's server binds it: a port in TIME_WAIT is free.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            raise UsageError(listen_error(args.metrics_host, port, exc,
                                          f"for worker {index}'s /metrics")) from None


def serve_worker(worker: Worker, args: argparse.Namespace) -> None:
    """One worker process: ``serve`` on the shared port until the supervisor's SIGTERM."""
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port:
        # One scrape target per worker: each serves its own process's metrics.
        args.metrics_port = metrics_port + worker.index
    configure_logging(args.verbose, args.log_format)
    try:
        status = run_guarded(args, serve_command(args, worker))
    finally:
        close_console()  # a spawned process exits without atexit: write what waits
    sys.exit(status)
