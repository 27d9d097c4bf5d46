"""The Piopiy stream's vocabulary and the messages we send on it.

Both halves of the package speak it: the SDK writes ``stream`` actions and live
control messages, the receiver reads the stream and answers on it, the simulator
plays the platform's side. Incoming text frames are read in
:mod:`piopiy_fast.stream.events`; the stream webhooks in
:mod:`piopiy_fast.sdk.webhooks`.

Only arguments given by the application raise ``PiopiyValidationError``; the value
readers at the bottom never raise on what the platform sends, they answer None.
"""

from __future__ import annotations

import base64
import json
import operator
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from ..errors import PiopiyValidationError

LISTEN_MODES = ("caller", "callee", "both")
# What a stream action's voice_quality may ask for (some platform docs list 32000 too).
VOICE_QUALITIES = (8000, 12000, 16000, 32000)
# Every rate the native core resamples between: what a stream may arrive at and what
# a receiver may deliver.
SAMPLE_RATES = (8000, 12000, 16000, 24000, 32000, 48000)
# The rates the media server's stream module starts a stream at: multiples of 8000
# (it refuses any other rate, 12000 included, and the stream never starts).
STREAM_MODULE_RATES = (8000, 16000, 24000, 32000, 48000)
# The rates the platform plays a ``streamAudio`` reply at.
PLAY_SAMPLE_RATES = (8000, 16000)
AUDIO_TYPES = ("raw", "mp3", "wav", "ogg")
CONTROL_ACTIONS = ("pause", "resume", "stop", "break")
# The parties of a call; in a ``stereo`` two-party stream they arrive interleaved in
# this order.
CHANNELS = ("caller", "callee")
# The one channel of a ``mixed`` two-party stream: both parties summed.
MIX = "mix"
# Every channel a call may deliver.
CHANNEL_NAMES = (*CHANNELS, MIX)
# How a stream's samples are laid out: one party alone (``mono``), both parties summed
# into one channel (``mixed``), or both interleaved sample by sample (``stereo``).
LAYOUTS = ("mono", "mixed", "stereo")


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What a call's audio is: listen mode, sample rate and layout.

    ``layout`` defaults to what the listen mode implies without other knowledge:
    ``stereo`` for ``both``, ``mono`` for one party. A ``both`` stream may also be
    ``mixed`` (one channel holding both parties); a one-party mode is always ``mono``.
    """

    listen_mode: str
    sample_rate: int
    layout: str = ""

    def __post_init__(self) -> None:
        if self.listen_mode != "both":
            object.__setattr__(self, "layout", "mono")
        elif self.layout not in ("mixed", "stereo"):
            object.__setattr__(self, "layout", "stereo")

    @property
    def channels(self) -> int:
        """Interleaved channels in the stream: 2 for ``stereo``, else 1."""
        return 2 if self.layout == "stereo" else 1

    @property
    def channel_names(self) -> tuple[str, ...]:
        """What each interleaved channel is, in order: the parties of a stereo stream,
        ``mix`` for a mixed one, the one party of a mono one."""
        if self.layout == "stereo":
            return CHANNELS
        if self.layout == "mixed":
            return (MIX,)
        return (self.listen_mode,)

    @property
    def bytes_per_second(self) -> int:
        """The stream's L16 byte rate."""
        return self.sample_rate * 2 * self.channels


# -- outgoing -------------------------------------------------------------------------------

def control_message(action: str) -> str:
    """``{"action": "pause"}`` etc.; ``action`` is one of pause, resume, stop, break."""
    if action not in CONTROL_ACTIONS:
        raise PiopiyValidationError(
            f"control action must be one of {', '.join(CONTROL_ACTIONS)}, not {action!r}"
        )
    return json.dumps({"action": action})


PAUSE = control_message("pause")
RESUME = control_message("resume")
STOP = control_message("stop")
BREAK = control_message("break")


def stream_audio_message(audio: bytes | str, sample_rate: int, audio_type: str = "raw") -> str:
    """The ``streamAudio`` envelope that plays audio into the call.

    ``audio`` is the payload as bytes (base64-encoded here) or already as base64 text;
    for ``raw`` it is L16 (little-endian int16) mono at ``sample_rate``.
    """
    if audio_type not in AUDIO_TYPES:
        raise PiopiyValidationError(
            f"audio_type must be one of {', '.join(AUDIO_TYPES)}, not {audio_type!r}"
        )
    rate = sample_rate_of(sample_rate)
    if rate is None:
        raise PiopiyValidationError(
            f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}, not {sample_rate!r}"
        )
    payload = audio if isinstance(audio, str) else base64.b64encode(audio).decode("ascii")
    return json.dumps(
        {"type": "streamAudio",
         "data": {"audioDataType": audio_type, "sampleRate": rate, "audioData": payload}}
    )


def start_event(call_id: str, fmt: StreamFormat, **extra: Any) -> str:
    """A JSON start event naming the call and its format (what the simulator sends first)."""
    body = {"event": "start", "call_id": call_id, "listen_mode": fmt.listen_mode,
            "sample_rate": fmt.sample_rate, "channels": fmt.channels}
    body.update(extra)
    return json.dumps(body)


# -- reading values: the platform sends ints or numeric strings -------------------------------

def int_of(value: Any) -> int | None:
    """An int given as an int, a whole float or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def sample_rate_of(value: Any) -> int | None:
    """One of SAMPLE_RATES, or None."""
    rate = int_of(value)
    return rate if rate in SAMPLE_RATES else None


def channels_of(value: Any) -> int | None:
    """1 or 2, or None."""
    channels = int_of(value)
    return channels if channels in (1, 2) else None


def as_sample_rate(name: str, value: Any, allowed: tuple[int, ...] = SAMPLE_RATES) -> int:
    """A rate the application gave (``name`` says which) as an int: an int, a numpy
    integer or a float with no fraction (16000.0), one of ``allowed``. The native
    resampler takes its rates the same way, with the same message.

    Raises:
        PiopiyValidationError: anything else (a bool, a string, 16000.5, 11025).
    """
    whole = None
    if isinstance(value, Integral) and not isinstance(value, bool):  # numpy's too
        whole = operator.index(value)
    elif isinstance(value, Real) and float(value).is_integer():  # numpy's floats too
        whole = int(float(value))
    if whole is None or whole not in allowed:
        raise PiopiyValidationError(
            f"{name} must be one of {', '.join(map(str, allowed))} Hz, not {value!r}")
    return whole


def listen_mode_of(value: Any) -> str | None:
    """One of LISTEN_MODES (any case, spaces around), or None."""
    if isinstance(value, str) and value.strip().lower() in LISTEN_MODES:
        return value.strip().lower()
    return None


def layout_of(value: Any) -> str | None:
    """One of LAYOUTS (any case, spaces around), or None."""
    if isinstance(value, str) and value.strip().lower() in LAYOUTS:
        return value.strip().lower()
    return None


def text_of(value: Any) -> str | None:
    """``value`` as a str; None for None or an empty string."""
    if value is None or value == "":
        return None
    return str(value)
