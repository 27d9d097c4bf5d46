"""PCMO builders: ``Action`` and ``StreamAction``, with the official ``piopiy`` 1.0.x API.

A PCMO (Piopiy Call Management Object) is the list of actions a call runs. Each
method here appends one action whose JSON is exactly what the official SDK emits
(same keys, same order), and checks its arguments first: a bad one raises
:class:`~piopiy_fast.errors.PiopiyValidationError` naming it and the allowed values,
where the official SDK raised ``NameError`` or passed it through silently. Option
dicts are checked for unknown keys, so a typo such as ``max_digits`` is an error
rather than a silently ignored option.

Method names keep the official camelCase so code ports unchanged; snake_case
aliases (``play_music``, ``set_value``, ``play_get_input``, ``play_stream``,
``pcmo``) are provided. Builder methods return the builder, so calls can chain.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import warnings
from collections.abc import Mapping
from typing import Any, Self

from ..errors import PiopiyValidationError
from ..signing import SignedURL, with_query
from ..stream.wire import (
    AUDIO_TYPES,
    BREAK,
    LISTEN_MODES,
    PAUSE,
    PLAY_SAMPLE_RATES,
    RESUME,
    STOP,
    VOICE_QUALITIES,
    stream_audio_message,
)

__all__ = [
    "Action",
    "StreamAction",
    "bridge",
    "as_pcmo",
]

BRIDGE_OPTIONS = ("duration", "timeout", "loop", "ring_type")
STREAM_OPTIONS = ("listen_mode", "voice_quality", "stream_on_answer")
INPUT_OPTIONS = ("max_digit", "timeout")
PLAY_GET_INPUT_OPTIONS = ("max_digit", "max_retry", "timeout")

ERR_EMPTY_PCMO = (
    "the PCMO has no actions: pass the PCMO() of the same Action or StreamAction "
    "you added the actions (e.g. stream()) to"
)
ERR_WS_URL = "ws_url must be a ws:// or wss:// URL with a host"
ERR_AUDIO_BASE64 = "audio_base64 must be a non-empty base64 str"
ERR_SIGN = "sign must be a non-empty secret (str or bytes) or a SignedURL"
ERR_RING_TYPE = "ring_type must be 'group' (leave it out for the default ring)"

# FreeSWITCH's mod_audio_stream (which Piopiy's media server appears to run) refuses a
# start rate that is not a multiple of 8000: the stream then never starts.
WARN_12000 = (
    "voice_quality 12000 is written as asked, but FreeSWITCH's mod_audio_stream, which "
    "Piopiy's media server appears to run, refuses rates that are not a multiple of "
    "8000 ('invalid sample rate') and then streams nothing; use 8000 or 16000"
)

_HTTP_URL = re.compile(r"https?://[^\s/?#]+", re.IGNORECASE)
_WS_URL = re.compile(r"wss?://[^\s/?#]+")
_DIGITS = re.compile(r"[1-9][0-9]*")

# --- argument checks (shared with the REST client) ----------------------------------------


def is_int(value: object) -> bool:
    """True for an int that is not a bool."""
    # bool is an int subclass; True is never a phone number or a timeout.
    return isinstance(value, int) and not isinstance(value, bool)


def digits_as_int(value: object) -> int | None:
    """A positive int given as an int or as a string of digits (as read from a form, a
    CSV file or an environment variable); None for anything else."""
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() else None
    if is_int(value) and value > 0:  # type: ignore[operator]
        return value  # type: ignore[return-value]
    return None


def check_number(name: str, value: object) -> int:
    """``value`` as an int if it is a phone number (a positive int or a string of digits),
    else raise. The API takes numbers as ints, so that is what is sent."""
    number = digits_as_int(value)
    if number is None:
        raise PiopiyValidationError(
            f"{name} must be a phone number in international format without '+' "
            f"(e.g. 919876543210), as an int or a string of digits, got {value!r}"
        )
    return number


def _check_int(name: str, value: object, minimum: int) -> int:
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        raise PiopiyValidationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value  # type: ignore[return-value]


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise PiopiyValidationError(f"{name} must be a non-empty str")
    return value


def _check_http_url(name: str, value: object) -> str:
    if not isinstance(value, str) or not _HTTP_URL.match(value):
        raise PiopiyValidationError(f"{name} must be an http:// or https:// URL")
    return value


def check_options(
    options: object, allowed: tuple[str, ...], name: str = "options"
) -> Mapping[str, Any] | None:
    """Return ``options`` (None or a dict with only ``allowed`` keys), else raise."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise PiopiyValidationError(f"{name} must be a dict or None, got {type(options).__name__}")
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise PiopiyValidationError(
            f"{name} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )
    return options


def _check_choice(name: str, value: object, allowed: tuple[Any, ...]) -> Any:
    if isinstance(value, bool) or value not in allowed:
        raise PiopiyValidationError(
            f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}"
        )
    return value


