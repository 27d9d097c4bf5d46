"""The delivery clocks: what wakes a server's waiting ``async`` readers, every call's.

Readers are woken by time, not by frame. Piopiy sends one 20 ms frame per call every
20 ms, and waking a reader task costs more than the audio work on that frame; so a
waiting ``async`` reader is woken by its server's :class:`DeliveryClock` (one timer
for every call), which every ``latency`` seconds wakes together all the readers whose
audio is there. The added delay is at most ``latency`` (plus the event loop's own lag).
A reader with ``latency = 0`` is woken by the frame that brings its audio, as soon as
possible. Thread readers and callbacks are not affected: a thread wakes in the ring's
own wait, a callback runs with each frame. Who waits, per call, is the call's
``CallDelivery`` (compiled); a clock only asks it to wake its ready readers.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import PiopiyValidationError

if TYPE_CHECKING:
    from ..audio import CallDelivery


DEFAULT_LATENCY = 0.05
"""Seconds a reader's audio may wait before its reader is woken (the server's default)."""


class DeliveryClock:
    """Every ``interval`` seconds, wake the readers whose audio has arrived, all calls at
    once. The timer runs only while some reader waits."""

    __slots__ = ("interval", "_watched", "_timer")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._watched: dict[CallDelivery, None] = {}  # insertion-ordered set
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, delivery: CallDelivery) -> None:
        """``delivery`` has a reader waiting: look at it on the next ticks (an ended
        call's is let go at the next tick)."""
        self._watched[delivery] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        watched = self._watched
        for delivery in tuple(watched):
            delivery.wake_ready()
            if not delivery.waiting:
                del watched[delivery]
        self._timer = None
        if watched:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)


class DeliveryClocks:
    """A server's clocks: its default ``latency``, and one clock per other latency that
    a reader asked for."""

    __slots__ = ("latency", "_clocks")

    def __init__(self, latency: float = DEFAULT_LATENCY) -> None:
        self.latency = check_latency(latency)
        self._clocks: dict[float, DeliveryClock] = {}

    def clock(self, latency: float | None) -> DeliveryClock | None:
        """The clock for ``latency`` (None: the default); None for 0, woken per frame."""
        interval = self.latency if latency is None else latency
        if interval == 0:
            return None
        clock = self._clocks.get(interval)
        if clock is None:
            clock = self._clocks[interval] = DeliveryClock(interval)
        return clock


def check_latency(latency: object) -> float:
    """``latency`` as a float when it is a number of seconds from 0 to 1.

    Raises:
        PiopiyValidationError: It is not.
    """
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not (
            0 <= latency <= 1):
        raise PiopiyValidationError(f"latency must be from 0 to 1 second, not {latency!r}")
    return float(latency)
