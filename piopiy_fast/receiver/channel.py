"""One channel of a live call, read at the target rate as numpy int16 arrays.

A reader takes the audio out of the call's ring(s) in one of three ways: ``async
for`` on the event loop, a blocking read from a worker thread, or a callback on
the event loop. Each channel has one consumer.

How ``async`` readers are woken (by a clock shared by every call, not by each frame)
is in :mod:`.clock`; who waits, per call, is the call's compiled ``CallDelivery``; how
one waits, in the compiled ``ReaderCore``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio import CallDelivery, ReaderCore
from ..errors import PiopiyValidationError
from ..stream.timeline import PositionedChunk, Timeline
from .clock import check_latency

if TYPE_CHECKING:
    from ..audio import RingBuffer

_EMPTY = np.empty(0, dtype=np.int16)
_EMPTY.flags.writeable = False

__all__ = ["ChannelReader", "PositionedChunk"]


class ChannelReader(ReaderCore):
    """One channel of a call (``call.caller`` or ``call.callee``) at the target rate.

    ``async for chunk in reader`` yields int16 arrays as audio arrives and ends after the
    call ends and the channel is drained; ``chunks(n)`` yields fixed-size chunks;
    ``read_blocking`` serves a worker thread; ``on_chunk`` pushes to a callback. Use one
    of them per channel: the ring behind a reader has a single consumer. ``rate`` is the
    sample rate of what it returns (the server's target rate).

    How an ``async`` read waits and is woken is compiled (``ReaderCore``: it is most of
    what a call costs the server); ``async for`` steps run no coroutine frame, and a wait
    given up (``asyncio.wait_for`` around ``anext``, a cancelled task) leaves the audio
    in the ring and the reader usable.
    """

    __slots__ = ("name", "rate", "timeline")

    def __init__(self, delivery: CallDelivery, name: str, rate: int,
                 timeline: Timeline | None = None) -> None:
        super().__init__(delivery)
        self.name = name
        self.rate = rate
        self.timeline = timeline if timeline is not None else Timeline(rate)

    # -- what the call's delivery asks of a reader (the rest is ReaderCore's) ----------

    def deliver(self) -> None:
        """Hand the ``on_chunk`` callback what the ring holds (the delivery calls it
        for each frame while there is a callback)."""
        callback = self._callback
        if callback is None:
            return  # removed by another reader's callback during this frame
        ring = self._head()
        while ring is not None:
            chunk = ring.read()
            if chunk.size:
                try:
                    callback(chunk)
                except Exception:
                    self._delivery.callback_failed(self.name)
            if not ring.closed:
                return
            ring = self._head()

    # -- reading ------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Longest wait, in seconds, between audio arriving and an ``async`` read of this
        channel returning it: the server's ``latency`` unless set here. 0 wakes the
        reader with every frame that brings audio (the lowest delay, the most CPU)."""
        return self._delivery.clocks.latency if self._latency is None else self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = check_latency(seconds)
        self._forget_clock()

    @property
    def available(self) -> int:
        """Samples that can be read now without waiting."""
        return sum(ring.available for ring in tuple(self._segments))

    @property
    def ended(self) -> bool:
        """True once the call is over and everything has been read."""
        return self._delivery.ended and self._head() is None

    # -- the timeline -------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Where the next sample this reader returns sits on the call's timeline.

        Samples lost to an overrun and gaps in the audio (``call.timeline.gaps``) move
        it; so caller and callee samples at the same position were spoken at the same
        time."""
        return self.timeline.position(self.name, self._head())

    async def positioned(self, n: int | None = None) -> AsyncIterator[PositionedChunk]:
        """Yield the audio as :class:`PositionedChunk` s: each contiguous on the
        timeline, so a gap (or an overrun) starts a new chunk at its new position.

        Args:
            n: Samples per chunk: exactly ``n`` except before a gap or at the end;
                None for all the audio there is, as ``async for`` gives it.
        """
        if n is not None and n <= 0:
            raise PiopiyValidationError(f"n must be positive, not {n}")
        while True:
            chunk = await self._positioned_read(n)
            if chunk is None:
                return
            yield chunk
            del chunk

    async def _positioned_read(self, n: int | None) -> PositionedChunk | None:
        timeline = self.timeline
        parts: list[np.ndarray] = []
        start = got = 0
        while n is None or got < n:
            want = 1 if n is None or parts else n - got
            ring = await self._wait(want)
            if ring is None:
                break
            position = timeline.position(self.name, ring)
            if parts and position != start + got:
                break  # a gap (or an overrun) between: the chunk ends here
            limit = timeline.contiguous(self.name, ring)
            take = n - got if n is not None else None
            if limit is not None:
                take = limit if take is None else min(take, limit)
            chunk = ring.read(take)
            if not chunk.size:
                continue
            if not parts:
                start = position
            parts.append(chunk)
            got += chunk.size
            if n is None:
                break
        if not parts:
            return None
        return PositionedChunk(start, parts[0] if len(parts) == 1 else np.concatenate(parts))

    # -- async --------------------------------------------------------------------------

    async def _wait(self, want: int) -> RingBuffer | None:
        """Wait until the head ring holds ``want`` samples or is closed; None at the end."""
        delivery = self._delivery
        while True:
            ended = delivery.ended
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
        delivery = self._delivery
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - _monotonic())
            ring = self._head()
            if ring is None:
                changed = delivery.thread_signal()
                with changed:
                    while not delivery.ended and not self._segments:
                        if remaining is not None and remaining <= 0:
                            return _EMPTY
                        changed.wait(remaining)
                        if deadline is not None:
                            remaining = deadline - _monotonic()
                    if delivery.ended and self._head() is None:
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
        its exceptions are logged once per call and counted. None removes it. Once
        the call has ended it does nothing: no audio is delivered by callback then.
        """
        if callback is None or self._delivery.ended:
            self._callback = None
            self._delivery.remove_tap(self)
        else:
            self._callback = callback
            self._delivery.add_tap(self)