def _check_voice_quality(value: object) -> int:
    """Return the rate as an int; ``value`` itself (int or numeric str) is what is emitted."""
    rate: object = value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        rate = int(value)
    if not is_int(rate) or rate not in VOICE_QUALITIES:
        raise PiopiyValidationError(
            "voice_quality must be one of 8000, 12000, 16000, 32000 "
            f"(an int or a numeric str), got {value!r}"
        )
    return rate


def _with_root_path(ws_url: str) -> str:
    """``ws_url`` with a ``/`` path when it has none (``wss://host?x=1`` becomes
    ``wss://host/?x=1``): mod_audio_stream refuses a query straight after the host."""
    authority_end = len(ws_url)
    for mark in "/?#":
        at = ws_url.find(mark, ws_url.index("://") + 3)
        if at >= 0:
            authority_end = min(authority_end, at)
    if ws_url[authority_end:authority_end + 1] == "/":
        return ws_url
    return ws_url[:authority_end] + "/" + ws_url[authority_end:]


def _signer(secret: object) -> SignedURL:
    if not isinstance(secret, (str, bytes)) or not secret:
        raise PiopiyValidationError(ERR_SIGN)
    return SignedURL(secret)


# --- action bodies (shared with the REST client) ------------------------------------------


def bridge(to_or_list: object, piopiy_no: object, options: object = None) -> dict[str, Any]:
    """Return the ``bridge`` action that connects the call to a number or a list of numbers.

    ``options`` may set ``duration`` (5400), ``timeout`` (40) and ``loop`` (1), and
    ``ring_type: "group"`` to ring every number at once.
    """
    if isinstance(to_or_list, (list, tuple)):
        if not to_or_list:
            raise PiopiyValidationError("to_or_list must not be an empty list")
        numbers = [check_number(f"to_or_list[{i}]", n) for i, n in enumerate(to_or_list)]
    else:
        numbers = [check_number("to_or_list", to_or_list)]
    action: dict[str, Any] = {
        "action": "bridge",
        "from": check_number("piopiy_no", piopiy_no),
        "connect": [{"type": "pstn", "number": n} for n in numbers],
        "duration": 5400,
        "timeout": 40,
        "loop": 1,
    }
    opts = check_options(options, BRIDGE_OPTIONS)
    if opts is not None:
        for key in ("duration", "timeout", "loop"):
            if key in opts:
                action[key] = _check_int(key, opts[key], 1)
        if "ring_type" in opts:
            if opts["ring_type"] != "group":
                raise PiopiyValidationError(ERR_RING_TYPE)
            action["ring_type"] = "group"
    return action


