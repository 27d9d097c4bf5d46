"""The Python face of the native audio core.

``AudioFormat`` describes a stream; ``Resampler``, ``RingBuffer`` and
``CallIngest`` are the compiled classes themselves (they check their own
arguments); ``design`` gives the filter a rate pair runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._core.codec import (
    alaw_decode,
    alaw_encode,
    deinterleave,
    float32_to_l16,
    int16_to_l16,
    interleave,
    l16_to_float32,
    l16_to_int16,
    ulaw_decode,
    ulaw_encode,
)
from ._core.ingest import ENCODINGS, CallIngest
from ._core.resample import Resampler, resample, simd_kernel
from ._core.ringbuffer import RingBuffer
from .errors import PiopiyValidationError
from .filters import QUALITIES, RATES, FilterSpec, check_channels, check_rate, design

__all__ = [
    "AudioFormat", "CallIngest", "ENCODINGS", "FilterSpec", "QUALITIES", "RATES", "Resampler",
    "RingBuffer", "alaw_decode", "alaw_encode", "deinterleave", "design", "float32_to_l16",
    "int16_to_l16", "interleave", "l16_to_float32", "l16_to_int16", "resample", "simd_kernel",
    "ulaw_decode", "ulaw_encode",
]


@dataclass(frozen=True)
class AudioFormat:
    """Rate, channel count and encoding of a stream of frames."""

    rate: int
    channels: int = 1
    encoding: str = "l16"

    def __post_init__(self) -> None:
        check_rate("rate", self.rate)
        check_channels(self.channels)
        if self.encoding not in ENCODINGS:
            raise PiopiyValidationError(
                f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample for every channel."""
        return (2 if self.encoding == "l16" else 1) * self.channels

    def bytes_for(self, seconds: float) -> int:
        """Bytes of ``seconds`` of audio in this format (20 ms frames: 0.02)."""
        return round(self.rate * seconds) * self.bytes_per_frame
