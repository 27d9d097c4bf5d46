"""One channel of a call read from the bus: its chunks in timeline order, its gaps, and
the acknowledgements of what the application has read (see :mod:`.remote`)."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PiopiyValidationError
from .subjects import ChunkHeader

logger = logging.getLogger("piopiy_fast.bus")

Ack = Callable[[], Awaitable[None]]
_EMPTY = np.empty(0, dtype=np.int16)
_EMPTY.flags.writeable = False


@dataclass(frozen=True, slots=True)
class Gap:
    """Audio a reader will not return: ``samples`` from timeline index ``position``.

    ``cause`` is ``bus`` (``messages`` chunks the receiver published never came: dropped
    while the bus was slow or gone), or ``overrun`` (this worker's application fell
    behind and the oldest queued chunk was let go).
    """

    position: int
    samples: int
    messages: int
    cause: str


class RemoteChannel:
    """One channel of a call from the bus: int16 chunks at the call's rate, in order."""

    def __init__(self, call_id: str, name: str, rate: int, max_queued: int, *,
                 taken_over: bool = False,
                 on_done: Callable[[], None] = lambda: None) -> None:
        self.call_id = call_id
        self.name = name
        self.rate = rate
        self.position = 0  # the timeline index of the next sample returned
        self.gaps: list[Gap] = []
        self.duplicates = 0
        self.received = 0  # samples received (before any overrun)
        self._on_done = on_done
        self._max_queued = max_queued
        self._queue: collections.deque[tuple[int, np.ndarray, Ack]] = collections.deque()
        self._queued = 0
        self._offset = 0  # samples of the head chunk already returned
        self._spent: list[Ack] = []
        self._next_seq: int | None = None if taken_over else 0
        self._next_pos = 0
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None
        self._callback: Callable[[np.ndarray], Any] | None = None

    # -- fed by the subscriber ---------------------------------------------------------------

    def feed(self, header: ChunkHeader, samples: np.ndarray, ack: Ack) -> None:
        """A chunk from the bus, in delivery order (never waits)."""
        if self._ended or (self._next_seq is not None and header.sequence < self._next_seq):
            self.duplicates += 1
            self._spent.append(ack)
            return
        if self._next_seq is None:  # the first chunk a worker that took over gets
            self._next_pos = self.position = header.position
        elif header.sequence > self._next_seq or header.position > self._next_pos:
            self._gap(self._next_pos, header.position - self._next_pos,
                      header.sequence - self._next_seq, "bus")
        self._next_seq = header.sequence + 1
        self._next_pos = header.position + samples.size
        self.received += samples.size
        self._queue.append((header.position, samples, ack))
        self._queued += samples.size
        while self._queued - self._offset > self._max_queued and len(self._queue) > 1:
            position, old, old_ack = self._queue.popleft()
            self._queued -= old.size
            self._gap(position + self._offset, old.size - self._offset, 1, "overrun")
            self._offset = 0
            self._spent.append(old_ack)
        self._wake()

    def end(self, chunks: int, samples: int) -> None:
        """The call ended having published ``chunks`` chunks, ``samples`` samples."""
        if self._ended:
            return
        if self._next_seq is not None and (chunks > self._next_seq or samples > self._next_pos):
            self._gap(self._next_pos, samples - self._next_pos, chunks - self._next_seq, "bus")
        self._ended = True
        self._wake()

    def _gap(self, position: int, samples: int, messages: int, cause: str) -> None:
        if samples > 0 or messages > 0:
            self.gaps.append(Gap(position, max(0, samples), max(0, messages), cause))

    def _wake(self) -> None:
        if self._callback is not None:
            self._deliver()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading ------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once the call has ended and everything has been read."""
        return self._ended and not self._queue

    @property
    def available(self) -> int:
        """Samples that can be read now without waiting."""
        return self._queued - self._offset

    @property
    def gap_samples(self) -> int:
        return sum(gap.samples for gap in self.gaps)

    async def _settle_spent(self) -> None:
        spent, self._spent = self._spent, []
        for ack in spent:
            try:
                await ack()
            except Exception:  # the bus went away: the chunk may come again, read once
                pass

    def _take(self, n: int | None) -> np.ndarray:
        position, chunk, ack = self._queue[0]
        self.position = position + self._offset  # further on after a gap
        left = chunk.size - self._offset
        count = left if n is None else min(n, left)
        out = chunk[self._offset:self._offset + count]
        self._offset += count
        self.position += count
        if self._offset == chunk.size:
            self._queue.popleft()
            self._queued -= chunk.size
            self._offset = 0
            self._spent.append(ack)
        return out

    async def _wait(self) -> bool:
        """Wait for audio; False at the end."""
        while not self._queue:
            if self._ended:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True

    async def read(self, n: int | None = None) -> np.ndarray:
        """Wait for audio and return up to ``n`` samples (what one chunk holds, when
        None); an empty array at the end. Never joins samples across a gap."""
        if self._spent:
            await self._settle_spent()
        if not await self._wait():
            await self._settle_spent()
            self._on_done()
            return _EMPTY
        return self._take(n)

    def __aiter__(self) -> RemoteChannel:
        return self

    async def __anext__(self) -> np.ndarray:
        chunk = await self.read()
        if not chunk.size:
            raise StopAsyncIteration
        return chunk

    async def chunks(self, n: int) -> AsyncIterator[np.ndarray]:
        """Yield chunks of exactly ``n`` samples; shorter only before a gap or at the end."""
        if n <= 0:
            raise PiopiyValidationError(f"n must be positive, not {n}")
        parts: list[np.ndarray] = []
        got = 0
        while True:
            if got and self._queue and self._queue[0][0] + self._offset > self.position:
                yield np.concatenate(parts)  # a gap follows
                parts, got = [], 0
            chunk = await self.read(n - got)
            if not chunk.size:
                if got:
                    yield np.concatenate(parts)
                return
            parts.append(chunk)
            got += chunk.size
            if got == n:
                yield parts[0] if len(parts) == 1 else np.concatenate(parts)
                parts, got = [], 0

    def on_chunk(self, callback: Callable[[np.ndarray], Any] | None) -> None:
        """Call ``callback(chunk)`` with each chunk as it arrives (None stops it)."""
        self._callback = callback
        if callback is not None:
            self._deliver()

    def _deliver(self) -> None:
        callback = self._callback
        while self._queue and callback is not None:
            chunk = self._take(None)
            try:
                callback(chunk)
            except Exception:
                logger.exception("on_chunk of call %s %s failed", self.call_id,
                                 self.name)
        if self._spent:
            asyncio.ensure_future(self._settle_spent())
        if self._ended and not self._queue:
            self._on_done()

    def _drop_rest(self) -> None:
        """The call is let go: what is queued is acknowledged unread."""
        while self._queue:
            self._spent.append(self._queue.popleft()[2])
        self._queued = self._offset = 0