def as_pcmo(pcmo: object) -> list[dict[str, Any]]:
    """Return a PCMO given as a list, a JSON string or an ``Action``/``StreamAction``.

    Raises :class:`PiopiyValidationError` when it is empty (the PCMO has no actions),
    is not JSON, or holds something other than action objects.
    """
    if isinstance(pcmo, _Builder):
        actions: object = list(pcmo._actions)
    elif isinstance(pcmo, (str, bytes)):
        try:
            actions = json.loads(pcmo)
        except ValueError:
            raise PiopiyValidationError("pcmo is a str but not valid JSON") from None
    else:
        actions = pcmo
    if not isinstance(actions, (list, tuple)):
        raise PiopiyValidationError(
            f"pcmo must be a list of actions or its JSON string, got {type(actions).__name__}"
        )
    if not actions:
        raise PiopiyValidationError(ERR_EMPTY_PCMO)
    for i, item in enumerate(actions):
        if not isinstance(item, dict) or not isinstance(item.get("action"), str):
            raise PiopiyValidationError(f"pcmo[{i}] must be an action dict with an 'action' key")
    return list(actions)


# --- builders -----------------------------------------------------------------------------


class _Builder:
    """The PCMO actions both builders share."""

    __slots__ = ("_actions",)

    def __init__(self) -> None:
        self._actions: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._actions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._actions!r})"

    @property
    def action(self) -> list[dict[str, Any]]:
        """A copy of the actions so far (the official SDK's ``action`` attribute)."""
        return list(self._actions)

    def _add(self, action: dict[str, Any]) -> Self:
        self._actions.append(action)
        return self

    def playMusic(self, file_name_or_url: str) -> Self:
        """Play an audio file: ``{"action":"play","file_url":...}`` for an http(s) URL,
        else ``{"action":"play","file_name":...}`` (a file uploaded to TeleCMI)."""
        _check_text("file_name_or_url", file_name_or_url)
        key = "file_url" if _HTTP_URL.match(file_name_or_url) else "file_name"
        return self._add({"action": "play", key: file_name_or_url})

    def speak(self, text: str) -> Self:
        """Speak ``text`` to the caller: ``{"action":"speak","text":...}``."""
        return self._add({"action": "speak", "text": _check_text("text", text)})

    def setValue(self, text: str) -> Self:
        """Attach a custom value to the call: ``{"action":"param","text":...}``."""
        return self._add({"action": "param", "text": _check_text("text", text)})

    def record(self) -> Self:
        """Record the call: ``{"action":"record"}``."""
        return self._add({"action": "record"})

    def hangup(self) -> Self:
        """End the call: ``{"action":"hangup"}``."""
        return self._add({"action": "hangup"})

    def call(
        self,
        to_or_list: int | list[int],
        piopiy_no: int,
        options: Mapping[str, Any] | None = None,
    ) -> Self:
        """Connect the call to a number or a list of numbers (a ``bridge`` action).

        Parameters
        ----------
        to_or_list : int or list of int
            The number(s) to ring, international format without ``+``.
        piopiy_no : int
            Your Piopiy number, shown as the caller ID.
        options : dict, optional
            ``duration`` (seconds, default 5400), ``timeout`` (ring seconds, 40),
            ``loop`` (attempts, 1), ``ring_type`` (``"group"`` rings all at once).
        """
        return self._add(bridge(to_or_list, piopiy_no, options))

    def stream(
        self,
        ws_url: str,
        options: Mapping[str, Any] | None = None,
        *,
        format_in_url: bool = False,
        sign: str | bytes | SignedURL | None = None,
        expires_in: float | None = None,
        call_ref: str | int | None = None,
    ) -> Self:
        """Stream the call's audio to a WebSocket server (a ``stream`` action).

        Parameters
        ----------
        ws_url : str
            A ``ws://`` or ``wss://`` URL; Piopiy's media server connects to it.
        options : dict, optional
            ``listen_mode``: ``"caller"`` (default), ``"callee"`` or ``"both"``;
            ``voice_quality``: 8000 (default), 12000, 16000 or 32000 Hz, an int or a
            numeric str, emitted as given; ``stream_on_answer``: a bool, default True.
            12000 is kept because the official SDK and docs offer it, but it warns
            (``UserWarning``): FreeSWITCH's mod_audio_stream, which Piopiy's media
            server appears to run, refuses any rate that is not a multiple of 8000
            ("invalid sample rate") and the stream never starts.
            Without options only ``action`` and ``ws_url`` are emitted, as in the
            official SDK.
        format_in_url : bool
            Also put ``listen_mode`` and ``voice_quality`` in the URL's query, so the
            receiver knows the format before the first frame. Off by default, so the
            JSON matches the official SDK's.
        sign : str, bytes or SignedURL, optional
            A secret (or a :class:`SignedURL`): put the format, ``call_ref`` and an
            expiry time in the URL and sign them with HMAC-SHA256, for
            ``StreamServer(auth=SignedURL(secret))`` to check.
        expires_in : float, optional
            Seconds the signed URL stays valid, counted from now; needs ``sign``.
            Default 3600, long enough for ringing and any IVR steps before the stream.
        call_ref : str or int, optional
            Your own reference for the call, carried in the URL (signed with ``sign``).

        Setting ``format_in_url``, ``sign`` or ``call_ref`` adds the format to the URL,
        after a ``/`` when the URL has no path (``wss://host`` and ``wss://host?x=1``
        become ``wss://host/?...``): mod_audio_stream refuses a query right after the
        host as an invalid URI.
        """
        if not isinstance(ws_url, str) or not _WS_URL.match(ws_url):
            raise PiopiyValidationError(ERR_WS_URL)
        opts = check_options(options, STREAM_OPTIONS)
        action: dict[str, Any] = {"action": "stream", "ws_url": ws_url}
        listen_mode, rate = "caller", 8000
        if opts is not None:
            listen_mode = _check_choice(
                "listen_mode", opts.get("listen_mode", "caller"), LISTEN_MODES
            )
            quality = opts.get("voice_quality", "8000")
            rate = _check_voice_quality(quality)
            if rate == 12000:
                warnings.warn(WARN_12000, UserWarning, stacklevel=2)
            on_answer = opts.get("stream_on_answer", True)
            if not isinstance(on_answer, bool):
                raise PiopiyValidationError(
                    f"stream_on_answer must be a bool, got {type(on_answer).__name__}"
                )
            action.update(
                listen_mode=listen_mode, voice_quality=quality, stream_on_answer=on_answer
            )
        if not isinstance(format_in_url, bool):
            raise PiopiyValidationError("format_in_url must be a bool")
        if expires_in is not None and sign is None:
            raise PiopiyValidationError("expires_in needs sign: only a signed URL expires")
        if call_ref is not None and (
            isinstance(call_ref, bool) or not isinstance(call_ref, (str, int)) or call_ref == ""
        ):
            raise PiopiyValidationError("call_ref must be a non-empty str or an int")
        if format_in_url or sign is not None or call_ref is not None:
            params: dict[str, object] = {"listen_mode": listen_mode, "voice_quality": rate}
            if call_ref is not None:
                params["call_ref"] = call_ref
            base = _with_root_path(ws_url)
            if sign is None:
                url = with_query(base, params)
            else:
                signer = sign if isinstance(sign, SignedURL) else _signer(sign)
                url = signer.sign(base, params, 3600 if expires_in is None else expires_in)
            action["ws_url"] = url
        return self._add(action)

    def input(self, action_url: str, options: Mapping[str, Any] | None = None) -> Self:
        """Collect DTMF digits and post them to ``action_url`` (an ``input`` action).

        ``options`` may set ``max_digit`` (default 1) and ``timeout`` (seconds,
        default 5); both are emitted only when options are given.
        """
        action: dict[str, Any] = {
            "action": "input",
            "action_url": _check_http_url("action_url", action_url),
        }
        opts = check_options(options, INPUT_OPTIONS)
        if opts is not None:
            action["max_digit"] = _check_int("max_digit", opts.get("max_digit", 1), 1)
            action["timeout"] = _check_int("timeout", opts.get("timeout", 5), 0)
        return self._add(action)

    def playGetInput(
        self, action_url: str, music_file: str, options: Mapping[str, Any] | None = None
    ) -> Self:
        """Play a file and collect DTMF digits, posted to ``action_url``.

        ``music_file`` is emitted as ``file_name``, and also as ``file_url`` when it
        is an http(s) URL. ``options`` may set ``max_digit`` (1), ``max_retry`` (3)
        and ``timeout`` (5); all three are emitted only when options are given.
        """
        action: dict[str, Any] = {
            "action": "play_get_input",
            "action_url": _check_http_url("action_url", action_url),
            "file_name": _check_text("music_file", music_file),
        }
        if _HTTP_URL.match(music_file):
            action["file_url"] = music_file
        opts = check_options(options, PLAY_GET_INPUT_OPTIONS)
        if opts is not None:
            action["max_digit"] = _check_int("max_digit", opts.get("max_digit", 1), 1)
            action["max_retry"] = _check_int("max_retry", opts.get("max_retry", 3), 0)
            action["timeout"] = _check_int("timeout", opts.get("timeout", 5), 0)
        return self._add(action)

    def clear(self) -> None:
        """Remove every action."""
        self._actions = []

    play_music = playMusic
    set_value = setValue
    play_get_input = playGetInput


