"""A call's timeline: where each delivered sample sits, in samples at the target rate
from the call's first sample, one origin for every channel.

Audio that arrives in time follows the audio before it. What breaks that is recorded
here and moves the timeline explicitly: a gap (a frame far behind the real-time
schedule, the time a pause or a reconnection left) is a :class:`Gap` at the position
where the audio stopped, and the samples after it come that much later. Samples a
full ring dropped (an overrun) move a reader's position too: a ring's read index
counts them.

Each ring of a call (one per channel per format) is mapped onto the timeline by its
base (the timeline position of its first sample) and its marks (a gap before ring
index ``i`` adds its length to every sample from ``i`` on). A reader's position is
then ``base + read_index + marks up to read_index``: exact whatever the reader read,
dropped or skipped. Positions are exact under the ``drop_oldest`` ring policy (the
default); under ``drop_newest`` the samples a full ring refuses are counted in the
overruns but do not move positions.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

__all__ = ["GAP_KINDS", "MAX_GAPS", "Gap", "PositionedChunk", "Timeline"]

GAP_KINDS = ("late", "pause", "reconnect")
# Gaps listed per call; beyond this they still move the timeline and are counted.
MAX_GAPS = 1000
# Marks kept per ring before those every reader has passed are folded into its base.
_MAX_MARKS = 256


class PositionedChunk(NamedTuple):
    """Samples and where the first of them sits on the call's timeline (samples at the
    reader's rate from the call's first sample, the same origin for every channel).
    The samples are contiguous on the timeline: a gap ends a chunk."""

    position: int
    samples: np.ndarray

    @property
    def end(self) -> int:
        """The position just after the last sample."""
        return self.position + len(self.samples)


class Ring(Protocol):
    """What the timeline reads of a ring."""

    @property
    def read_index(self) -> int: ...
    @property
    def write_index(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Gap:
    """``samples`` of the timeline with no audio, from position ``at``: ``late`` (the
    stream fell behind real time), ``pause`` or ``reconnect``."""

    at: int
    samples: int
    kind: str

    @property
    def end(self) -> int:
        return self.at + self.samples


class _RingTime:
    """One ring on the timeline."""

    __slots__ = ("base", "index", "added", "ring")

    def __init__(self, ring: Ring, base: int) -> None:
        self.ring = ring
        self.base = base
        self.index: list[int] = []  # ring indices where gaps start, ascending
        self.added: list[int] = []  # samples added up to and including each

    def position(self, index: int) -> int:
        k = bisect_right(self.index, index)
        return self.base + index + (self.added[k - 1] if k else 0)

    def next_mark(self, index: int) -> int | None:
        """The first gap after ring index ``index`` (a chunk read from there must stop
        before it), or None."""
        k = bisect_right(self.index, index)
        return self.index[k] if k < len(self.index) else None

    def mark(self, samples: int) -> None:
        at = self.ring.write_index
        total = (self.added[-1] if self.added else 0) + samples
        if self.index and self.index[-1] == at:
            self.added[-1] = total
        else:
            self.index.append(at)
            self.added.append(total)
        if len(self.index) > _MAX_MARKS:
            self._fold(self.ring.read_index)

    def _fold(self, read: int) -> None:
        # Marks at or before what the reader has passed cannot change its position
        # again: fold them into the base (shifting what stays).
        k = bisect_right(self.index, read)
        if k == 0:
            return
        done = self.added[k - 1]
        self.base += done
        del self.index[:k]
        self.added = [a - done for a in self.added[k:]]


class Timeline:
    """The timeline of one call at ``rate`` samples a second.

    Args:
        rate: The call's target rate (what readers deliver).
    """

    __slots__ = ("rate", "gaps", "gap_samples", "gaps_by_kind", "_channels", "_current",
                 "_start")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.gaps: list[Gap] = []
        self.gap_samples = 0
        self.gaps_by_kind = dict.fromkeys(GAP_KINDS, 0)
        self._channels: dict[str, list[_RingTime]] = {}
        self._current: list[_RingTime] = []
        self._start = 0  # timeline position of the current format's first sample

    def now(self) -> int:
        """The position the next sample written will have."""
        if not self._current:
            return self._start
        rt = self._current[0]
        return rt.position(rt.ring.write_index)

    def attach(self, rings: dict[str, Ring]) -> int:
        """A format starts: its rings (by channel name) begin at the timeline's end.
        Returns that position."""
        start = self._start = self.now()
        current = []
        for name, ring in rings.items():
            rt = _RingTime(ring, start)
            self._channels.setdefault(name, []).append(rt)
            current.append(rt)
        self._current = current
        return start

    def gap(self, kind: str, seconds: float) -> int:
        """Audio stops for ``seconds`` (measured against the real-time schedule) before
        the next sample written: the timeline moves. Returns the gap in samples (0 for
        less than one sample: nothing is recorded)."""
        samples = int(round(seconds * self.rate))
        if samples <= 0:
            return 0
        at = self.now()
        if not self._current:
            self._start += samples
        for rt in self._current:
            rt.mark(samples)
        self.gap_samples += samples
        self.gaps_by_kind[kind] = self.gaps_by_kind.get(kind, 0) + 1
        if len(self.gaps) < MAX_GAPS:
            self.gaps.append(Gap(at, samples, kind))
        return samples

    def _entry(self, name: str, ring: Ring | None) -> _RingTime | None:
        entries = self._channels.get(name)
        if not entries:
            return None
        if ring is None:
            return entries[-1]
        for rt in entries:
            if rt.ring is ring:
                return rt
        return None

    def position(self, name: str, ring: Ring | None) -> int:
        """The timeline position of the next sample ``ring`` (a ring of channel
        ``name``) returns; with ``ring`` None, the end of the channel's last ring (a
        reader that read everything). 0 for a channel that never had audio."""
        rt = self._entry(name, ring)
        if rt is None:
            return 0
        ring = rt.ring
        index = ring.read_index if ring is not None else 0
        return rt.position(index)

    def contiguous(self, name: str, ring: Ring) -> int | None:
        """How many samples can be read from ``ring`` before the next gap (None: no gap
        ahead)."""
        rt = self._entry(name, ring)
        if rt is None:
            return None
        read = ring.read_index
        mark = rt.next_mark(read)
        return None if mark is None else mark - read
