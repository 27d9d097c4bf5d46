"""The Python face of the native audio core, and the only module that imports it.

``Resampler``, ``RingBuffer`` and ``CallIngest`` are the compiled classes themselves
(they check their own arguments); ``resample()`` converts a whole signal; the codec
functions convert L16 and G.711; ``simd_kernel()`` says which inner loop this CPU
got. ``filters.filter_for()`` shows the filter a rate pair runs.

Internal, for the package's own modules (importable, not in ``__all__``):
``FrameSink`` is a call's receive path below Python, ``CallDelivery`` its
delivery state (who waits, who takes callbacks, the end), ``picows_frame_listener()`` the
compiled picows listener that feeds it, ``ReaderCore`` how a channel reader
waits for it, and ``VoiceActivity`` the voice activity detector the sink runs.

Importing this module also makes the core raise the package's errors
(PiopiyValidationError, FrameError): the core itself imports nothing above it.
"""
from __future__ import annotations

import json
import warnings
from importlib import resources
from typing import TYPE_CHECKING

from .. import _core as core_package
from .._core import errors as core_errors
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
from .._core.delivery import CallDelivery as CallDelivery  # internal
from .._core.delivery import Recipient as Recipient  # internal
from .._core.framesink import FrameSink as FrameSink  # internal: "X as X" re-exports
from .._core.ingest import ENCODINGS, CallIngest
from .._core.readers import ReaderCore as ReaderCore  # internal
from .._core.resample import QUALITIES, RATES, Resampler, resample, simd_kernel
from .._core.ringbuffer import POLICIES, RingBuffer, nogil_threshold, set_nogil_threshold
from .._core.vad import VoiceActivity as VoiceActivity  # internal
from ..errors import FrameError, PiopiyValidationError

if TYPE_CHECKING:
    from .._core.picows_listener import FrameListener

__all__ = [
    "CallIngest", "ENCODINGS", "POLICIES", "QUALITIES", "RATES", "Resampler", "RingBuffer",
    "alaw_decode", "alaw_encode", "deinterleave", "float32_to_l16", "int16_to_l16",
    "interleave", "l16_deinterleave", "l16_to_float32", "l16_to_int16", "nogil_threshold",
    "resample", "set_nogil_threshold", "simd_kernel", "ulaw_decode", "ulaw_encode",
]

core_errors.raise_as(validation=PiopiyValidationError, frame=FrameError)


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
