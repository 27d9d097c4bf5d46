"""Publishing calls to a message bus: the seam a :class:`StreamServer` knows, and the
part every bus shares (a call's audio and events turned into messages, kept in a
bounded :class:`~.outbox.Outbox`).

A bus is a :class:`Publisher`; :class:`OutboxPublisher` does all but the sending, which
a subclass does in :meth:`OutboxPublisher.run_link` (see :mod:`.nats`). With a
publisher, the server hands it each call as it hands the call to the application, and
the publisher reads the call's channels: the application keeps the call's events,
metadata and controls, and reads its audio from the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import PiopiyValidationError
from ..receiver.logs import RateLimitedLog
from ..receiver.stats import ServerStats
from .outbox import Message, Outbox
from .subjects import CHANNELS, ChunkHeader, Subjects, call_token, encode_json

if TYPE_CHECKING:
    from ..receiver.call import CallStream
    from ..receiver.channel import ChannelReader

logger = logging.getLogger("piopiy_fast.bus")

DEFAULT_CHUNK_MS = 200.0
DEFAULT_MAX_IN_FLIGHT = 64 << 20  # bytes: about 3 s of 300 two-party calls at 16 kHz


class Publisher(Protocol):
    """What a :class:`~piopiy_fast.receiver.server.StreamServer` asks of a bus."""

    async def start(self) -> None:
        """Connect (or begin trying to); raise for a configuration the bus refuses."""

    def add_call(self, call: CallStream) -> None:
        """Publish ``call`` from now to its end; never waits."""

    async def close(self) -> None:
        """Publish what the calls left, within a bounded time, and disconnect."""

    @property
    def stats(self) -> ServerStats:
        """The bus counters (the ``bus_*`` fields)."""


def timeline_position(reader: ChannelReader, samples_read: int) -> int:
    """The call-timeline index of the next sample ``reader`` returns: the samples it
    has returned since the call started (what the publisher counted)."""
    return samples_read


class OutboxPublisher:
    """Calls into messages, into a bounded outbox; a subclass sends them.

    Args:
        prefix: The subjects' prefix (see :mod:`.subjects`).
        chunk_ms: The length of one audio message, in milliseconds of audio.
        max_in_flight: Bytes queued or sent but not confirmed, at most, for the whole
            server; past it the oldest audio is dropped (``bus_dropped``).
        flush_timeout: Seconds :meth:`close` waits for the outbox to empty.
    """

    def __init__(self, *, prefix: str | None = None, chunk_ms: float = DEFAULT_CHUNK_MS,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 flush_timeout: float = 5.0) -> None:
        if not 10.0 <= chunk_ms <= 2000.0:
            raise PiopiyValidationError(f"chunk_ms must be from 10 to 2000, not {chunk_ms}")
        if max_in_flight < 1 << 16:
            raise PiopiyValidationError(
                f"max_in_flight must be at least 65536 bytes, not {max_in_flight}")
        self.subjects = Subjects(prefix) if prefix is not None else Subjects()
        self.chunk_ms = float(chunk_ms)
        self._drops = RateLimitedLog(logger)
        self.outbox = Outbox(max_in_flight, on_drop=self._dropped)
        self._flush_timeout = flush_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        # Calls the receiver could not name get this instance's tag, so that two
        # receivers' "call-1" are two calls on the bus.
        self._instance = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(2).hex()}"
        self.published = 0  # confirmed by the bus
        self.unconfirmed = 0  # sent, never confirmed (the bus went away, or timed out)
        self.rejected = 0  # refused by the bus (no stream, a limit)
        self.reconnects = 0
        self.calls = 0

    # -- the seam -------------------------------------------------------------------------

    def add_call(self, call: CallStream) -> None:
        self.calls += 1
        task = asyncio.ensure_future(self._publish_call(call))
        self._tasks.add(task)
        task.add_done_callback(self._call_done)

    @property
    def stats(self) -> ServerStats:
        return ServerStats(bus_published=self.published, bus_dropped=self.outbox.dropped,
                           bus_dropped_bytes=self.outbox.dropped_bytes,
                           bus_unconfirmed=self.unconfirmed, bus_rejected=self.rejected,
                           bus_reconnects=self.reconnects,
                           bus_in_flight_bytes=self.outbox.in_flight)

    async def drain_calls(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the calls' publishing to end (their end
        messages queued), then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is sent and settled; False on ``timeout``."""
        deadline = time.monotonic() + (self._flush_timeout if timeout is None else timeout)
        while self.outbox.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return not self.outbox.in_flight

    async def send_queued(self) -> None:
        """Send what the outbox holds now, if the bus can take it; a subclass does it
        (a chunk's task calls it after queuing the chunk: the chunk leaves in that step,
        not in a later turn of the loop, each of which may wait for the receiver's read
        coalescing). Else the outbox is left to the sender's own task."""

    def _dropped(self, messages: int, size: int) -> None:
        self._drops.warning("bus: %d messages (%d bytes) dropped so far: the bus is slow "
                            "or unreachable", messages, size)

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("publishing a call failed", exc_info=task.exception())

    # -- one call ---------------------------------------------------------------------------

    def published_id(self, call: CallStream) -> str:
        """The id a call has on the bus: its own, or this receiver's number for it."""
        return call.call_id if call.id_known else f"{self._instance}-{call.call_id}"

    async def _publish_call(self, call: CallStream) -> None:
        has_audio = await call.wait_audio()
        call_id = self.published_id(call)
        token = call_token(call_id)
        subjects, put = self.subjects, self.outbox.put
        start = {"call_id": call_id, "ref": call.ref, "from": call.from_number,
                 "to": call.to_number, "remote": call.remote, "route": call.route,
                 "opened_at": call.opened_at, "rate": call.target_rate,
                 "chunk_ms": self.chunk_ms, "audio": has_audio, **_format(call)}
        put(Message(subjects.start(token), encode_json(start)))
        await self.send_queued()

        def on_event(data: Any) -> None:
            put(Message(subjects.event(token), encode_json({"event": data})))
        call.on_event(on_event)
        sent = await asyncio.gather(*(
            self._publish_channel(call, call_id, token, name) for name in CHANNELS))
        end: dict[str, Any] = {
            "call_id": call_id, "close_code": None if call.close_info is None
            else call.close_info.code, "error": call.error,
            "published": {name: {"chunks": chunks, "samples": samples}
                         for name, (chunks, samples) in zip(CHANNELS, sent, strict=True)
                         if chunks},
            "stats": dataclasses.asdict(call.stats), **_format(call)}
        put(Message(subjects.end(token), encode_json(end)))
        await self.send_queued()

    async def _publish_channel(self, call: CallStream, call_id: str, token: str,
                               name: str) -> tuple[int, int]:
        reader = call.channel(name)
        # Woken by the frame that completes a chunk, not by the delivery clock: the
        # reader waits for a whole chunk, so it still wakes once per chunk, and the
        # chunk leaves without the clock's wait (up to ``latency``, 50 ms by default).
        reader.latency = 0.0
        rate = reader.rate
        size = max(1, round(rate * self.chunk_ms / 1000.0))
        subject = self.subjects.audio(token, name)
        put = self.outbox.put
        sequence = samples = 0
        async for chunk in reader.chunks(size):
            header = ChunkHeader(call_id, name, rate, timeline_position(reader, samples),
                                 sequence, time.time())
            put(Message(subject, chunk.astype("<i2", copy=False).tobytes(), header.encode(),
                        audio=True))
            await self.send_queued()
            sequence += 1
            samples += int(chunk.size)
        return sequence, samples

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        await self.drain_calls(self._flush_timeout)
        with contextlib.suppress(Exception):
            await self.flush()


def _format(call: CallStream) -> dict[str, Any]:
    fmt = call.format
    decision = call.format_decision
    return {"listen_mode": fmt.listen_mode, "source_rate": fmt.sample_rate,
            "layout": fmt.layout, "channels": list(call.channels),
            "format": None if decision is None else decision.describe()}
