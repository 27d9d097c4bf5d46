"""Readers that cut a channel by its speech: whole utterances, or the stream with the
silence left out, both on the call's timeline.

Both read a :class:`~piopiy_fast.receiver.channel.ChannelReader` through its
positioned chunks and cut them by the segments the call's detector found (the
detector runs as frames are received, so what a reader reads is already decided,
but for the onset of speech in its last few tens of milliseconds, which the pre-roll
covers). The audio kept waiting is bounded: the pre-roll, and an utterance up to
``max_seconds``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import PiopiyValidationError
from ..stream.timeline import PositionedChunk

if TYPE_CHECKING:
    from .call import CallAnalytics


class ChannelReader(Protocol):
    """What these readers take of a channel reader (``call.caller``...)."""

    @property
    def name(self) -> str: ...
    @property
    def rate(self) -> int: ...
    def positioned(self, n: int | None = None) -> AsyncIterator[PositionedChunk]: ...

__all__ = ["Utterance", "speech_only", "utterances"]


@dataclass(frozen=True, slots=True)
class Utterance:
    """One stretch of a party's speech: from ``start`` to ``end`` on the timeline, and
    ``samples`` from ``position`` (``start`` less the pre-roll) to ``end``.
    ``complete`` is False for a piece of an utterance longer than the reader's
    ``max_seconds`` (the rest follows)."""

    party: str
    start: int
    end: int
    position: int
    samples: np.ndarray
    rate: int
    complete: bool = True

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / self.rate


class _Window:
    """The latest audio read, by timeline position (gaps read as silence)."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, np.ndarray]] = []

    @property
    def start(self) -> int:
        return self.parts[0][0] if self.parts else 0

    @property
    def end(self) -> int:
        return self.parts[-1][0] + len(self.parts[-1][1]) if self.parts else 0

    def add(self, chunk: PositionedChunk) -> None:
        self.parts.append((chunk.position, chunk.samples))

    def cut(self, start: int, end: int) -> np.ndarray:
        out = np.zeros(max(0, end - start), dtype=np.int16)
        for position, samples in self.parts:
            a, b = max(start, position), min(end, position + len(samples))
            if a < b:
                out[a - start:b - start] = samples[a - position:b - position]
        return out

    def forget_before(self, position: int) -> None:
        parts = self.parts
        while parts and parts[0][0] + len(parts[0][1]) <= position:
            del parts[0]
        if parts and parts[0][0] < position:
            first, samples = parts[0]
            parts[0] = (position, samples[position - first:])


def _check(reader: ChannelReader, analytics: CallAnalytics | None) -> CallAnalytics:
    if analytics is None:
        raise PiopiyValidationError("the call has no analytics: start the server with "
                                    "analytics on (StreamServer(analytics=...))")
    return analytics


async def utterances(reader: ChannelReader, analytics: CallAnalytics | None, *,
                     pre_roll: float = 0.2, max_seconds: float = 30.0,
                     ) -> AsyncIterator[Utterance]:
    """Yield ``reader``'s channel as utterances, each once its speech has ended.

    Args:
        reader: The channel (``call.caller``...).
        analytics: The call's analytics (``call.analytics``).
        pre_roll: Seconds of audio kept before each utterance's start.
        max_seconds: Longest utterance yielded whole: a longer one comes in pieces of
            this length (``complete`` False but the last).

    Raises:
        PiopiyValidationError: The call has no analytics, or a length out of range.
    """
    found = _check(reader, analytics)
    if pre_roll < 0 or max_seconds <= 0:
        raise PiopiyValidationError("pre_roll must not be negative and max_seconds positive")
    rate, name = reader.rate, reader.name
    pre, longest = int(pre_roll * rate), int(max_seconds * rate)
    window = _Window()
    done = 0  # the timeline up to here is yielded (or was silence)

    def ready(final: bool) -> Iterable[Utterance]:
        nonlocal done
        for segment in tuple(found.recent(name)):
            if segment.end <= done or segment.end > window.end:
                continue
            start = max(segment.start, done)
            yield _utterance(name, start, segment.end, window, pre, rate, True)
            done = segment.end
        opened = found.speaking(name)
        if opened is not None:
            start = max(opened, done)
            if window.end - start >= longest or (final and window.end > start):
                end = window.end if final else start + longest
                yield _utterance(name, start, end, window, pre, rate, final)
                done = end

    async for chunk in reader.positioned():
        window.add(chunk)
        for utterance in ready(False):
            yield utterance
        opened = found.speaking(name)
        keep = window.end - pre if opened is None else max(min(opened, done), done) - pre
        window.forget_before(max(keep, window.end - pre - longest))
    for utterance in ready(True):
        yield utterance


def _utterance(name: str, start: int, end: int, window: _Window, pre: int, rate: int,
               complete: bool) -> Utterance:
    position = max(window.start, start - pre)
    return Utterance(name, start, end, position, window.cut(position, end), rate, complete)


async def speech_only(reader: ChannelReader, analytics: CallAnalytics | None, *,
                      pre_roll: float = 0.2) -> AsyncIterator[PositionedChunk]:
    """Yield ``reader``'s channel with the silence left out: positioned chunks of the
    speech (from ``pre_roll`` seconds before each segment), as they are read; the
    positions show where silence was skipped.

    Raises:
        PiopiyValidationError: The call has no analytics.
    """
    found = _check(reader, analytics)
    rate, name = reader.rate, reader.name
    pre = int(pre_roll * rate)
    window = _Window()
    out = 0  # the timeline up to here is yielded or skipped

    async for chunk in reader.positioned():
        window.add(chunk)
        spans = [(s.start - pre, s.end) for s in tuple(found.recent(name)) if s.end > out]
        opened = found.speaking(name)
        if opened is not None:
            spans.append((opened - pre, window.end))
        for a, b in sorted(spans):
            a, b = max(a, out, window.start), min(b, window.end)
            if a < b:
                yield PositionedChunk(a, window.cut(a, b))
                out = b
        # Keep the pre-roll of a segment whose onset is not decided yet.
        window.forget_before(max(out, window.end - 2 * pre - rate // 10))
