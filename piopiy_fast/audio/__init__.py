"""The Python face of the native audio core, and the only module that imports it.

``Resampler``, ``RingBuffer`` and ``CallIngest`` are the compiled classes themselves
(they check their own arguments); the codec functions convert L16 and G.711;
``design`` gives the filter a rate pair runs; ``simd_kernel()`` says which inner
loop this CPU got. ``FrameSink`` is a call's receive path below Python, and
``picows_frame_listener()`` the compiled picows listener that feeds it;
``CallDelivery`` is a call's delivery state (who waits, who takes callbacks, the end),
and ``ReaderCore`` how a channel reader waits on it.
"""
from __future__ import annotations

import json
import warnings
from importlib import resources
from typing import TYPE_CHECKING

from .. import _core as core_package
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
from .._core.delivery import CallDelivery
from .._core.framesink import FrameSink
from .._core.ingest import ENCODINGS, CallIngest
from .._core.readers import ReaderCore
from .._core.resample import Resampler, resample, simd_kernel
from .._core.ringbuffer import POLICIES, RingBuffer, nogil_threshold, set_nogil_threshold
from .filters import QUALITIES, RATES, FilterSpec, check_channels, check_rate, design

if TYPE_CHECKING:
    from .._core.picows_listener import FrameListener

__all__ = [
    "CallDelivery",
    "CallIngest", "ENCODINGS", "FilterSpec", "FrameSink", "POLICIES", "QUALITIES", "RATES",
    "ReaderCore", "Resampler", "RingBuffer", "alaw_decode", "alaw_encode", "check_channels",
    "check_rate", "deinterleave", "design", "float32_to_l16", "int16_to_l16", "interleave",
    "l16_deinterleave", "l16_to_float32", "l16_to_int16", "nogil_threshold",
    "picows_frame_listener", "resample", "set_nogil_threshold", "simd_kernel", "ulaw_decode",
    "ulaw_encode",
]


def picows_frame_listener() -> type[FrameListener]:
    """The compiled picows listener class; ImportError (saying why) when this build has
    none or the installed picows is not the release it was compiled against."""
    try:
        with warnings.catch_warnings():
            # Cython only warns when a picows class grew; any change of layout is a
            # mismatch here.
            warnings.filterwarnings("error", message=".*size changed, may indicate binary")
            from .._core.picows_listener import FrameListener
    except ModuleNotFoundError as exc:
        if exc.name is not None and not exc.name.endswith("picows_listener"):
            raise  # picows itself is missing
        raise ImportError(f"not in this build ({_build_record()})") from exc
    except (ValueError, RuntimeWarning) as exc:
        raise ImportError(str(exc)) from exc
    return FrameListener


def _build_record() -> str:
    try:
        text = resources.files(core_package).joinpath("build.json").read_text()
        built = json.loads(text).get("picows_listener")
    except (OSError, ValueError):
        return "no build record"
    return "picows was not importable at build time" if built is None else (
        f"record says built against picows {built}")
