"""Anti-alias / anti-image filter design for the streaming resampler.

One linear-phase FIR per (rate pair, quality preset), designed with scipy at
first use and cached. The resampler runs it as a polyphase bank: upsample by
``up``, filter at ``up * in_rate``, keep every ``down``-th sample.

Both presets pass up to 0.45 x the lower rate with under 0.1 dB of ripple and
reject at least 90 dB from the stop edge: 0.50 x the lower rate for
``strict``, 0.55 x for ``speech``.

Two designs serve them:
- ``speech`` at exactly 2x up or down centres its transition on the lower
  Nyquist, so a Kaiser-windowed sinc is half-band there: every other tap is
  exactly zero and one polyphase branch is a plain delay, about half the work.
- Everything else is equiripple (Parks-McClellan, ``scipy.signal.remez``)
  weighted towards the stopband, since the passband may ripple 0.1 dB while
  the stopband must stay 90 dB down: about a third fewer taps than a Kaiser
  window, which spends the same tiny ripple in both bands. Its length starts
  from the usual estimate and grows until the measured response meets the
  spec with a margin; the result is checked, not assumed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import gcd

import numpy as np

from ..errors import PiopiyValidationError
from ..stream.wire import SAMPLE_RATES

RATES = SAMPLE_RATES
QUALITIES = ("speech", "strict")

PASS_EDGE = 0.45
STOP_EDGE = {"speech": 0.55, "strict": 0.50}
# Designed past the promises (90 dB, 0.1 dB) so that float32 taps and
# measurement resolution never eat the whole margin.
DESIGN_ATTENUATION_DB = 96.0
DESIGN_REJECTION_DB = 93.0
DESIGN_RIPPLE_DB = 0.05
# Stopband weight for remez, about the ratio of the allowed passband error
# (0.05 dB is 0.0058) to the allowed stopband error (-93 dB is 0.000022).
STOPBAND_WEIGHT = 300.0


@dataclass(frozen=True)
class FilterSpec:
    """A designed prototype filter and where it runs."""

    in_rate: int
    out_rate: int
    quality: str
    up: int
    down: int
    taps: np.ndarray  # float64, gain ``up``, linear phase, odd length

    @property
    def center(self) -> int:
        """Index of the centre tap, in samples of ``up * in_rate``."""
        return (len(self.taps) - 1) // 2

    @property
    def delay(self) -> float:
        """Group delay in output samples."""
        return self.center / self.down

    @property
    def pass_edge_hz(self) -> float:
        return PASS_EDGE * min(self.in_rate, self.out_rate)

    @property
    def stop_edge_hz(self) -> float:
        return STOP_EDGE[self.quality] * min(self.in_rate, self.out_rate)


def check_rate(name: str, rate: object) -> int:
    """``rate`` itself when it is one of RATES; otherwise a PiopiyValidationError."""
    if not isinstance(rate, int) or isinstance(rate, bool) or rate not in RATES:
        raise PiopiyValidationError(f"{name} must be one of {RATES} Hz, got {rate!r}")
    return rate


def check_channels(channels: object) -> int:
    """``channels`` itself when it is 1 or 2; otherwise a PiopiyValidationError."""
    if not isinstance(channels, int) or isinstance(channels, bool) or channels not in (1, 2):
        raise PiopiyValidationError(f"channels must be 1 or 2, got {channels!r}")
    return channels


def check_quality(quality: object) -> str:
    """``quality`` itself when it is one of QUALITIES; otherwise a PiopiyValidationError."""
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise PiopiyValidationError(f"quality must be one of {QUALITIES}, got {quality!r}")
    return quality


@cache
def design(in_rate: int, out_rate: int, quality: str = "speech") -> FilterSpec:
    """The prototype filter for converting ``in_rate`` to ``out_rate``."""
    check_rate("in_rate", in_rate)
    check_rate("out_rate", out_rate)
    check_quality(quality)
    if in_rate == out_rate:
        raise PiopiyValidationError("in_rate and out_rate are equal: nothing to design")
    g = gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    fs = up * in_rate
    lower = min(in_rate, out_rate)
    pass_hz, stop_hz = PASS_EDGE * lower, STOP_EDGE[quality] * lower
    if quality == "speech" and (up, down) in ((2, 1), (1, 2)):
        taps = _half_band(fs, pass_hz, stop_hz)
    else:
        taps = _equiripple(fs, pass_hz, stop_hz)
    taps = taps * up
    taps.setflags(write=False)
    return FilterSpec(in_rate, out_rate, quality, up, down, taps)


def measure(taps: np.ndarray, fs: float, pass_hz: float, stop_hz: float) -> tuple[float, float]:
    """(worst passband deviation in dB, least stopband rejection in dB) of a
    unity-gain filter, from its response on a fine grid."""
    from scipy import signal

    freqs, response = signal.freqz(np.asarray(taps, dtype=np.float64), worN=1 << 15, fs=fs)
    level = 20 * np.log10(np.abs(response) + 1e-300)
    return float(np.abs(level[freqs <= pass_hz]).max()), float(-level[freqs >= stop_hz].max())


def _half_band(fs: int, pass_hz: float, stop_hz: float) -> np.ndarray:
    from scipy import signal

    numtaps, beta = signal.kaiserord(DESIGN_ATTENUATION_DB, (stop_hz - pass_hz) / (fs / 2))
    numtaps |= 1  # odd: a centre tap, integer group delay at fs
    taps = signal.firwin(numtaps, (pass_hz + stop_hz) / 2, window=("kaiser", beta), fs=fs)
    # Taps that are zero in exact arithmetic come out of the design as
    # rounding noise; make them exactly zero so they cost nothing.
    taps[np.abs(taps) < 1e-10 * np.abs(taps).max()] = 0.0
    return np.asarray(taps, dtype=np.float64)


def _equiripple(fs: int, pass_hz: float, stop_hz: float) -> np.ndarray:
    from scipy import signal

    estimate, _ = signal.kaiserord(DESIGN_ATTENUATION_DB, (stop_hz - pass_hz) / (fs / 2))
    numtaps = int(estimate * 0.6) | 1
    while True:
        taps = signal.remez(numtaps, [0, pass_hz, stop_hz, fs / 2], [1, 0],
                            weight=[1, STOPBAND_WEIGHT], fs=fs, maxiter=100)
        ripple, rejection = measure(taps.astype(np.float32), fs, pass_hz, stop_hz)
        if ripple <= DESIGN_RIPPLE_DB and rejection >= DESIGN_REJECTION_DB:
            return np.asarray(taps, dtype=np.float64)
        numtaps = (numtaps + max(4, numtaps // 25)) | 1
