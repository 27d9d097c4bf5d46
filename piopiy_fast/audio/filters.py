"""The filters the resampler runs: the taps shipped in the core, and where they run.

They are designed at build time (piopiy_fast/_core/filter_design.py, with scipy) and
compiled into the core; this module only reads them back, so it needs no scipy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._core.filter_design import PASS_EDGE, STOP_EDGE
from .._core.resample import filter_taps, ratio


@dataclass(frozen=True)
class FilterSpec:
    """A shipped prototype filter and where it runs."""

    in_rate: int
    out_rate: int
    quality: str
    up: int
    down: int
    taps: npt.NDArray[np.float64]  # read-only, gain ``up``, linear phase, odd length

    @property
    def center(self) -> int:
        """Index of the centre tap, in samples of ``up * in_rate``."""
        return (len(self.taps) - 1) // 2

    @property
    def delay(self) -> float:
        """Group delay in output samples (what an aligned stream trims)."""
        return self.center / self.down

    @property
    def pass_edge_hz(self) -> float:
        """Up to here the filter passes with under 0.1 dB of ripple."""
        return PASS_EDGE * min(self.in_rate, self.out_rate)

    @property
    def stop_edge_hz(self) -> float:
        """From here the filter rejects at least 90 dB."""
        return STOP_EDGE[self.quality] * min(self.in_rate, self.out_rate)


def filter_for(in_rate: int, out_rate: int, quality: str = "speech") -> FilterSpec:
    """The filter the core runs for ``in_rate`` -> ``out_rate`` at ``quality``.

    Raises:
        PiopiyValidationError: a rate outside RATES, equal rates or an unknown preset.
    """
    taps = filter_taps(in_rate, out_rate, quality)
    up, down = ratio(in_rate, out_rate)
    return FilterSpec(in_rate, out_rate, quality, up, down, taps)
