"""Resampler throughput on a long signal against soxr, with the quality each
contender actually reaches measured in the same run (benchmark extra_info):
rejection of a tone just above the lower Nyquist, and passband ripple.

soxr's MQ and HQ presets put their transition band between 0.91 and 1.0 of
the lower Nyquist, which is our ``strict`` preset's shape (0.90 to 1.0).
"""
import numpy as np
import pytest
from scipy import signal

from piopiy_fast._core.resample import Resampler

soxr = pytest.importorskip("soxr")

SECONDS = 30
CASES = [(8000, 16000), (16000, 8000), (48000, 16000)]


def speechlike(n, seed=0):
    rng = np.random.default_rng(seed)
    b, a = signal.butter(2, 0.25)
    x = signal.lfilter(b, a, rng.standard_normal(n))
    return (x / np.abs(x).max() * 0.5).astype(np.float32)


def ours(in_rate, out_rate, quality):
    def run(x):
        r = Resampler(in_rate, out_rate, dtype="float32", quality=quality)
        return np.concatenate([r.process(x), r.flush()])
    return run


def theirs(in_rate, out_rate, quality):
    return lambda x: soxr.resample(x, in_rate, out_rate, quality=quality)


def level_db(y, rate, freq):
    w = signal.windows.blackmanharris(len(y))
    spectrum = np.abs(np.fft.rfft(y * w)) / (w.sum() / 2)
    k = int(round(freq * len(y) / rate))
    return 20 * np.log10(spectrum[max(0, k - 3):k + 4].max() + 1e-30)


def measured_quality(run, in_rate, out_rate):
    """What a tone just past the lower Nyquist leaves in the output (its alias
    when downsampling, its image when upsampling), in dB below the tone, for a
    tone 2% and 6% past it (inside the strict and the speech stopbands); and
    the worst level error (dB) of tones across 0.05..0.45 x the lower rate."""
    lower = min(in_rate, out_rate)
    t = np.arange(in_rate * 2) / in_rate

    def level_of(tone, seen):
        y = np.asarray(run((0.5 * np.sin(2 * np.pi * tone * t)).astype(np.float32)), np.float64)
        return level_db(y[len(y) // 4: len(y) // 4 + out_rate], out_rate, seen) + 6.02

    def rejection(past):
        if out_rate < in_rate:   # a tone past out_rate / 2 folds back below it
            return -level_of((0.5 + past) * lower, (0.5 - past) * lower)
        return -level_of((0.5 - past) * lower, (0.5 + past) * lower)   # image above

    ripple = max(abs(level_of(f, f)) for f in np.linspace(0.05, 0.45, 9) * lower)
    return round(rejection(0.02), 1), round(rejection(0.06), 1), round(ripple, 3)


CONTENDERS = {
    "piopiy_fast speech": lambda a, b: ours(a, b, "speech"),
    "piopiy_fast strict": lambda a, b: ours(a, b, "strict"),
    "soxr MQ": lambda a, b: theirs(a, b, "MQ"),
    "soxr HQ": lambda a, b: theirs(a, b, "HQ"),
}


@pytest.mark.parametrize("contender", list(CONTENDERS))
@pytest.mark.parametrize("in_rate,out_rate", CASES, ids=[f"{a}->{b}" for a, b in CASES])
def test_throughput(benchmark, in_rate, out_rate, contender):
    benchmark.group = f"resample {SECONDS} s mono float32, {in_rate} -> {out_rate}"
    run = CONTENDERS[contender](in_rate, out_rate)
    x = speechlike(in_rate * SECONDS)
    near, far, ripple = measured_quality(run, in_rate, out_rate)
    benchmark.extra_info.update(rejection_at_0_52_db=near, rejection_at_0_56_db=far,
                                passband_error_db=ripple)
    y = benchmark(run, x)
    assert abs(len(y) - len(x) * out_rate // in_rate) < out_rate // 10
