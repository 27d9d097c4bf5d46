"""The Python face of the native audio core, and the only module that imports it.

``Resampler``, ``RingBuffer`` and ``CallIngest`` are the compiled classes themselves
(they check their own arguments); the codec functions convert L16 and G.711;
``design`` gives the filter a rate pair runs; ``simd_kernel()`` says which inner
loop this CPU got. ``FrameSink`` is a call's receive path below Python.
"""
from __future__ import annotations

from .._core.codec import (
    alaw_decode,
    alaw_encode,
    deinterleave,
    float32_to_l16,
    int16_to_l16,
    interleave,
    l16_deinterleave,
    l16_to_float32,
    l16_to_int16,
    ulaw_decode,
    ulaw_encode,
)
from .._core.framesink import FrameSink
from .._core.ingest import ENCODINGS, CallIngest
from .._core.resample import Resampler, resample, simd_kernel
from .._core.ringbuffer import POLICIES, RingBuffer, nogil_threshold, set_nogil_threshold
from .filters import QUALITIES, RATES, FilterSpec, check_channels, check_rate, design

__all__ = [
    "CallIngest", "ENCODINGS", "FilterSpec", "FrameSink", "POLICIES", "QUALITIES", "RATES",
    "Resampler", "RingBuffer", "alaw_decode", "alaw_encode", "check_channels", "check_rate",
    "deinterleave", "design", "float32_to_l16", "int16_to_l16", "interleave", "l16_deinterleave",
    "l16_to_float32", "l16_to_int16", "nogil_threshold", "resample", "set_nogil_threshold",
    "simd_kernel", "ulaw_decode", "ulaw_encode",
]
