"""One channel of a live call, read at the target rate as numpy int16 arrays.

A reader takes the audio out of the call's ring(s) in one of three ways: ``async
for`` on the event loop, a blocking read from a worker thread, or a callback on
the event loop. Each channel has one consumer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import PiopiyValidationError

if TYPE_CHECKING:
    from ._core.ringbuffer import RingBuffer
    from .callstream import CallStream

_EMPTY = np.empty(0, dtype=np.int16)
_EMPTY.flags.writeable = False


class ChannelReader:
    """One channel of a call (``call.caller`` or ``call.callee``) at the target rate.

    ``async for chunk in reader`` yields int16 arrays as audio arrives and ends after the
    call ends and the channel is drained; ``chunks(n)`` yields fixed-size chunks;
    ``read_blocking`` serves a worker thread; ``on_chunk`` pushes to a callback. Use one
    of them per channel: the ring behind a reader has a single consumer.
    """

    __slots__ = ("name", "_call", "_segments", "_waiter", "_want", "_callback")

    def __init__(self, call: CallStream, name: str) -> None:
        self.name = name
        self._call = call
        # The rings this channel is read from, oldest first; more than one only after
        # a mid-call format change. The producer appends, the consumer pops.
        self._segments: deque[RingBuffer] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._want = 1
        self._callback: Callable[[np.ndarray], Any] | None = None

    @property
    def rate(self) -> int:
        """Sample rate of what this reader returns (the server's target rate)."""
        return self._call.target_rate

    @property
    def available(self) -> int:
        """Samples that can be read now without waiting."""
        return sum(ring.available for ring in tuple(self._segments))

    @property
    def ended(self) -> bool:
        """True once the call is over and everything has been read."""
        ended = self._call._ended
        return ended and self._head() is None

    def _head(self) -> RingBuffer | None:
        segments = self._segments
        while segments:
            ring = segments[0]
            # closed first: once closed, nothing more is written, so available is final.
            if not ring.closed or ring.available:
                return ring
            segments.popleft()
        return None

    # -- async --------------------------------------------------------------------------

    async def _wait(self, want: int) -> RingBuffer | None:
        """Wait until the head ring holds ``want`` samples or is closed; None at the end."""
        call = self._call
        while True:
            ended = call._ended
            ring = self._head()
            if ring is not None:
                if ring.available >= want or ring.closed:
                    return ring
                waiting = call._waiting
            elif ended:
                return None
            else:
                waiting = call._ring_waiters
            future = asyncio.get_running_loop().create_future()
            self._waiter = future
            self._want = want
            waiting.append(self)
            try:
                await future
            finally:
                self._waiter = None
                waiting.remove(self)

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

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[np.ndarray]:
        while True:
            chunk = await self.read()
            if not chunk.size:
                return
            yield chunk

    async def chunks(self, n: int) -> AsyncIterator[np.ndarray]:
        """Yield chunks of exactly ``n`` samples (the last one may be shorter)."""
        while True:
            chunk = await self.read_exactly(n)
            if not chunk.size:
                return
            yield chunk

    # -- threads ------------------------------------------------------------------------

    def read_blocking(self, n: int, timeout: float | None = None) -> np.ndarray:
        """From any thread: block until ``n`` samples are there, the channel ends, or
        ``timeout`` seconds pass; return what is there (at most ``n``).

        The wait on audio releases the GIL. An empty array with ``ended`` True means the
        channel is over; with ``ended`` False, a timeout.
        """
        if n <= 0:
            raise PiopiyValidationError(f"n must be positive, not {n}")
        call = self._call
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - _monotonic())
            ring = self._head()
            if ring is None:
                with call._changed:
                    while not call._ended and not self._segments:
                        if remaining is not None and remaining <= 0:
                            return _EMPTY
                        call._changed.wait(remaining)
                        if deadline is not None:
                            remaining = deadline - _monotonic()
                    if call._ended and self._head() is None:
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
        call = self._call
        if self._callback is not None and callback is None:
            call._taps.remove(self)
        elif self._callback is None and callback is not None:
            call._taps.append(self)
        self._callback = callback

    def _deliver(self) -> None:
        ring = self._head()
        while ring is not None:
            chunk = ring.read()
            if chunk.size:
                try:
                    self._callback(chunk)  # type: ignore[misc]
                except Exception:
                    self._call._callback_failed(self.name)
            if not ring.closed:
                return
            ring = self._head()
