"""Audio files to play as a call: a WAV file's channels at the call's rate."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from ..errors import PiopiyValidationError
from ..stream.wire import SAMPLE_RATES


def load_wav(path: str | Path, sample_rate: int, seconds: float | None = None) -> list[np.ndarray]:
    """The channels of a 16-bit WAV file at ``sample_rate`` (resampled when needed),
    cut to ``seconds`` when given."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise PiopiyValidationError(f"{path}: only 16-bit WAV files can be streamed")
            channels = wav.getnchannels()
            rate = wav.getframerate()
            frames = wav.getnframes()
            if seconds is not None:
                frames = min(frames, int(round(seconds * rate)))
            data = np.frombuffer(wav.readframes(frames), dtype="<i2").astype(np.int16)
    except (wave.Error, EOFError):
        raise PiopiyValidationError(f"{path} is not a WAV file") from None
    samples = data.reshape(-1, channels)
    out = [np.ascontiguousarray(samples[:, c]) for c in range(channels)]
    if rate != sample_rate:
        out = [_resampled(ch, rate, sample_rate) for ch in out]
    return out


def _resampled(samples: np.ndarray, rate: int, to: int) -> np.ndarray:
    """A file's channel at the call's rate: the core's resampler between the rates it
    runs; for any other (44.1 kHz, 22.05 kHz...), scipy's polyphase resampler."""
    if rate in SAMPLE_RATES:
        from ..audio import resample
        out: np.ndarray = resample(samples, rate, to)
        return out.astype(np.int16, copy=False)
    from math import gcd

    try:
        from scipy.signal import resample_poly
    except ImportError as exc:
        raise PiopiyValidationError(
            f"a WAV file at {rate} Hz needs scipy: pip install 'piopiy-fast[wav]' "
            f"(or use a file at {', '.join(map(str, SAMPLE_RATES))} Hz)") from exc
    common = gcd(rate, to)
    y: np.ndarray = resample_poly(samples.astype(np.float64), to // common, rate // common)
    out = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
    return out
