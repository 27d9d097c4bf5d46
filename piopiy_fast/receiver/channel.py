"""One channel of a live call, read at the target rate as numpy int16 arrays.

A reader takes the audio out of the call's ring(s) in one of three ways: ``async
for`` on the event loop, a blocking read from a worker thread, or a callback on
the event loop. Each channel has one consumer.

How ``async`` readers are woken (by a clock shared by every call, not by each frame)
is in :mod:`.wakeups`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any, NoReturn, cast

import numpy as np

from ..errors import PiopiyValidationError
from .wakeups import CallWakeups, check_latency

if TYPE_CHECKING:
    from ..audio import RingBuffer
    from .wakeups import DeliveryClock

_EMPTY = np.empty(0, dtype=np.int16)
_EMPTY.flags.writeable = False
_NO_CLOCK_YET = object()
_running_loop = asyncio.get_running_loop


class ChannelReader:
    """One channel of a call (``call.caller`` or ``call.callee``) at the target rate.

    ``async for chunk in reader`` yields int16 arrays as audio arrives and ends after the
    call ends and the channel is drained; ``chunks(n)`` yields fixed-size chunks;
    ``read_blocking`` serves a worker thread; ``on_chunk`` pushes to a callback. Use one
    of them per channel: the ring behind a reader has a single consumer. ``rate`` is the
    sample rate of what it returns (the server's target rate).
    """

    __slots__ = ("name", "rate", "_latency", "_wakeups", "_segments", "_waiter", "_want",
                 "_listed_in", "_per_frame", "_clock", "_callback")

    def __init__(self, wakeups: CallWakeups, name: str, rate: int) -> None:
        self.name = name
        self.rate = rate
        self._latency: float | None = None
        self._wakeups = wakeups
        # The rings this channel is read from, oldest first; more than one only after
        # a mid-call format change. The producer appends, the consumer pops (a list: it
        # rarely holds more than one, and an empty deque costs ten times the memory).
        self._segments: list[RingBuffer] = []
        # The pending async wait, if any: its future, how many samples it waits for,
        # which list of the call's wake-ups holds the reader, whether it counts per frame.
        self._waiter: asyncio.Future[None] | None = None
        self._want = 1
        self._listed_in: list[ChannelReader] | None = None
        self._per_frame = False
        self._clock: object = _NO_CLOCK_YET  # the DeliveryClock, or None: per frame
        self._callback: Callable[[np.ndarray], Any] | None = None

    # -- what the call's wake-ups ask of a reader -------------------------------------

    def wake_if_ready(self) -> bool:
        """Wake this reader's ``async`` wait if what it waits for is there; True if woke."""
        future = self._waiter
        if future is None or future.done():
            return False
        ring = self._segments[0] if self._segments else None
        if ring is None or ring.available >= self._want or ring.closed:
            future.set_result(None)
            return True
        return False

    def wake(self) -> None:
        """Wake this reader's ``async`` wait, if any, to look again."""
        future = self._waiter
        if future is not None and not future.done():
            future.set_result(None)

    def append_ring(self, ring: RingBuffer) -> None:
        """Read ``ring`` after the ones before it (a new format's ring)."""
        self._segments.append(ring)

    def deliver(self) -> None:
        """Hand the ``on_chunk`` callback what the ring holds."""
        ring = self._head()
        while ring is not None:
            chunk = ring.read()
            if chunk.size:
                try:
                    self._callback(chunk)  # type: ignore[misc]
                except Exception:
                    self._wakeups.on_callback_error(self.name)
            if not ring.closed:
                return
            ring = self._head()

    # -- reading ------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Longest wait, in seconds, between audio arriving and an ``async`` read of this
        channel returning it: the server's ``latency`` unless set here. 0 wakes the
        reader with every frame that brings audio (the lowest delay, the most CPU)."""
        return self._wakeups.clocks.latency if self._latency is None else self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = check_latency(seconds)
        self._clock = _NO_CLOCK_YET

    @property
    def available(self) -> int:
        """Samples that can be read now without waiting."""
        return sum(ring.available for ring in tuple(self._segments))

    @property
    def ended(self) -> bool:
        """True once the call is over and everything has been read."""
        return self._wakeups.ended and self._head() is None

    def _head(self) -> RingBuffer | None:
        segments = self._segments
        while segments:
            ring = segments[0]
            # closed first: once closed, nothing more is written, so available is final.
            if not ring.closed or ring.available:
                return ring
            del segments[0]
        return None

    # -- async --------------------------------------------------------------------------

    def _enlist(self, want: int) -> asyncio.Future[None]:
        """Start a wait for ``want`` samples: woken by the clock (or by each frame, at
        latency 0) once this reader has a ring, else when a ring is added."""
        if self._waiter is not None:
            self._release()  # an earlier wait, given up
        wakeups = self._wakeups
        future: asyncio.Future[None] = _running_loop().create_future()
        self._waiter, self._want = future, want
        if not self._segments:
            self._listed_in = wakeups.ring_waiters
            wakeups.ring_waiters.append(self)
            return future
        self._listed_in = wakeups.waiting
        wakeups.waiting.append(self)
        if self._clock is _NO_CLOCK_YET:
            self._clock = wakeups.clocks.clock(self._latency)
        clock = cast("DeliveryClock | None", self._clock)
        if clock is not None:
            clock.watch(wakeups)
        else:
            self._per_frame = True
            wakeups.per_frame += 1
        return future

    def _release(self) -> None:
        """The wait is over (woken or given up): out of the call's wake-up lists."""
        if self._listed_in is not None:
            self._listed_in.remove(self)
            self._listed_in = None
        if self._per_frame:
            self._per_frame = False
            self._wakeups.per_frame -= 1
        self._waiter = None

    def _release_if(self, future: asyncio.Future[None] | None) -> None:
        if future is not None and self._waiter is future:
            self._release()

    async def _wait(self, want: int) -> RingBuffer | None:
        """Wait until the head ring holds ``want`` samples or is closed; None at the end."""
        wakeups = self._wakeups
        while True:
            ended = wakeups.ended
            ring = self._head()
            if ring is not None:
                if ring.available >= want or ring.closed:
                    return ring
            elif ended:
                return None
            future = self._enlist(want)
            try:
                await future
            finally:
                self._release_if(future)

    async def read(self, n: int | None = None) -> np.ndarray:
        """Wait for audio and return up to ``n`` samples (all available when None).

        An empty array means the channel has ended.
        """
        while True:
            ring = await self._wait(1)
            if ring is None:
                return _EMPTY
            chunk = ring.read(n)
            if chunk.size:
                return chunk

    async def read_exactly(self, n: int) -> np.ndarray:
        """Wait for ``n`` samples; fewer only when the channel ends first."""
        if n <= 0:
            raise PiopiyValidationError(f"n must be positive, not {n}")
        parts = []
        got = 0
        while got < n:
            ring = await self._wait(n - got)
            if ring is None:
                break
            chunk = ring.read(n - got)
            if chunk.size:
                parts.append(chunk)
                got += chunk.size
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else _EMPTY

    def __aiter__(self) -> ChannelReader:
        return self

    def __anext__(self) -> _NextChunk:
        """``async for``: the next chunk, all the audio there is once there is some."""
        return _NextChunk(self)

    async def chunks(self, n: int) -> AsyncIterator[np.ndarray]:
        """Yield chunks of exactly ``n`` samples (the last one may be shorter)."""
        while True:
            chunk = await self.read_exactly(n)
            if not chunk.size:
                return
            yield chunk
            del chunk  # the application holds it; not this frame too while waiting

    # -- threads ------------------------------------------------------------------------

    def read_blocking(self, n: int, timeout: float | None = None) -> np.ndarray:
        """From any thread: block until ``n`` samples are there, the channel ends, or
        ``timeout`` seconds pass; return what is there (at most ``n``).

        The wait on audio releases the GIL. An empty array with ``ended`` True means the
        channel is over; with ``ended`` False, a timeout.
        """
        if n <= 0:
            raise PiopiyValidationError(f"n must be positive, not {n}")
        wakeups = self._wakeups
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - _monotonic())
            ring = self._head()
            if ring is None:
                changed = wakeups.thread_signal()
                with changed:
                    while not wakeups.ended and not self._segments:
                        if remaining is not None and remaining <= 0:
                            return _EMPTY
                        changed.wait(remaining)
                        if deadline is not None:
                            remaining = deadline - _monotonic()
                    if wakeups.ended and self._head() is None:
                        return _EMPTY
                continue
            chunk = ring.read_wait(n, remaining)
            if chunk.size:
                return chunk
            if not ring.closed:
                return _EMPTY  # timed out

    def iter_blocking(self, n: int) -> Iterator[np.ndarray]:
        """From a worker thread: yield chunks of up to ``n`` samples until the channel ends."""
        while True:
            chunk = self.read_blocking(n)
            if chunk.size:
                yield chunk
            elif self.ended:
                return

    # -- callback -----------------------------------------------------------------------

    def on_chunk(self, callback: Callable[[np.ndarray], Any] | None) -> None:
        """Call ``callback(chunk)`` on the event loop with each frame's new samples.

        It runs inside the receive path, so it must be quick and must not block;
        its exceptions are logged once per call and counted. None removes it.
        """
        taps = self._wakeups.taps
        if self._callback is not None and callback is None:
            taps.remove(self)
        elif self._callback is None and callback is not None:
            taps.append(self)
        self._callback = callback


