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
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import PiopiyValidationError
from .remote_channel import Ack, Gap, RemoteChannel
from .subjects import CHANNELS, ChunkHeader

__all__ = ["Ack", "Gap", "RemoteCall", "RemoteChannel"]

logger = logging.getLogger("piopiy_fast.bus")


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
        self.caller, self.callee, self.mix = (
            RemoteChannel(self.call_id, name, self.rate, max_queued, taken_over=taken_over,
                          on_done=self._channel_done) for name in CHANNELS)
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
