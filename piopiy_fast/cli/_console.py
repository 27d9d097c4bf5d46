"""What every command shares: running it (one line per mistake), logging, printing,
progress lines, and stopping on a signal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
import wave
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import PiopiyError

LOG_FORMATS = ("text", "json")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{record.msecs:03.0f}Z",
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(verbose: int, log_format: str) -> None:
    """WARNING, INFO (-v) or DEBUG (-vv) to stderr, as text or JSON lines. Even at DEBUG
    no audio reaches the log: the WebSocket libraries' frame traces are summarised."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        formatter: logging.Formatter = JsonLogFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    handler.addFilter(NoAudioInLogs())
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, handlers=[handler])
    # The fast transport's own logger is held at WARNING by the library (its lower
    # levels note every connection): follow -v and -vv, never below DEBUG.
    logging.getLogger("piopiy_fast.picows").setLevel(level)


class NoAudioInLogs(logging.Filter):
    """A debug trace of a binary WebSocket frame keeps its size, not its bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_is_binary_frame(a) for a in args):
            record.args = tuple(
                f"BINARY [{len(getattr(a, 'data', b''))} bytes]" if _is_binary_frame(a) else a
                for a in args)
        return True


def _is_binary_frame(value: object) -> bool:
    opcode = getattr(value, "opcode", None)
    return opcode is not None and getattr(opcode, "name", "") in ("BINARY", "CONT") \
        and isinstance(getattr(value, "data", None), (bytes, bytearray, memoryview))


class UsageError(Exception):
    """A mistake in what the user asked for: shown as one line, status 2."""


def guarded(args: argparse.Namespace, command: Callable[[], int]) -> int:
    """Run a command; a mistake or a failure it reports is one line on stderr and
    status 2 (the traceback too with -vv); Ctrl-C that reaches here is a clean stop."""
    try:
        return command()
    except KeyboardInterrupt:
        return 0
    except (UsageError, PiopiyError, OSError, EOFError, wave.Error) as exc:
        if args.verbose >= 2:
            raise
        print(f"piopiy-fast: error: {one_line(exc)}", file=sys.stderr)
        return 2


def run_guarded(args: argparse.Namespace, command: Coroutine[Any, Any, int]) -> int:
    """:func:`guarded` for a coroutine, on the event loop the command's transport wants."""
    def run() -> int:
        with asyncio.Runner(loop_factory=loop_factory(args)) as runner:
            return runner.run(command)
    return guarded(args, run)


def loop_factory(args: argparse.Namespace) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the picows transport (``auto`` resolves to it when installed) when
    uvloop is installed (much of picows' gain comes from it); asyncio's own loop
    otherwise."""
    from ..receiver.transports import resolve
    if resolve(getattr(args, "transport", "websockets")) != "picows":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def one_line(exc: BaseException) -> str:
    """What went wrong, in one line, naming the file when the OS error has one."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


def checked_file(path: Any, what: str) -> Any:
    """``path`` if it names a readable file, else a UsageError naming it."""
    import os
    if not os.path.isfile(path):
        raise UsageError(f"{what} not found: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{what} is not readable: {path}")
    return path


def out(*parts: Any) -> None:
    """Print one line in one write: the workers of ``serve --workers`` share stdout, and
    print() writes each part apart when output is unbuffered (``python -u``)."""
    sys.stdout.write(" ".join(map(str, parts)) + "\n")
    sys.stdout.flush()


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
