"""How a call's readers are woken, and the state a call shares with its readers.

A call and its readers share one :class:`CallWakeups`: who is waiting for audio,
which readers take callbacks, and whether the call has ended.

Readers are woken by time, not by frame. Piopiy sends one 20 ms frame per call every
20 ms, and waking a reader task costs more than the audio work on that frame; so a
waiting ``async`` reader is woken by its server's :class:`DeliveryClock` (one timer
for every call), which every ``latency`` seconds wakes together all the readers whose
audio is there. The added delay is at most ``latency`` (plus the event loop's own lag).
A reader with ``latency = 0`` is woken by the frame that brings its audio, as soon as
possible. Thread readers and callbacks are not affected: a thread wakes in the ring's
own wait, a callback runs with each frame.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..errors import PiopiyValidationError

if TYPE_CHECKING:
    from ..audio import FrameSink, RingBuffer
    from .channel import ChannelReader


DEFAULT_LATENCY = 0.05
"""Seconds a reader's audio may wait before its reader is woken (the server's default)."""
_MAKING_SIGNALS = threading.Lock()  # two thread readers of one call make one condition


class DeliveryClock:
    """Every ``interval`` seconds, wake the readers whose audio has arrived, all calls at
    once. The timer runs only while some reader waits."""

    __slots__ = ("interval", "_watched", "_timer")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._watched: dict[CallWakeups, None] = {}  # insertion-ordered set
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, wakeups: CallWakeups) -> None:
        """``wakeups`` has a reader waiting: look at it on the next ticks."""
        self._watched[wakeups] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        watched = self._watched
        for wakeups in tuple(watched):
            wakeups.wake_ready()
            if not wakeups.waiting:
                del watched[wakeups]
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
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not (
            0 <= latency <= 1):
        raise PiopiyValidationError(f"latency must be from 0 to 1 second, not {latency!r}")
    return float(latency)


class CallWakeups:
    """The wake-up state a call shares with its channel readers.

    ``waiting``: readers awaiting audio in a ring they hold; ``ring_waiters``: readers
    awaiting their first ring; ``taps``: readers with an ``on_chunk`` callback;
    ``thread_signal()``: the condition thread readers wait on, signalled when rings are
    added or the call ends; made by the first thread reader (most calls have none).
    ``on_callback_error(what)`` is told when an application callback raises.
    ``frames`` is the call's FrameSink, which reads ``taps`` and ``waiting`` on every
    frame, below Python, and counts ``frames.per_frame`` (waiting readers woken by the
    frame itself, latency 0) and ``frames.unseen_frames`` (frames since readers were
    last woken).
    """

    __slots__ = ("ended", "_changed", "waiting", "frames", "ring_waiters", "taps", "clocks",
                 "on_callback_error")

    def __init__(self, clocks: DeliveryClocks, on_callback_error: Callable[[str], None],
                 frames: FrameSink) -> None:
        self.ended = False
        self._changed: threading.Condition | None = None
        self.waiting: list[ChannelReader] = []
        self.frames = frames
        self.ring_waiters: list[ChannelReader] = []
        self.taps: list[ChannelReader] = []
        self.clocks = clocks
        self.on_callback_error = on_callback_error

    def deliver_taps(self) -> None:
        """Hand each callback reader what its ring holds."""
        for reader in self.taps:
            reader.deliver()

    def wake_ready(self) -> bool:
        """Wake the waiting readers that now have what they wait for; True if any."""
        self.frames.unseen_frames = 0
        woke = False
        for reader in self.waiting:
            woke = reader.wake_if_ready() or woke
        return woke

    def wake_all(self) -> None:
        """Wake every waiting reader (rings changed, or the call ended)."""
        for reader in (*self.waiting, *self.ring_waiters):
            reader.wake()

    def thread_signal(self) -> threading.Condition:
        """The condition thread readers wait on for new rings or the end of the call."""
        with _MAKING_SIGNALS:
            if self._changed is None:
                self._changed = threading.Condition()
            return self._changed

    def add_rings(self, pairs: Iterable[tuple[ChannelReader, RingBuffer]]) -> None:
        """Queue a new ring behind each reader's current ones, then wake them all."""
        for reader, ring in pairs:
            reader.append_ring(ring)
        self._signal_threads()
        self.wake_all()

    def end(self) -> None:
        """The call is over: thread readers and waiting readers see it."""
        self.ended = True
        self._signal_threads()
        self.wake_all()

    def _signal_threads(self) -> None:
        # The change is made before the condition is looked at: a thread reader that
        # makes the condition after this look finds the change when it checks under it.
        changed = self._changed
        if changed is not None:
            with changed:
                changed.notify_all()


class Latch:
    """A flag that is set once and can be awaited, like a never-cleared
    ``asyncio.Event``; it holds no waiter queue until something waits (a call has two,
    and most are never awaited)."""

    __slots__ = ("is_set", "_waiters")

    def __init__(self) -> None:
        self.is_set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self.is_set = True
        waiters, self._waiters = self._waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)

    async def wait(self) -> None:
        if self.is_set:
            return
        future = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(future)
        try:
            await future
        finally:
            # A wait given up (a timeout around it) leaves nothing behind.
            if self._waiters is not None and future.cancelled():
                self._waiters.remove(future)
