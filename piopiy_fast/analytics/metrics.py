"""Conversation metrics from speech segments: no audio, no I/O, no clock.

The figures call analytics services report for a two-party call, computed from when
each party spoke (segments on the call's timeline, in samples):

* talk time per party and its share of the call;
* overlap: time both parties speak;
* interruptions: a party starts speaking while the other is speaking and the two
  overlap for at least ``min_interruption`` seconds; who cut in on whom, how long
  the interrupted party had been speaking, and how long they overlapped;
* silences: stretches where nobody speaks; those of ``silence_threshold`` seconds or
  more are counted, the longest and their share of the call reported, and the time
  nobody speaks (``non_talk_seconds``) is given whole;
* loudness (dBFS of all the audio and of the speech) and clipping, when the levels
  are given.

Segments are added as they end (:meth:`ConversationMetrics.add`), one party's in
order, the parties' in any order between them: a pair of segments is compared when
the later of the two ends. :meth:`ConversationMetrics.summary` may be asked at any
time (live) and at the end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import PiopiyValidationError

__all__ = ["ChannelLevels", "ConversationMetrics", "Interruption", "Segment", "dbfs"]

FULL_SCALE = 32768.0


def dbfs(energy: float, samples: int) -> float | None:
    """The level of ``samples`` whose squares sum to ``energy``, in dB full scale
    (None for no samples; -inf clamped to -120)."""
    if samples <= 0:
        return None
    if energy <= 0:
        return -120.0
    return max(-120.0, 10.0 * math.log10(energy / samples / (FULL_SCALE * FULL_SCALE)))


@dataclass(frozen=True, slots=True)
class Segment:
    """``party`` speaks from timeline sample ``start`` to ``end`` (exclusive)."""

    party: str
    start: int
    end: int

    @property
    def samples(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Interruption:
    """``by`` started speaking at ``at`` while ``of`` was speaking: ``after`` samples
    into ``of``'s turn, overlapping it for ``overlap`` samples."""

    by: str
    of: str
    at: int
    after: int
    overlap: int


@dataclass(frozen=True, slots=True)
class ChannelLevels:
    """What a channel's samples measured: the sum of squares of all ``samples`` and of
    the ``speech_samples`` judged speech, the largest magnitude, and the samples at
    full scale."""

    samples: int = 0
    energy: float = 0.0
    speech_samples: int = 0
    speech_energy: float = 0.0
    peak: int = 0
    clipped: int = 0

    def __add__(self, other: ChannelLevels) -> ChannelLevels:
        return ChannelLevels(self.samples + other.samples, self.energy + other.energy,
                             self.speech_samples + other.speech_samples,
                             self.speech_energy + other.speech_energy,
                             max(self.peak, other.peak), self.clipped + other.clipped)