class Action(_Builder):
    """Builds a PCMO as a list, for an answer URL's reply or ``RestClient.voice.call``.

    >>> action = Action()
    >>> _ = action.speak("Hello").stream("wss://example.com/ws", {"listen_mode": "both"})
    >>> action.PCMO()[0]
    {'action': 'speak', 'text': 'Hello'}
    """

    __slots__ = ()

    def PCMO(self) -> list[dict[str, Any]]:
        """Return the actions as a list (a new list; the builder keeps its actions)."""
        return list(self._actions)

    pcmo = PCMO


class StreamAction(_Builder):
    """Builds a streaming PCMO as a JSON string, and the live control messages.

    ``PCMO()`` returns the JSON and clears the builder. ``pause()``, ``resume()``,
    ``stop()``, ``interrupt()`` and ``playStream()`` return JSON strings to send
    over the stream's WebSocket.
    """

    __slots__ = ()

    def PCMO(self) -> str:
        """Return the actions as a JSON string and clear them."""
        text = json.dumps(self._actions)
        self.clear()
        return text

    def pause(self) -> str:
        """Message pausing the stream: ``{"action": "pause"}``."""
        return PAUSE

    def resume(self) -> str:
        """Message resuming a paused stream: ``{"action": "resume"}``."""
        return RESUME

    def stop(self) -> str:
        """Message stopping the stream: ``{"action": "stop"}``."""
        return STOP

    def interrupt(self) -> str:
        """Message cutting off audio being played into the call: ``{"action": "break"}``."""
        return BREAK

    def playStream(self, *, audio_base64: str, audio_type: str, sample_rate: int) -> str:
        """Message playing audio into the call.

        Parameters
        ----------
        audio_base64 : str
            The audio, base64-encoded.
        audio_type : str
            ``"raw"`` (16-bit little-endian PCM), ``"mp3"``, ``"wav"`` or ``"ogg"``.
        sample_rate : int
            8000 or 16000.

        Returns
        -------
        str
            ``{"type": "streamAudio", "data": {"audioDataType": ..., "sampleRate": ...,
            "audioData": ...}}`` as JSON.
        """
        _check_choice("audio_type", audio_type, AUDIO_TYPES)
        _check_choice("sample_rate", sample_rate, PLAY_SAMPLE_RATES)
        if not isinstance(sample_rate, int):
            raise PiopiyValidationError(f"sample_rate must be an int, got {sample_rate!r}")
        if not isinstance(audio_base64, str) or not audio_base64:
            raise PiopiyValidationError(ERR_AUDIO_BASE64)
        try:
            base64.b64decode(audio_base64, validate=True)
        except (binascii.Error, ValueError):
            raise PiopiyValidationError(ERR_AUDIO_BASE64) from None
        return stream_audio_message(audio_base64, sample_rate, audio_type)

    pcmo = PCMO
    play_stream = playStream
