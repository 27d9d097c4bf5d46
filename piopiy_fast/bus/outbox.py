"""What a receiver has for the bus and the bus has not taken yet, bounded in bytes.

The receive path puts messages in and never waits: when the bytes in flight (queued,
plus sent and not yet confirmed by the bus) pass the bound, the oldest queued audio is
dropped and counted. A call's control messages (start, events, end) are small and
bounded by count instead, so that a slow bus loses audio, which the consumer sees as
a gap on the timeline, before it loses a call's start or end. Messages leave in the
order they were put in.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Message:
    """One message for the bus; ``size`` is the bytes it holds (payload, subject and
    headers), as counted against the bound."""

    subject: str
    payload: bytes
    headers: dict[str, str] | None = None
    audio: bool = False
    order: int = field(default=0, compare=False)
    size: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        extra = 0 if self.headers is None else sum(
            len(k) + len(v) + 4 for k, v in self.headers.items())
        self.size = len(self.payload) + len(self.subject) + extra


class Outbox:
    """A FIFO of messages bounded by bytes in flight; dropping the oldest audio.

    Args:
        max_bytes: Bytes queued plus bytes sent and not yet settled, at most.
        max_control: Control messages queued at most (past it the oldest is dropped).
        on_drop: Called with ``(messages, bytes)`` dropped so far, after each drop.
    """

    def __init__(self, max_bytes: int, *, max_control: int = 4096,
                 on_drop: Callable[[int, int], object] | None = None) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.max_bytes = max_bytes
        self.max_control = max_control
        self._audio: collections.deque[Message] = collections.deque()
        self._control: collections.deque[Message] = collections.deque()
        self._order = 0
        self.queued_bytes = 0
        self.unsettled_bytes = 0  # sent, waiting for the bus to confirm or lose it
        self.dropped = 0
        self.dropped_bytes = 0
        self._on_drop = on_drop
        self._ready: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._audio) + len(self._control)

    @property
    def in_flight(self) -> int:
        """Bytes queued and bytes sent but not settled."""
        return self.queued_bytes + self.unsettled_bytes

    def put(self, message: Message) -> None:
        """Queue ``message``; drop the oldest audio while over the bound. Never waits."""
        self._order += 1
        message.order = self._order
        queue = self._audio if message.audio else self._control
        queue.append(message)
        self.queued_bytes += message.size
        dropped = dropped_bytes = 0
        if not message.audio and len(self._control) > self.max_control:
            old = self._control.popleft()
            dropped, dropped_bytes = 1, old.size
        while self.in_flight - dropped_bytes > self.max_bytes and self._audio:
            old = self._audio.popleft()
            dropped += 1
            dropped_bytes += old.size
        if dropped:
            self.queued_bytes -= dropped_bytes
            self.dropped += dropped
            self.dropped_bytes += dropped_bytes
            if self._on_drop is not None:
                self._on_drop(self.dropped, self.dropped_bytes)
        if self._ready is not None:
            self._ready.set()

    def take(self) -> Message | None:
        """The next message in the order put (its bytes become unsettled), or None."""
        audio, control = self._audio, self._control
        if audio and (not control or audio[0].order < control[0].order):
            message = audio.popleft()
        elif control:
            message = control.popleft()
        else:
            return None
        size = message.size
        self.queued_bytes -= size
        self.unsettled_bytes += size
        return message

    def settled(self, size: int) -> None:
        """A sent message of ``size`` bytes is confirmed, or given up on."""
        self.unsettled_bytes = max(0, self.unsettled_bytes - size)

    async def wait(self, timeout: float) -> None:
        """Wait until a message is queued, at most ``timeout`` seconds; then let the
        other producers woken with it queue theirs, so that one wake sends them all."""
        if len(self):
            return
        ready = self._ready
        if ready is None:
            ready = self._ready = asyncio.Event()
        ready.clear()
        timer = asyncio.get_running_loop().call_later(timeout, ready.set)
        try:
            await ready.wait()
        finally:
            timer.cancel()
        await asyncio.sleep(0)
