"""Speech-like test audio: voiced syllables with a moving pitch, gaps and pauses.

Deterministic for a given seed, band-limited below the source Nyquist (no harmonic
is generated above 0.45 x rate, nor above 4 kHz), so that it exercises a resampler
the way a voice does: most energy in 100-1000 Hz, a syllable rhythm of about 4 Hz,
silence between words.
"""

from __future__ import annotations

import numpy as np

PEAK = 0.5  # of full scale: headroom, as a telephone line has


def speech_like(seconds: float, rate: int, seed: int | tuple[int, ...] = 0) -> np.ndarray:
    """``seconds`` of mono int16 speech-like audio at ``rate`` Hz."""
    n = int(round(seconds * rate))
    if n <= 0:
        return np.zeros(0, dtype=np.int16)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate

    # Pitch: a speaker's base, a slow intonation contour and a little vibrato.
    f0_base = rng.uniform(95.0, 230.0)
    contour = 0.12 * np.sin(2 * np.pi * rng.uniform(0.15, 0.5) * t + rng.uniform(0, 2 * np.pi))
    vibrato = 0.03 * np.sin(2 * np.pi * rng.uniform(3.0, 6.0) * t)
    f0 = f0_base * (1.0 + contour + vibrato)
    phase = 2 * np.pi * np.cumsum(f0) / rate

    # Harmonics with a 1/k roll-off and two formant bumps, never above the limit.
    limit = min(0.45 * rate, 4000.0)
    f1, f2 = rng.uniform(400, 800), rng.uniform(1100, 2200)
    # Harmonic k is the imaginary part of z**k, built by repeated multiplication:
    # one complex product per sample and harmonic instead of a sine.
    z = np.exp(1j * phase)
    zk = z.copy()
    voiced = np.zeros(n)
    for k in range(1, int(limit // f0.max()) + 1):
        fk = k * f0_base
        gain = (1.0 / k) * (1 + 2.0 * np.exp(-((fk - f1) / 250) ** 2)
                            + 1.2 * np.exp(-((fk - f2) / 350) ** 2))
        voiced += gain * zk.imag
        zk *= z

    signal = voiced * _syllable_envelope(n, rate, rng)
    signal += 0.01 * rng.standard_normal(n)  # line noise, also in the gaps
    signal *= PEAK / max(float(np.abs(signal).max()), 1e-9)
    samples: np.ndarray = np.round(signal * 32767).astype(np.int16)
    return samples


def _syllable_envelope(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    env = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.15) * rate)
    while pos < n:
        length = int(rng.uniform(0.12, 0.30) * rate)
        end = min(n, pos + length)
        window = np.hanning(length + 2)[1:-1] ** 0.5 * rng.uniform(0.5, 1.0)
        env[pos:end] = window[: end - pos]
        gap = rng.uniform(0.03, 0.10) if rng.random() > 0.15 else rng.uniform(0.3, 0.7)
        pos = end + int(gap * rate)
    return env
