"""The native voice activity detector's settings, and running it over arrays.

The detector itself is compiled (``pf_vad.h``, run by the call's frame sink as each
frame is received); :class:`VadSettings` is how a server configures it
(``StreamServer(vad=VadSettings(...))``) and :func:`speech_segments` runs the same
detector over a channel held in memory (a recording, a test's audio).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ..audio import VoiceActivity

__all__ = ["VadSettings", "speech_frames", "speech_segments"]


@dataclass(frozen=True, slots=True)
class VadSettings:
    """The energy detector's settings (see ``pf_vad.h``).

    ``hangover_ms`` is the pause that ends speech: pauses between words and phrases
    shorter than it stay inside one segment. ``margin_db`` is how far above the
    channel's learnt noise floor a 10 ms frame must be to be loud, ``min_dbfs`` the
    level below which nothing is speech.
    """

    frame_ms: float = 10.0
    onset_ms: float = 20.0
    hangover_ms: float = 300.0
    margin_db: float = 10.0
    min_dbfs: float = -50.0
    rise_db_per_s: float = 2.0
    floor_dbfs: float = -60.0

    def detector(self, source_rate: int, channels: int, target_rate: int,
                 on_change: Callable[[int, bool, int], object] | None = None, *,
                 origin: int = 0) -> VoiceActivity:
        """A compiled detector for a stream of this format."""
        return VoiceActivity(source_rate, channels, target_rate, on_change, origin=origin,
                             **asdict(self))


def speech_segments(samples: np.ndarray, rate: int, settings: VadSettings | None = None,
                    *, frame: int | None = None) -> list[tuple[int, int]]:
    """Speech in one channel of int16 ``samples`` at ``rate``: ``(start, end)`` sample
    pairs, fed in frames of ``frame`` samples (20 ms when None) as a call would be."""
    segments: list[tuple[int, int]] = []
    open_at: list[int] = []

    def change(channel: int, speech: bool, at: int) -> None:
        if speech:
            open_at.append(at)
        elif open_at:
            segments.append((open_at.pop(), at))

    vad = (settings or VadSettings()).detector(rate, 1, rate, change)
    data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    step = 2 * (frame or rate // 50)
    for i in range(0, len(data), step):
        vad.feed(data[i:i + step])
    vad.stop()
    return segments


def speech_frames(samples: np.ndarray, rate: int, frame_ms: float = 10.0,
                  settings: VadSettings | None = None) -> np.ndarray:
    """The native detector's decision per ``frame_ms`` frame (a bool array): a frame
    is speech when most of it lies inside a speech segment."""
    frame = int(rate * frame_ms / 1000)
    n = len(samples) // frame
    mask = np.zeros(len(samples), dtype=bool)
    for start, end in speech_segments(samples, rate, settings):
        mask[start:end] = True
    return np.asarray(mask[: n * frame].reshape(n, frame).mean(axis=1) > 0.5)
