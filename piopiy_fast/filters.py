"""Anti-alias / anti-image filter design for the streaming resampler.

One linear-phase FIR per (rate pair, quality preset), designed with scipy at
first use and cached. The resampler runs it as a polyphase bank: upsample by
``up``, filter at ``up * in_rate``, keep every ``down``-th sample.

Both presets pass up to 0.45 x the lower rate (ripple far below 0.1 dB, since a
Kaiser window gives equal ripple in both bands) and reject at least 90 dB from
the stop edge: 0.50 x the lower rate for ``strict``, 0.55 x for ``speech``.
``speech`` centres its transition on the lower Nyquist, which makes the 2x
filters half-band: every other tap is exactly zero and one polyphase branch of
a 2x upsampler is a plain delay, so it costs about half.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd

import numpy as np

from .errors import PiopiyValidationError

RATES = (8000, 12000, 16000, 24000, 32000, 48000)
QUALITIES = ("speech", "strict")

PASS_EDGE = 0.45
STOP_EDGE = {"speech": 0.55, "strict": 0.50}
# Designed a little past the 90 dB promise so float32 taps and the Kaiser
# order estimate both keep a margin.
DESIGN_ATTENUATION_DB = 96.0


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


def check_quality(quality: object) -> str:
    """``quality`` itself when it is one of QUALITIES; otherwise a PiopiyValidationError."""
    if not isinstance(quality, str) or quality not in QUALITIES:
        raise PiopiyValidationError(f"quality must be one of {QUALITIES}, got {quality!r}")
    return quality


@lru_cache(maxsize=None)
def design(in_rate: int, out_rate: int, quality: str = "speech") -> FilterSpec:
    """The prototype filter for converting ``in_rate`` to ``out_rate``."""
    from scipy import signal

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
    numtaps, beta = signal.kaiserord(DESIGN_ATTENUATION_DB, (stop_hz - pass_hz) / (fs / 2))
    numtaps |= 1  # odd: a centre tap, integer group delay at fs
    taps = signal.firwin(numtaps, (pass_hz + stop_hz) / 2, window=("kaiser", beta), fs=fs)
    taps *= up
    # Taps that are zero in exact arithmetic (the half-band case) come out of
    # the design as rounding noise; make them exactly zero so they cost nothing.
    taps[np.abs(taps) < 1e-10 * np.abs(taps).max()] = 0.0
    taps.setflags(write=False)
    return FilterSpec(in_rate, out_rate, quality, up, down, taps)
