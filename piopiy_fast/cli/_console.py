"""What every command shares: printing, progress lines, and stopping on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import Any


class UsageError(Exception):
    """A mistake in what the user asked for: shown as one line, status 2."""


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
