"""What the stream itself says of its format: the byte rate and the samples' shape.

A two-party stream arrives as two channels interleaved sample by sample (``stereo``)
or as one channel holding both parties summed (``mixed``), and nothing in the stream
says which: the metadata text is free-form and the URL's ``listen_mode`` names the
parties, not the layout. Read the wrong way, a mixed stream becomes two channels at
half the length and double the pitch, and a stereo stream one channel twice too long.
So the first audio of a call is held and measured (:class:`StreamProbe`) before the
call's format is settled (:func:`settle_format`):

- **Byte rate.** Frames are paced in real time, so bytes over the time between
  frames give ``rate x 2 x channels``. Frame sizes and gaps are taken as medians, so
  the burst of audio queued while connecting and the pauses do not skew it. At a
  known rate this decides the channels; without one it leaves two candidates with the
  same byte rate (16 kHz mono and 8 kHz stereo, say).
- **Content.** One band-limited signal is predictable from its neighbours: the odd
  samples from the even ones around them. Two independent signals interleaved are
  not: the odd samples (one party) owe nothing to the even ones (the other), while
  each party is predictable from its own neighbours two samples away. The statistic
  compares the two least-squares predictions over the held audio, both ways round (so
  one silent party still decides). It cannot decide on silence, on white noise or when
  both channels carry the same signal; then the hints decide.

Everything here is arithmetic on bytes already received: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .wire import SAMPLE_RATES, STREAM_MODULE_RATES, StreamFormat

# How long audio is held at most before the format is settled, and how much.
HOLD_SECONDS = 0.5
HOLD_BYTES = 64 * 1024
# Paced frames needed before the byte rate is trusted (0.2 s of 20 ms frames), and the
# shortest gap that counts as pacing rather than a burst.
RATE_FRAMES = 10
PACED_GAP = 0.002
# A byte rate matches a format within this fraction.
RATE_TOLERANCE = 0.15
# Content: prediction gains in dB. One signal when the cross prediction gains at least
# ONE_SIGNAL_DB; two when the own-channel prediction gains at least OWN_DB while the
# cross one gains less than TWO_SIGNALS_DB. Audio quieter than QUIET_RMS is not judged.
ONE_SIGNAL_DB = 6.0
OWN_DB = 6.0
TWO_SIGNALS_DB = 3.0
QUIET_RMS = 30.0
CONTENT_SAMPLES = 2048  # held samples needed before the content is judged
# What one message holds when the stream module's buffer is left at its default, and
# the share of frames that must have one size for that to be taken as their size.
FRAME_SECONDS = 0.02
STEADY_SHARE = 0.8
PREDICTION_TAPS = 2  # neighbours on each side


@dataclass(frozen=True, slots=True)
class Measurement:
    """What the held audio showed: the byte rate (None until enough paced frames came)
    and the channel count its content implies (None when it cannot tell)."""

    byte_rate: float | None
    content_channels: int | None
    frames: int
    bytes: int


@dataclass(frozen=True, slots=True)
class FormatDecision:
    """A call's settled format and how it was settled.

    ``how`` names what decided the layout: ``setting`` (the server's ``layout``),
    ``signed URL``, ``byte rate``, ``frame size`` (the byte rate of 20 ms frames, when
    no pacing was seen), ``content`` or ``hints`` (what the URL, the metadata
    and the server's defaults said, when the stream could not tell). ``overruled``
    lists each hint the stream contradicted, as ``"<field> <hinted> -> <found>"``.
    """

    format: StreamFormat
    how: str
    overruled: tuple[str, ...] = ()
    measurement: Measurement | None = None

    def describe(self) -> str:
        """One line for a log: the format, what decided it, what it overruled."""
        fmt = self.format
        text = f"{fmt.listen_mode} {fmt.layout} at {fmt.sample_rate} Hz by {self.how}"
        if self.overruled:
            text += f" (overruled: {', '.join(self.overruled)})"
        return text


class StreamProbe:
    """Measures the first frames of a stream: sizes, arrival times, and their samples.

    Args:
        limit_bytes: the most audio it keeps for the content test.
    """

    __slots__ = ("_sizes", "_times", "_chunks", "_bytes", "_limit", "_judged")

    def __init__(self, limit_bytes: int = HOLD_BYTES) -> None:
        self._sizes: list[int] = []
        self._times: list[float] = []
        self._chunks: list[bytes] = []
        self._bytes = 0
        self._limit = limit_bytes
        self._judged: tuple[int, int | None] | None = None  # (bytes held, judgement)

    def add(self, frame: bytes, now: float) -> None:
        """One binary frame, received at ``now`` (seconds, any monotonic origin)."""
        self._times.append(now)
        self._sizes.append(len(frame))
        # The content test reads samples in pairs from each frame's start: a frame with
        # an odd number of samples (a broken one, in a two-channel stream) would shift
        # every pair after it.
        if self._bytes < self._limit and len(frame) % 4 == 0:
            self._chunks.append(frame[: self._limit - self._bytes])
            self._bytes += len(self._chunks[-1])

    @property
    def frames(self) -> int:
        """Frames seen."""
        return len(self._sizes)

    @property
    def bytes(self) -> int:
        """Bytes seen."""
        return sum(self._sizes)

    def byte_rate(self) -> float | None:
        """Bytes over time since the first paced frame (after the burst of audio queued
        while connecting), once ``RATE_FRAMES`` frames came paced; else None. An average
        over the window, not a median of gaps: a busy receiver reads frames in batches,
        which shortens some gaps and stretches others, but not their sum."""
        times = self._times
        start = next((i for i in range(len(times) - 1)
                      if times[i + 1] - times[i] >= PACED_GAP), None)
        if start is None or len(times) - 1 - start < RATE_FRAMES:
            return None
        gaps = np.diff(times[start:])
        if float(np.median(gaps)) < PACED_GAP:
            return None  # mostly back to back: a sender faster than real time, not pacing
        elapsed = times[-1] - times[start]
        return sum(self._sizes[start + 1:]) / elapsed if elapsed > 0 else None

    def frame_byte_rate(self) -> float | None:
        """The byte rate if frames are the module's 20 ms: median frame size over
        ``FRAME_SECONDS`` (a guess for a stream whose pacing was not seen)."""
        if not self._sizes:
            return None
        size, count = Counter(self._sizes).most_common(1)[0]
        if count < STEADY_SHARE * len(self._sizes):
            return None  # frames of no steady size: nothing to guess from
        return size / FRAME_SECONDS

    def content_channels(self, *, fresh: bool = True) -> int | None:
        """1 when the held samples are one band-limited signal, 2 when they are two
        independent ones interleaved, None when the content cannot tell. With
        ``fresh`` False, the last judgement stands until a quarter more audio is held:
        a call asks at every frame of its hold, and the least-squares fits over all
        the held audio are the dearest thing the hold does."""
        judged = self._judged
        if not fresh and judged is not None and self._bytes < judged[0] * 5 // 4:
            return judged[1]
        data = b"".join(self._chunks)
        samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<i2")
        found = None if samples.size < CONTENT_SAMPLES else interleaving(samples)
        self._judged = (self._bytes, found)
        return found


def interleaving(samples: np.ndarray) -> int | None:
    """How many signals ``samples`` interleave by their content: 1, 2, or None."""
    x = samples.astype(np.float64)
    if float(np.sqrt(np.mean(x * x))) < QUIET_RMS:
        return None
    pairs = samples[: samples.size // 2 * 2]
    if np.array_equal(pairs[0::2], pairs[1::2]):
        return None  # the same signal on both legs, or every sample twice: no telling
    votes = {_vote(x[0::2], x[1::2]), _vote(x[1::2], x[2::2])}
    votes.discard(None)
    return votes.pop() if len(votes) == 1 else None


def _vote(before: np.ndarray, target: np.ndarray) -> int | None:
    """Judge ``target`` (every other sample) against ``before`` (the samples between
    them, ``before[i]`` preceding ``target[i]``)."""
    k = PREDICTION_TAPS
    n = min(before.size - 1, target.size)
    if n <= 2 * k:
        return None
    index = np.arange(k, n - k)
    goal = target[index]
    if float(goal @ goal) < QUIET_RMS * QUIET_RMS * goal.size:
        return None  # this party is silent: the other direction decides
    cross = _gain(goal, [before[index + j] for j in range(-k + 1, k + 1)])
    own = _gain(goal, [target[index + j] for j in (*range(-k, 0), *range(1, k + 1))])
    if cross >= ONE_SIGNAL_DB:
        return 1
    if own >= OWN_DB and cross < TWO_SIGNALS_DB:
        return 2
    return None


def _gain(goal: np.ndarray, regressors: list[np.ndarray]) -> float:
    """The least-squares prediction gain of ``goal`` from ``regressors``, in dB."""
    matrix = np.stack(regressors, axis=1)
    coefficients, *_ = np.linalg.lstsq(matrix, goal, rcond=None)
    residual = goal - matrix @ coefficients
    return float(10 * np.log10((goal @ goal + 1e-9) / (residual @ residual + 1e-9)))


def settle_format(hinted: StreamFormat, probe: StreamProbe, *, rate_named: bool,
                  layout_named: bool = False, explicit: str | None = None,
                  final: bool = True) -> FormatDecision | None:
    """The call's format from its hints and what its stream showed.

    Args:
        hinted: the format the hints resolve to (URL, metadata, server defaults).
        probe: the held audio.
        rate_named: whether a source named the rate (the URL, the metadata, a signed
            URL), rather than the server's default filling it in.
        layout_named: whether a source named the layout (or the channel count).
        explicit: ``setting`` or ``signed URL`` when the layout was set explicitly:
            ``hinted`` is then taken as it is, at once when the rate was named, else
            with the rate the byte rate shows for its channels.
        final: settle now with what there is (the hold is full, or the call ended);
            when False, None means the stream cannot tell yet and more audio may.

    Returns:
        The decision, or None (only when not ``final``). The stream wins over hints it
        contradicts, and says so; a two-party hint stays two-party (a one-channel
        ``both`` stream is ``mixed``); a one-party hint with two channels becomes
        ``both``.
    """
    if explicit is not None and rate_named:
        return FormatDecision(hinted, explicit)
    byte_rate = probe.byte_rate()
    if byte_rate is None and not final:
        return None
    by = "byte rate"
    if byte_rate is None:
        # No pacing seen (a burst, or a call shorter than the hold): guess the byte rate
        # from the frame size, trusted only where it agrees with a named rate.
        byte_rate, by = probe.frame_byte_rate(), "frame size"
    if explicit is not None:
        fits = [rate for channels, rate in _candidates(byte_rate, hinted.sample_rate, False)
                if channels == hinted.channels and (by == "byte rate" or not rate_named)]
        if not fits:
            return FormatDecision(hinted, explicit)
        found = StreamFormat(hinted.listen_mode, fits[0], hinted.layout)
        overruled = (() if fits[0] == hinted.sample_rate
                     else (f"rate {hinted.sample_rate} -> {fits[0]}",))
        return FormatDecision(found, f"{explicit} and {by}", overruled,
                              Measurement(byte_rate, None, probe.frames, probe.bytes))
    candidates = _candidates(byte_rate, hinted.sample_rate, rate_named)
    if by == "byte rate":
        # A receiver (or a client) too busy to keep pace sees frames come slower than
        # real time, which reads as a lower byte rate. The module's frames are 20 ms
        # unless configured otherwise: where the two readings disagree and only the
        # frame size agrees with what was hinted, or the measured rate fits no format
        # at all, the frame size decides.
        sized = _candidates(probe.frame_byte_rate(), hinted.sample_rate, rate_named)
        hinted_pair = (hinted.channels, hinted.sample_rate)
        if sized and not set(sized) & set(candidates) and (
                not candidates or (hinted_pair in sized and hinted_pair not in candidates)):
            candidates, by = sized, "frame size"
    if by == "frame size" and rate_named:
        candidates = [c for c in candidates if c[1] == hinted.sample_rate]
    how = by
    content: int | None = None
    if len(candidates) != 1:
        content = probe.content_channels(fresh=final)
        if len(candidates) > 1 and content in {c for c, _ in candidates}:
            candidates = [c for c in candidates if c[0] == content]
            how = "content"
    if len(candidates) > 1:
        if not final:
            return None
        # The stream cannot tell: the hints choose among what it allows.
        hinted_pair = (hinted.channels, hinted.sample_rate)
        candidates = ([hinted_pair] if hinted_pair in candidates
                      else [c for c in candidates if c[1] == hinted.sample_rate] or candidates)
        how = "hints"
    if not candidates:
        # No byte rate measured, or none fits a known format: content, else hints.
        if content is None and not final:
            return None
        candidates = [(content or hinted.channels, hinted.sample_rate)]
        how = "content" if content else "hints"
    channels, rate = candidates[0]
    measurement = Measurement(byte_rate, content, probe.frames, probe.bytes)
    return _decision(hinted, channels, rate, how, measurement, layout_named)


def _candidates(byte_rate: float | None, hinted_rate: int,
                rate_named: bool) -> list[tuple[int, int]]:
    """(channels, rate) pairs whose byte rate matches, those at the named rate first
    and alone when a rate was named; [] when nothing was measured or nothing fits."""
    if byte_rate is None:
        return []
    fits = [(channels, rate) for channels in (1, 2) for rate in SAMPLE_RATES
            if abs(2 * rate * channels - byte_rate) <= RATE_TOLERANCE * byte_rate]
    at_named = [c for c in fits if c[1] == hinted_rate]
    if rate_named and at_named:
        return at_named
    # Without a named rate, only rates the stream module starts a stream at.
    return [c for c in fits if c[1] in STREAM_MODULE_RATES]


def _decision(hinted: StreamFormat, channels: int, rate: int, how: str,
              measurement: Measurement, layout_named: bool) -> FormatDecision:
    if channels == 2:
        found = StreamFormat("both", rate, "stereo")
    elif hinted.listen_mode == "both":
        found = StreamFormat("both", rate, "mixed")
    else:
        found = StreamFormat(hinted.listen_mode, rate)
    overruled = []
    if found.listen_mode != hinted.listen_mode:
        overruled.append(f"listen_mode {hinted.listen_mode} -> {found.listen_mode}")
    elif found.layout != hinted.layout and layout_named:
        overruled.append(f"layout {hinted.layout} -> {found.layout}")
    if found.sample_rate != hinted.sample_rate:
        overruled.append(f"rate {hinted.sample_rate} -> {found.sample_rate}")
    return FormatDecision(found, how, tuple(overruled), measurement)
