"""A call read from the bus, with the reader API of a live call.

:class:`RemoteCall` is fed the call's messages in the order the bus delivers them
(by a subscriber, see :mod:`.nats_worker`) and offers what a
:class:`~piopiy_fast.receiver.call.CallStream` offers a consumer: ``caller``,
``callee`` and ``mix`` readers (``async for``, ``read``, ``chunks(n)``, ``on_chunk``),
``channels``, the format, ``events``, ``wait_audio()``, ``wait_closed()`` and, once it
has ended, the receiver's counters in ``stats``.

Each reader follows the call's timeline: ``reader.position`` is the timeline index of
the next sample it returns. Audio the bus lost (dropped by the receiver while the bus
was slow or gone, or by this reader when the application fell ``queue_seconds``
behind) is not made up: the next chunk starts further on, ``position`` jumps, and
``reader.gaps`` says where and how much. A message delivered twice is read once.

A message is acknowledged to the bus once the application has taken all its samples and
comes back for more (or the channel ends): a worker that dies leaves the audio its
application had not finished to the worker that takes the call over.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PiopiyValidationError
from .subjects import CHANNELS, ChunkHeader

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


async def _no_ack() -> None:
    return None


class RemoteChannel:
    """One channel of a call from the bus: int16 chunks at the call's rate, in order."""

    def __init__(self, call: RemoteCall, name: str, rate: int, max_queued: int) -> None:
        self.name = name
        self.rate = rate
        self.position = 0  # the timeline index of the next sample returned
        self.gaps: list[Gap] = []
        self.duplicates = 0
        self.received = 0  # samples received (before any overrun)
        self._call = call
        self._max_queued = max_queued
        self._queue: collections.deque[tuple[int, np.ndarray, Ack]] = collections.deque()
        self._queued = 0
        self._offset = 0  # samples of the head chunk already returned
        self._spent: list[Ack] = []
        self._next_seq: int | None = None if call.taken_over else 0
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
            self._call._channel_done()
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
                logger.exception("on_chunk of call %s %s failed", self._call.call_id,
                                 self.name)
        if self._spent:
            asyncio.ensure_future(self._settle_spent())
        if self._ended and not self._queue:
            self._call._channel_done()

    def _drop_rest(self) -> None:
        """The call is let go: what is queued is acknowledged unread."""
        while self._queue:
            self._spent.append(self._queue.popleft()[2])
        self._queued = self._offset = 0


class RemoteCall:
    """One call read from the bus (see the module's note).

    Attributes:
        call_id: The call's id on the bus.
        start: The start message (metadata and format) as published.
        end: The end message once it came (``close_code``, ``error``, ``stats``, the
            final format, and per channel the chunks and samples ``published``), else
            None.
        taken_over: True when another worker had this call before and died (or let it
            go): readers start where its application stopped.
        events: The call's text events, in order.
    """

    def __init__(self, start: dict[str, Any], *, taken_over: bool = False,
                 queue_seconds: float = 10.0) -> None:
        self.start = start
        self.call_id = str(start.get("call_id"))
        self.taken_over = taken_over
        self.end: dict[str, Any] | None = None
        self.events: list[Any] = []
        self.rate = int(start.get("rate") or 16000)
        max_queued = max(1, int(queue_seconds * self.rate))
        self.caller = RemoteChannel(self, "caller", self.rate, max_queued)
        self.callee = RemoteChannel(self, "callee", self.rate, max_queued)
        self.mix = RemoteChannel(self, "mix", self.rate, max_queued)
        self._closed = asyncio.Event()
        self._settled = asyncio.Event()
        self._event_callbacks: list[Callable[[Any], Any]] = []

    def __repr__(self) -> str:
        return f"<RemoteCall {self.call_id} {self.layout}{' ended' if self.ended else ''}>"

    # -- what the call is -------------------------------------------------------------------

    @property
    def ref(self) -> Any:
        return self.start.get("ref")

    @property
    def from_number(self) -> str | None:
        return self.start.get("from")

    @property
    def to_number(self) -> str | None:
        return self.start.get("to")

    @property
    def listen_mode(self) -> str:
        return str(self.start.get("listen_mode"))

    @property
    def source_rate(self) -> int:
        return int(self.start.get("source_rate") or 0)

    @property
    def layout(self) -> str:
        return str(self.start.get("layout"))

    @property
    def format_decision(self) -> str | None:
        """How the receiver settled the format, in words."""
        return self.start.get("format")

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels the call's format fills."""
        return tuple(self.start.get("channels") or ())

    @property
    def ended(self) -> bool:
        """True once the end message came."""
        return self._closed.is_set()

    @property
    def stats(self) -> dict[str, Any] | None:
        """The receiver's counters for the call, once it has ended."""
        return None if self.end is None else self.end.get("stats")

    def channel(self, name: str) -> RemoteChannel:
        if name not in CHANNELS:
            raise PiopiyValidationError(f"channel must be caller, callee or mix, not {name!r}")
        return getattr(self, name)  # type: ignore[no-any-return]

    async def wait_audio(self) -> bool:
        """True if the call had audio (known from its start)."""
        return bool(self.start.get("audio"))

    async def wait_closed(self) -> None:
        """Wait until the call's end came over the bus."""
        await self._closed.wait()

    def on_event(self, callback: Callable[[Any], Any]) -> None:
        """``callback(event)`` for each event so far, then as they come."""
        for event in self.events:
            callback(event)
        self._event_callbacks.append(callback)

    # -- fed by the subscriber ---------------------------------------------------------------

    def feed_event(self, data: dict[str, Any]) -> None:
        event = data.get("event")
        self.events.append(event)
        for callback in self._event_callbacks:
            try:
                callback(event)
            except Exception:
                logger.exception("on_event of call %s failed", self.call_id)

    def feed_audio(self, header: ChunkHeader, payload: bytes, ack: Ack) -> None:
        if len(payload) % 2:
            raise PiopiyValidationError("an audio chunk without whole samples")
        samples = np.frombuffer(payload, dtype="<i2").astype(np.int16, copy=False)
        self.channel(header.channel).feed(header, samples, ack)

    def feed_end(self, data: dict[str, Any]) -> None:
        self.end = data
        published = data.get("published")
        if not isinstance(published, dict):
            published = {}
        for name in CHANNELS:
            counts = published.get(name)
            if not isinstance(counts, dict):
                counts = {}
            self.channel(name).end(int(counts.get("chunks", 0)),
                                   int(counts.get("samples", 0)))
        self._closed.set()
        self._channel_done()

    def lose(self) -> None:
        """The call's end will not come (it went quiet on the bus): end it as it is."""
        for name in CHANNELS:
            reader = self.channel(name)
            reader.end(0, 0)
        self._closed.set()
        self._channel_done()

    def let_go(self) -> None:
        """This worker stops reading the call (what is queued is acknowledged)."""
        for name in CHANNELS:
            self.channel(name)._drop_rest()
        self._settled.set()

    def abandon(self) -> None:
        """This worker closes: the readers end, what is queued stays unacknowledged
        (the worker that takes the call over reads it)."""
        for name in CHANNELS:
            reader = self.channel(name)
            reader._queue.clear()
            reader._spent.clear()
            reader._queued = reader._offset = 0
            reader.end(0, 0)
        self._closed.set()

    def _channel_done(self) -> None:
        if self.ended and all(self.channel(n).ended for n in CHANNELS):
            self._settled.set()

    async def settled(self) -> None:
        """Wait until the call has ended and every channel has been read to its end."""
        await self._settled.wait()
