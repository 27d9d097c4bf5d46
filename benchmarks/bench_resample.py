"""Bulk resampling: 60 s of mono float32 speech-like signal per rate pair, our two
presets against soxr (MQ, HQ) and scipy's ``resample_poly``, with the quality each one
reaches measured in the same run, because speed is only comparable at matched quality.

Quality, measured on tones through each contender: passband ripple (the worst level
error of tones across 0.05..0.45 x the lower rate) and rejection (how far below the
tone its alias or image lies) of a tone 0.52 and 0.56 x the lower rate, that is 4% and
12% past the lower Nyquist. ``speech`` stops at 0.55 x the lower rate (0.52 falls in its
transition band), ``strict`` at 0.50; soxr's MQ and HQ presets put their transition
between 0.91 and 1.0 of the lower Nyquist, ``strict``'s shape.
"""
from __future__ import annotations

import numpy as np
import pytest
import soxr
from harness import keys as k
from harness.keys import RatePair
from harness.timing import per_call
from scipy import signal

from piopiy_fast.audio import Resampler

SECONDS = {"full": 60, "short": 10}
BUDGET = {"full": 0.2, "short": 0.02}


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b, a = signal.butter(2, 0.25)
    x = signal.lfilter(b, a, rng.standard_normal(n))
    return (x / np.abs(x).max() * 0.5).astype(np.float32)


def ours(in_rate: int, out_rate: int, quality: str):
    def run(x: np.ndarray) -> np.ndarray:
        r = Resampler(in_rate, out_rate, dtype="float32", quality=quality)
        return np.concatenate([r.process(x), r.flush()])
    return run


def with_soxr(in_rate: int, out_rate: int, quality: str):
    return lambda x: soxr.resample(x, in_rate, out_rate, quality=quality)


def with_scipy(in_rate: int, out_rate: int):
    g = np.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    return lambda x: signal.resample_poly(x, up, down).astype(np.float32)


CONTENDERS = {
    k.SPEECH: lambda a, b: ours(a, b, "speech"),
    k.STRICT: lambda a, b: ours(a, b, "strict"),
    k.SOXR_MQ: lambda a, b: with_soxr(a, b, "MQ"),
    k.SOXR_HQ: lambda a, b: with_soxr(a, b, "HQ"),
    k.SCIPY: with_scipy,
}


def level_db(y: np.ndarray, rate: int, freq: float) -> float:
    w = signal.windows.blackmanharris(len(y))
    spectrum = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    k = int(round(freq * len(y) / rate))
    return float(20 * np.log10(spectrum[max(0, k - 3):k + 4].max() + 1e-30))


def measured_quality(run, in_rate: int, out_rate: int) -> dict[str, float]:
    """Each of keys.QUALITY_MEASURES, in dB."""
    lower = min(in_rate, out_rate)
    t = np.arange(in_rate * 2) / in_rate

    def level_of(tone: float, seen: float) -> float:
        y = np.asarray(run((0.5 * np.sin(2 * np.pi * tone * t)).astype(np.float32)),
                       np.float64)
        return level_db(y[len(y) // 4: len(y) // 4 + out_rate], out_rate, seen) + 6.02

    def rejection(at: float) -> float:
        # Downsampling folds a tone above out_rate / 2 back below it; upsampling leaves
        # an image of a tone below in_rate / 2 above it.
        mirror = (1.0 - at) * lower
        if out_rate < in_rate:
            return -level_of(at * lower, mirror)
        return -level_of(mirror, at * lower)

    ripple = max(abs(level_of(f, f)) for f in np.linspace(0.05, 0.45, 9) * lower)
    return {k.REJECTION_052: round(rejection(0.52), 1),
            k.REJECTION_056: round(rejection(0.56), 1),
            k.RIPPLE: round(ripple, 3)}


@pytest.mark.parametrize("contender", list(CONTENDERS))
@pytest.mark.parametrize("pair", k.RATE_PAIRS, ids=[f"{a}-{b}" for a, b in k.RATE_PAIRS])
def test_bulk_resample(benchmark, results, mode_name, pair: RatePair, contender):
    seconds = SECONDS[mode_name]
    in_rate, out_rate = pair
    benchmark.group = f"bulk resampling: {seconds} s mono float32, {pair.id}"
    run = CONTENDERS[contender](in_rate, out_rate)
    quality = measured_quality(run, in_rate, out_rate)
    benchmark.extra_info.update(quality)
    for measure, value in quality.items():
        results.put(k.quality(pair, contender, measure), value, "dB")
    x = speechlike(in_rate * seconds)
    y = run(x)
    assert abs(len(y) - len(x) * out_rate // in_rate) < out_rate // 10
    took = per_call(benchmark, lambda: run(x), BUDGET[mode_name], min_rounds=3)
    results.put(k.bulk(pair, contender), took, "s", signal_seconds=seconds)
    results.add(k.SERIES_BULK, {"pair": pair.id, "contender": contender, "seconds": took,
                                "signal_seconds": seconds, **quality})