class ConversationMetrics:
    """The metrics of one conversation, from its parties' speech segments.

    Args:
        rate: Samples a second of the timeline.
        parties: The parties' names (their channels).
        silence_threshold: Seconds without speech that count as a silence.
        min_interruption: Seconds two parties must overlap for the later one to have
            interrupted (shorter overlaps are turn-taking jitter).
        max_segments: Segments kept per party; past it the oldest are let go (their
            times stay counted; only comparisons with them are lost).

    Raises:
        PiopiyValidationError: A rate or threshold out of range.
    """

    def __init__(self, rate: int, parties: Sequence[str] = ("caller", "callee"), *,
                 silence_threshold: float = 5.0, min_interruption: float = 0.25,
                 max_segments: int = 100_000) -> None:
        if rate <= 0:
            raise PiopiyValidationError(f"rate must be positive, not {rate}")
        if silence_threshold <= 0 or min_interruption < 0:
            raise PiopiyValidationError("silence_threshold must be positive and "
                                        "min_interruption not negative")
        self.rate = rate
        self.parties = tuple(parties)
        self.silence_threshold = silence_threshold
        self.min_interruption = min_interruption
        self._max = max_segments
        self._segments: dict[str, list[Segment]] = {p: [] for p in self.parties}
        self._open: dict[str, int] = {}
        self._talk = dict.fromkeys(self.parties, 0)
        self._turns = dict.fromkeys(self.parties, 0)
        self._longest = dict.fromkeys(self.parties, 0)
        self._overlap = 0
        self.interruptions: list[Interruption] = []
        self._cut_ins: set[tuple[str, str, int]] = set()
        self._levels: dict[str, ChannelLevels] = {}
        self._end = 0
        # The union of everyone's finished speech, merged, for silences.
        self._union: list[list[int]] = []

    # -- input ----------------------------------------------------------------------------

    def started(self, party: str, at: int) -> None:
        """``party`` started speaking at ``at`` (live figures count it from there)."""
        self._check(party)
        self._open[party] = at

    def ended(self, party: str, at: int) -> tuple[Segment, list[Interruption]] | None:
        """``party``'s speech that started earlier ended at ``at``: the segment and the
        interruptions it completed; None if it had not started."""
        start = self._open.pop(party, None)
        if start is None or at <= start:
            return None
        segment = Segment(party, start, at)
        return segment, self.add(segment)

    def add(self, segment: Segment) -> list[Interruption]:
        """A finished segment (one party's in order). Returns the interruptions found
        between it and the other parties' finished segments."""
        party = self._check(segment.party)
        own = self._segments[party]
        if own and segment.start < own[-1].end:
            raise PiopiyValidationError(f"{party}'s segments must come in order and not "
                                        "overlap")
        found = []
        for other, theirs in self._segments.items():
            if other == party:
                continue
            crossing = []
            for seg in reversed(theirs):
                if seg.end <= segment.start:
                    break
                if seg.start < segment.end:
                    crossing.append(seg)
            for seg in reversed(crossing):  # in time order: the first cut-in counts
                overlap = min(seg.end, segment.end) - max(seg.start, segment.start)
                self._overlap += overlap
                first, later = (seg, segment) if seg.start < segment.start else (segment, seg)
                if first.start == later.start:
                    continue
                # One interruption per interrupted segment and interrupter: a party that
                # pauses and goes on over the same speech is still the same cut-in.
                key = (later.party, first.party, first.start)
                if (key not in self._cut_ins
                        and overlap >= self.min_interruption * self.rate):
                    found.append(Interruption(later.party, first.party, later.start,
                                              later.start - first.start, overlap))
                    self._cut_ins.add(key)
        found.sort(key=lambda i: i.at)
        self.interruptions.extend(found)
        own.append(segment)
        if len(own) > self._max:
            del own[0]
        self._talk[party] += segment.samples
        self._turns[party] += 1
        self._longest[party] = max(self._longest[party], segment.samples)
        self._end = max(self._end, segment.end)
        self._merge(segment.start, segment.end)
        return found

    def add_party(self, party: str) -> None:
        """A party (a channel) joins; nothing changes if it is known."""
        if party not in self._segments:
            self.parties = (*self.parties, party)
            self._segments[party] = []
            self._talk[party] = self._turns[party] = self._longest[party] = 0

    def set_levels(self, party: str, levels: ChannelLevels) -> None:
        """What ``party``'s channel measured so far (replaces what was set)."""
        self._levels[self._check(party)] = levels

    def _merge(self, start: int, end: int) -> None:
        union = self._union
        # Segments arrive nearly in time order: search from the end.
        k = len(union)
        while k and union[k - 1][0] > start:
            k -= 1
        if k and union[k - 1][1] >= start:
            k -= 1
            union[k][1] = max(union[k][1], end)
        else:
            union.insert(k, [start, end])
        j = k + 1
        while j < len(union) and union[j][0] <= union[k][1]:
            union[k][1] = max(union[k][1], union[j][1])
            del union[j]

    def _check(self, party: str) -> str:
        if party not in self._segments:
            raise PiopiyValidationError(f"party must be one of {self.parties}, not {party!r}")
        return party

    # -- output ---------------------------------------------------------------------------

    def segments(self, party: str) -> list[Segment]:
        """``party``'s finished segments kept, in order."""
        return list(self._segments[self._check(party)])

    def silences(self, until: int | None = None) -> list[tuple[int, int]]:
        """Stretches of ``silence_threshold`` or more where nobody speaks, from the
        timeline's start to ``until`` (the last speech's end when None)."""
        end = self._end if until is None else until
        spans: Iterable[tuple[int, int]] = [(s, e) for s, e in self._union]
        opened = [(s, end) for s in self._open.values() if s < end]
        if opened:
            spans = sorted([*spans, *opened])
        threshold = self.silence_threshold * self.rate
        out = []
        cursor = 0
        for s, e in spans:
            if s >= end:
                break
            if s - cursor >= threshold:
                out.append((cursor, s))
            cursor = max(cursor, e)
        if end - cursor >= threshold:
            out.append((cursor, end))
        return out

    def summary(self, until: int | None = None) -> dict[str, Any]:
        """The metrics as JSON-ready values (seconds, dBFS): live up to ``until`` (speech
        still going counts to there), or up to the last speech's end when None."""
        rate = self.rate
        end = max(self._end, until or 0)
        talk = dict(self._talk)
        for party, start in self._open.items():
            talk[party] += max(0, end - start)
        spoken = self._union_length(end)
        silences = self.silences(end)
        silent = sum(e - s for s, e in silences)
        parties: dict[str, Any] = {}
        for party in self.parties:
            entry: dict[str, Any] = {
                "talk_seconds": round(talk[party] / rate, 3),
                "talk_share": round(talk[party] / end, 4) if end else 0.0,
                "turns": self._turns[party] + (party in self._open),
                "longest_turn_seconds": round(self._longest[party] / rate, 3),
                "interruptions_made": sum(1 for i in self.interruptions if i.by == party),
                "interrupted": sum(1 for i in self.interruptions if i.of == party),
            }
            levels = self._levels.get(party)
            if levels is not None:
                entry.update(_levels_summary(levels))
            parties[party] = entry
        return {
            "duration_seconds": round(end / rate, 3),
            "parties": parties,
            "overlap_seconds": round(self._overlap / rate, 3),
            "interruptions": [
                {"by": i.by, "of": i.of, "at_seconds": round(i.at / rate, 3),
                 "after_seconds": round(i.after / rate, 3),
                 "overlap_seconds": round(i.overlap / rate, 3)}
                for i in self.interruptions],
            "non_talk_seconds": round((end - spoken) / rate, 3),
            "silences": {
                "threshold_seconds": self.silence_threshold,
                "count": len(silences),
                "longest_seconds": round(max((e - s for s, e in silences), default=0) / rate, 3),
                "share": round(silent / end, 4) if end else 0.0,
            },
        }

    def _union_length(self, end: int) -> int:
        spans = [(s, min(e, end)) for s, e in self._union if s < end]
        spans += [(s, end) for s in self._open.values() if s < end]
        spans.sort()
        total, cursor = 0, 0
        for s, e in spans:
            if e > cursor:
                total += e - max(s, cursor)
                cursor = e
        return total


def _levels_summary(levels: ChannelLevels) -> Mapping[str, Any]:
    level = dbfs(levels.energy, levels.samples)
    speech = dbfs(levels.speech_energy, levels.speech_samples)
    peak = 20.0 * math.log10(levels.peak / FULL_SCALE) if levels.peak else -120.0
    return {
        "level_dbfs": None if level is None else round(level, 1),
        "speech_level_dbfs": None if speech is None else round(speech, 1),
        "peak_dbfs": round(max(peak, -120.0), 1),
        "clipped_samples": levels.clipped,
    }
