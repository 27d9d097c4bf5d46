"""A live call's analytics: voice activity per channel, from the core, into
conversation metrics, turn events and the speech segments readers cut audio by.

The call core creates one :class:`CallAnalytics` per call when the server has
analytics on. For each format the call takes it makes the compiled detector the frame
sink runs every frame through (:meth:`CallAnalytics.detector`); the detector's
changes of state come back here (a few a second at most), become segments on the
call's timeline, feed :class:`~.metrics.ConversationMetrics`, and reach the
application as :class:`TurnEvent` s.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..audio import VoiceActivity
from .detector import VadSettings
from .metrics import ChannelLevels, ConversationMetrics, Interruption, Segment

__all__ = ["AnalyticsSettings", "CallAnalytics", "TurnEvent"]

logger = logging.getLogger("piopiy_fast.analytics")

# Finished segments kept per channel for the readers that cut audio by them.
RECENT_SEGMENTS = 512


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    """What the server's analytics do for every call.

    Args:
        vad: The native detector's settings.
        silence_threshold: Seconds without speech that count as a silence.
        min_interruption: Seconds of overlap that make a cut-in an interruption.
    """

    vad: VadSettings = field(default_factory=VadSettings)
    silence_threshold: float = 5.0
    min_interruption: float = 0.25


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """A party's speech segment ended (``segment``, on the call's timeline at ``rate``),
    with the interruptions it completed."""

    segment: Segment
    interruptions: tuple[Interruption, ...]
    rate: int

    @property
    def seconds(self) -> float:
        return self.segment.samples / self.rate

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: party, start and end in seconds, and the interruptions."""
        rate = self.rate
        return {"party": self.segment.party, "start": round(self.segment.start / rate, 3),
                "end": round(self.segment.end / rate, 3),
                "interruptions": [{"by": i.by, "of": i.of, "at": round(i.at / rate, 3),
                                   "after": round(i.after / rate, 3),
                                   "overlap": round(i.overlap / rate, 3)}
                                  for i in self.interruptions]}


class CallAnalytics:
    """One call's analytics.

    Args:
        rate: The call's target rate (its timeline's).
        settings: The server's analytics settings.
        on_error: Told the kind of an application callback that raised.
    """

    def __init__(self, rate: int, settings: AnalyticsSettings,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.rate = rate
        self.settings = settings
        self.metrics = ConversationMetrics(rate, (), silence_threshold=settings.silence_threshold,
                                           min_interruption=settings.min_interruption)
        self._vad: VoiceActivity | None = None
        self._names: tuple[str, ...] = ()
        self._retired: dict[str, ChannelLevels] = {}
        self._recent: dict[str, deque[Segment]] = {}
        self._open: dict[str, int] = {}
        self._callbacks: list[Callable[[TurnEvent], Any]] = []
        self._on_error = on_error
        self.turns = 0

    # -- what the core drives ---------------------------------------------------------------

    def detector(self, source_rate: int, names: Sequence[str], origin: int) -> VoiceActivity:
        """The detector for a new format whose channels are ``names`` (interleaved in that
        order), starting at timeline position ``origin``; the one before is retired."""
        self.retire()
        for name in names:
            self.metrics.add_party(name)
            self._recent.setdefault(name, deque(maxlen=RECENT_SEGMENTS))
        self._names = tuple(names)
        vad = self.settings.vad.detector(source_rate, len(names), self.rate, self._change,
                                         origin=origin)
        self._vad = vad
        return vad

    def retire(self) -> None:
        """The current format ends (or the call): speech in progress ends, the levels
        measured are kept."""
        vad = self._vad
        if vad is None:
            return
        vad.stop()
        for index, name in enumerate(self._names):
            self._retired[name] = self._retired.get(name, ChannelLevels()) + _levels(vad, index)
        self._vad = None

    def gap(self, samples: int) -> None:
        """The timeline moved by a gap before the next frame."""
        if self._vad is not None:
            self._vad.gap(samples)

    def _change(self, channel: int, speech: bool, at: int) -> None:
        name = self._names[channel]
        metrics = self.metrics
        if speech:
            self._open[name] = at
            metrics.started(name, at)
            return
        self._open.pop(name, None)
        done = metrics.ended(name, at)
        if done is None:
            return
        segment, found = done
        self._recent[name].append(segment)
        self.turns += 1
        if self._callbacks:
            event = TurnEvent(segment, tuple(found), self.rate)
            for callback in tuple(self._callbacks):
                try:
                    callback(event)
                except Exception:
                    if self._on_error is not None:
                        self._on_error("turn")

    # -- what the application reads ---------------------------------------------------------

    def on_turn(self, callback: Callable[[TurnEvent], Any]) -> None:
        """Call ``callback(event)`` as each party's speech segment ends."""
        self._callbacks.append(callback)

    def stop_callbacks(self) -> None:
        self._callbacks.clear()

    def speaking(self, name: str) -> int | None:
        """Where ``name``'s speech in progress started, or None."""
        return self._open.get(name)

    def recent(self, name: str) -> Sequence[Segment]:
        """``name``'s latest finished segments, oldest first."""
        return self._recent.get(name, ())

    @property
    def position(self) -> int:
        """The timeline position the detector has reached."""
        return 0 if self._vad is None else self._vad.position

    def levels(self, name: str) -> ChannelLevels:
        """What ``name``'s channel measured so far."""
        levels = self._retired.get(name, ChannelLevels())
        if self._vad is not None and name in self._names:
            levels = levels + _levels(self._vad, self._names.index(name))
        return levels

    def summary(self, until: int | None = None) -> dict[str, Any]:
        """The conversation metrics so far (see :meth:`.ConversationMetrics.summary`),
        live up to ``until`` (the detector's position when None)."""
        for name in self.metrics.parties:
            self.metrics.set_levels(name, self.levels(name))
        return self.metrics.summary(self.position if until is None else until)


def _levels(vad: VoiceActivity, channel: int) -> ChannelLevels:
    got = vad.levels(channel)
    return ChannelLevels(int(got["samples"]), float(got["energy"]),
                         int(got["loud_samples"]), float(got["loud_energy"]),
                         int(got["peak"]), int(got["clipped"]))


def analyze(caller: Any, callee: Any, rate: int, *, target_rate: int = 16000,
            settings: AnalyticsSettings | None = None, frame_ms: int = 20) -> CallAnalytics:
    """A two-party call held in memory (int16 arrays of the same length at ``rate``) run
    through the same analytics a live call gets, in ``frame_ms`` frames; returns them
    (``.summary()``, ``.metrics``) with positions at ``target_rate``."""
    import numpy as np

    a, b = np.asarray(caller, dtype="<i2"), np.asarray(callee, dtype="<i2")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("caller and callee must be 1-D arrays of the same length")
    found = CallAnalytics(target_rate, settings or AnalyticsSettings())
    vad = found.detector(rate, ("caller", "callee"), 0)
    both = np.empty(2 * a.size, dtype="<i2")
    both[0::2], both[1::2] = a, b
    data = both.tobytes()
    step = 4 * rate * frame_ms // 1000
    for i in range(0, len(data), step):
        vad.feed(data[i:i + step])
    found.retire()
    return found
