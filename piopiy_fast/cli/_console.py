"""What every command shares: running it (one line per mistake), logging, printing,
progress lines, and stopping on a signal.

Nothing a command prints may stop it: a console nobody reads (a pipe left full, a
terminal on hold) would block every write, and a receiver writing on its event loop
would stop serving its calls. Every line, printed or logged, goes into a bounded queue
that one thread writes out; when the queue is full the line is dropped and counted,
and the count is said once the output moves again (and at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import queue
import signal
import sys
import threading
import time
import wave
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import PiopiyError

LOG_FORMATS = ("text", "json")
CONSOLE_LINES = 10_000  # lines waiting to be written before more are dropped


class Console:
    """Lines for stdout and stderr, written in order by one thread; a caller never waits.

    Args:
        capacity: Lines that may wait; past that a line is dropped and counted.
    """

    def __init__(self, capacity: int = CONSOLE_LINES) -> None:
        self._queue: queue.Queue[tuple[Any, str] | None] = queue.Queue(capacity)
        self.dropped = 0
        self._said_dropped = 0
        self.json = False
        self._thread = threading.Thread(target=self._write_all, name="piopiy-fast console",
                                        daemon=True)
        self._thread.start()

    def put(self, stream: Any, text: str) -> bool:
        """Queue ``text`` (whole lines) for ``stream``; False if it was dropped."""
        try:
            self._queue.put_nowait((stream, text))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _write_all(self) -> None:
        while (item := self._queue.get()) is not None:
            stream, text = item
            try:
                stream.write(text)
                if self._queue.empty():
                    self._say_dropped()
                    stream.flush()
            except (OSError, ValueError):  # closed or broken: nothing more can be shown
                pass

    def _say_dropped(self) -> None:
        dropped = self.dropped
        if dropped != self._said_dropped:
            self._said_dropped = dropped
            sys.stderr.write(line_for(
                f"piopiy-fast: {dropped} output line(s) dropped so far: the output was not "
                "read as fast as it was written", "WARNING", self.json) + "\n")
            sys.stderr.flush()

    def close(self, timeout: float = 5.0) -> None:
        """Write what waits (for at most ``timeout`` seconds) and stop the thread; what
        could not be written by then is counted as dropped, and the count said."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():  # stuck on a write nobody reads: give up on the rest
            self.dropped += self._queue.qsize() + 1  # and the line being written
        with contextlib.suppress(OSError, ValueError):
            self._say_dropped()


_console: Console | None = None


def console() -> Console:
    """The process's console writer, started on first use."""
    global _console
    if _console is None:
        _console = Console()
    return _console


def close_console() -> None:
    """Write out every line still waiting (call before the process exits)."""
    global _console
    if _console is not None:
        _console.close()
        _console = None


def line_for(message: str, level: str = "INFO", as_json: bool = False,
             **fields: Any) -> str:
    """A line as the log format wants it: ``message`` itself, or one JSON object with
    the time, level, ``message`` and ``fields``."""
    if not as_json:
        return message
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return json.dumps({"time": stamp, "level": level, "logger": "piopiy_fast.cli",
                       "message": message, **fields})


class ConsoleHandler(logging.Handler):
    """Log records, formatted here, written by the console's thread."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            console().put(sys.stderr, self.format(record) + "\n")
        except Exception:
            self.handleError(record)


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
    """WARNING, INFO (-v) or DEBUG (-vv) to stderr, as text or JSON lines, through the
    console's queue (never blocking). Even at DEBUG no audio reaches the log: the
    WebSocket libraries' frame traces are summarised."""
    console().json = log_format == "json"
    handler = ConsoleHandler()
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
        err(f"piopiy-fast: error: {one_line(exc)}", "ERROR")
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


def out(*parts: Any, **fields: Any) -> None:
    """Print one line, in one write (the workers of ``serve --workers`` share stdout),
    without waiting; with ``--log-format json``, one JSON object with ``fields`` too."""
    c = console()
    c.put(sys.stdout, line_for(" ".join(map(str, parts)), "INFO", c.json, **fields) + "\n")


def err(line: str, level: str = "WARNING") -> None:
    """:func:`out` for stderr."""
    c = console()
    c.put(sys.stderr, line_for(line, level, c.json) + "\n")


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
    """SIGINT, SIGTERM and SIGHUP (a closed terminal) set ``stop`` (for a clean
    shutdown) instead of killing."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
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
    tty = sys.stderr.isatty() and not console().json
    started = time.monotonic()
    shown = False
    while not task.done():
        await asyncio.wait([task], timeout=every)
        if task.done():
            break
        line = f"[{time.monotonic() - started:5.1f} s] {describe()}"
        if tty:
            console().put(sys.stderr, f"\r{line}\x1b[K")
        else:
            err(line, "INFO")
        shown = True
    if shown and tty:
        console().put(sys.stderr, "\n")
