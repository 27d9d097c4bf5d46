"""Read coalescing: fewer, fuller turns of the event loop while calls stream.

Piopiy sends each call one 20 ms frame every 20 ms, the calls spread over the period, so
a server with many calls gets a frame every few dozen microseconds. Left alone, the event
loop sleeps in the kernel after each one and is woken for the next: a few microseconds
of scheduler work per frame, a large share of everything a frame costs. A
:class:`ReadCoalescer` lets the loop turn at most once per ``interval`` while calls are
live: when a turn was quicker than that, the loop thread sleeps the rest of it, and the
next turn reads every socket that has data in one go. The cost is latency: a frame waits
up to ``interval`` before it is read (5 ms by default, a tenth of the readers' delivery
interval, so audio reaches them at most that much later). Under load, when turns take
longer than ``interval``, the loop never sleeps.

The sleep blocks the event loop, not other threads (it releases the GIL): everything on
the loop, the application's tasks too, runs at most ``interval`` late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from ..errors import PiopiyValidationError

MAX_COALESCING = 0.005
"""The default interval, when the readers' latency allows it (seconds)."""


def coalescing_interval(setting: float | Literal["auto"], latency: float) -> float:
    """The interval for a ``coalesce_reads`` setting: ``"auto"`` is a tenth of the
    server's reader ``latency``, at most :data:`MAX_COALESCING` (0 when readers want every
    frame at once)."""
    if setting == "auto":
        return min(MAX_COALESCING, latency / 10)
    if isinstance(setting, bool) or not isinstance(setting, (int, float)) or not (
            0 <= setting <= 0.1):
        raise PiopiyValidationError(
            f"coalesce_reads must be 'auto' or from 0 to 0.1 seconds, not {setting!r}")
    return float(setting)


class ReadCoalescer:
    """Paces the running event loop while ``live()`` is true (see the module's text).

    :meth:`wake` starts it (a call began); it stops by itself when ``live()`` turns false,
    and for good on :meth:`close`.
    """

    __slots__ = ("interval", "_live", "_task")

    def __init__(self, interval: float, live: Callable[[], bool]) -> None:
        self.interval = interval
        self._live = live
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._pace())

    def close(self) -> None:
        self.interval = 0.0
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _pace(self) -> None:
        sleep, monotonic = time.sleep, time.monotonic
        try:
            turn_began = monotonic()
            while self.interval > 0 and self._live():
                rest = self.interval - (monotonic() - turn_began)
                if rest > 0:
                    sleep(rest)
                turn_began = monotonic()
                # Back to the loop for one turn: with this task ready again at once, the
                # loop polls its sockets without blocking and handles all that came.
                await asyncio.sleep(0)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
