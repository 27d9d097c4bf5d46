"""What one emulated stream client did: connections, frames written, closes, errors."""

from __future__ import annotations

import asyncio
import builtins
from dataclasses import dataclass, field

__all__ = ["PeerEvents"]


@dataclass
class PeerEvents:
    """Counters and logs kept by a client generation as it runs.

    ``sent_tags`` lists the audio frames written, by the tag the module gave them (the
    frame's index in the call), in the order they went out; ``closed_by`` each close
    as ``(code, reason, who)`` with who ``server`` (the server closed first),
    ``answer`` (the server answered our close) or ``transport`` (no close frame).
    """

    connections: int = 0
    frames: int = 0
    bytes: int = 0
    dropped: int = 0
    sent_tags: list[int] = field(default_factory=list)
    texts_sent: list[str] = field(default_factory=list)
    pings_sent: list[builtins.bytes] = field(default_factory=list)
    pongs_received: int = 0
    received: list[str] = field(default_factory=list)
    closes_sent: list[tuple[int, str]] = field(default_factory=list)
    closed_by: list[tuple[int, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    opened_at: list[float] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def record_audio(self, size: int, tag: int | None) -> None:
        self.frames += 1
        self.bytes += size
        if tag is not None:
            self.sent_tags.append(tag)