class _NextChunk:
    """One step of ``async for`` over a reader: an awaitable with no coroutine frame.

    Awaiting it hands the reader's wait future to the task until the clock wakes it,
    then reads the ring in the task's own turn. So a wait given up (``asyncio.wait_for``
    around ``anext``, a cancelled task) leaves the audio in the ring and the reader
    usable: unlike an async generator's, this iteration survives it.
    """

    __slots__ = ("_reader", "_future")

    def __init__(self, reader: ChannelReader) -> None:
        self._reader = reader
        self._future: asyncio.Future[None] | None = None

    def __await__(self) -> _NextChunk:
        return self

    def __iter__(self) -> _NextChunk:
        return self

    def __next__(self) -> asyncio.Future[None]:
        reader = self._reader
        if self._future is not None:  # woken: the wait is over
            reader._release_if(self._future)
            self._future = None
        ring = reader._head()
        if ring is not None:
            if ring.available:
                raise StopIteration(ring.read())
        elif reader._wakeups.ended:
            raise StopAsyncIteration
        future = self._future = reader._enlist(1)
        future._asyncio_future_blocking = True  # what a task looks for in what is yielded
        return future

    def send(self, value: object) -> asyncio.Future[None]:
        return self.__next__()

    def throw(self, error: BaseException | type[BaseException], *_: object) -> NoReturn:
        self.close()
        raise error

    def close(self) -> None:
        self._reader._release_if(self._future)
        self._future = None
