"""Messages of a Piopiy stream, both ways, and the stream webhooks.

Incoming text frames become :class:`StreamEvent` (the JSON dict, or the raw string
when the text is not JSON, plus the fields we recognise); outgoing control and
``streamAudio`` messages are built here as JSON strings; :func:`parse_stream_webhook`
reads the ``stream_connected`` / ``STREAM_DISCONNECTED`` HTTP callbacks.

Nothing here raises on what the platform sends: an unknown or malformed value is
kept as it came and simply not recognised. Only arguments given by the application
(an unknown control action, a bad sample rate) raise ``PiopiyValidationError``.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import PiopiyValidationError

LISTEN_MODES = ("caller", "callee", "both")
# The rates the native core resamples between; Piopiy uses 8000, 12000, 16000 (and 32000).
SAMPLE_RATES = (8000, 12000, 16000, 24000, 32000, 48000)
CONTROL_ACTIONS = ("pause", "resume", "stop", "break")
AUDIO_DATA_TYPES = ("raw", "mp3", "wav", "ogg")

# Where a call id may be found, in order of preference.
CALL_ID_KEYS = ("call_id", "callId", "cmiuuid", "uuid")
# Nested objects that may carry the recognised fields (Twilio-like "start": {...}).
_NESTED_KEYS = ("start", "data", "metadata")


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """The layout of a call's audio: listen mode, sample rate and channel count."""

    listen_mode: str
    sample_rate: int

    @property
    def channels(self) -> int:
        """2 in ``both`` mode (caller and callee interleaved), else 1."""
        return 2 if self.listen_mode == "both" else 1


@dataclass(frozen=True, slots=True)
class FormatHint:
    """What one source (start event, query string, defaults) says about the format.

    Each field is None when the source does not name it.
    """

    listen_mode: str | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def __bool__(self) -> bool:
        return not (self.listen_mode is None and self.sample_rate is None and self.channels is None)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One text frame received on a stream.

    ``data`` is the parsed JSON (usually a dict) or the raw string when the text is
    not JSON. The other fields are what we recognise in a dict, None when absent:
    ``kind`` is the lower-cased ``event``/``type`` value (``"start"``, ``"stop"``...).
    """

    data: Any
    kind: str | None = None
    call_id: str | None = None
    from_: str | None = None
    to: str | None = None
    format: FormatHint = field(default_factory=FormatHint)

    @property
    def recognised(self) -> bool:
        """True when at least one known field was found."""
        return bool(self.kind or self.call_id or self.from_ or self.to or self.format)


def parse_text_frame(text: str | bytes) -> StreamEvent:
    """Parse one text frame. Never raises: what is not JSON is kept as the raw string."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return StreamEvent(text)
    if not isinstance(data, dict):
        return StreamEvent(data)
    return _event_from_dict(data)


def _event_from_dict(data: dict[str, Any]) -> StreamEvent:
    scopes = [data] + [data[k] for k in _NESTED_KEYS if isinstance(data.get(k), dict)]

    def first(*keys: str) -> Any:
        for scope in scopes:
            for key in keys:
                value = scope.get(key)
                if value is not None and value != "":
                    return value
        return None

    kind = data.get("event", data.get("type"))
    kind = kind.lower() if isinstance(kind, str) else None
    call_id = first(*CALL_ID_KEYS)
    hint = FormatHint(
        listen_mode=_listen_mode(first("listen_mode", "listenMode")),
        sample_rate=_sample_rate(first("sample_rate", "sampleRate", "voice_quality")),
        channels=_channels(first("channels")),
    )
    return StreamEvent(
        data,
        kind=kind,
        call_id=None if call_id is None else str(call_id),
        from_=_text(first("from")),
        to=_text(first("to")),
        format=hint,
    )


def format_from_params(params: Mapping[str, Any]) -> FormatHint:
    """The format named by a connection's query parameters (or verified signed params).

    ``listen_mode`` and ``voice_quality`` as ``StreamAction.stream()`` writes them;
    ``sample_rate`` is accepted for ``voice_quality``.
    """
    return FormatHint(
        listen_mode=_listen_mode(_one(params.get("listen_mode"))),
        sample_rate=_sample_rate(_one(params.get("voice_quality", params.get("sample_rate")))),
    )


def call_id_from_params(params: Mapping[str, Any]) -> str | None:
    """A call id carried in the connection's query parameters, if any."""
    for key in CALL_ID_KEYS:
        value = _one(params.get(key))
        if value not in (None, ""):
            return str(value)
    return None


def query_params(path: str) -> dict[str, str]:
    """The query parameters of a request path, last value winning."""
    query = urllib.parse.urlsplit(path).query
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def resolve_format(*hints: FormatHint, default: StreamFormat) -> StreamFormat:
    """Combine format sources, most trusted first; per field, the first that names it wins.

    A source naming only ``channels`` implies the mode: 2 means ``both``; 1 means a mono
    mode, taken from a later source when it names one (else ``caller``).
    """
    mode = None
    mono = False
    for hint in hints:
        if hint.listen_mode is not None:
            mode = hint.listen_mode
            break
        if hint.channels == 2:
            mode = "both"
            break
        if hint.channels == 1:
            mono = True
    if mode is None:
        mode = default.listen_mode
    if mono and mode == "both":
        mode = "caller"
    rate = next((h.sample_rate for h in hints if h.sample_rate is not None), default.sample_rate)
    return StreamFormat(mode, rate)


# -- outgoing -----------------------------------------------------------------------------

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
INTERRUPT = control_message("break")


def stream_audio_message(audio: bytes | str, sample_rate: int, audio_type: str = "raw") -> str:
    """The ``streamAudio`` envelope that plays audio into the call.

    ``audio`` is the payload as bytes (base64-encoded here) or already as base64 text;
    for ``raw`` it is L16 (little-endian int16) mono at ``sample_rate``.
    """
    if audio_type not in AUDIO_DATA_TYPES:
        raise PiopiyValidationError(
            f"audio_type must be one of {', '.join(AUDIO_DATA_TYPES)}, not {audio_type!r}"
        )
    rate = _sample_rate(sample_rate)
    if rate is None:
        raise PiopiyValidationError(
            f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}, not {sample_rate!r}"
        )
    if isinstance(audio, str):
        payload = audio
    else:
        payload = base64.b64encode(audio).decode("ascii")
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


# -- webhooks -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StreamWebhook:
    """A ``stream_connected`` / ``STREAM_DISCONNECTED`` webhook, joined to calls by ``call_id``.

    ``event`` is ``"connected"``, ``"disconnected"`` or the lower-cased status as sent;
    ``code`` and ``reason`` come from ``ws_status`` when it carries a close message.
    """

    event: str
    call_id: str | None
    leg: str | None
    ws_status: str | None
    code: int | None
    reason: str | None
    raw: dict[str, Any]

    @property
    def connected(self) -> bool:
        return self.event == "connected"


def parse_stream_webhook(payload: Mapping[str, Any] | str | bytes) -> StreamWebhook:
    """Read a stream webhook body: a dict, JSON text, or a form-encoded body.

    Raises ``PiopiyValidationError`` when the body is neither JSON nor a form.
    """
    if isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload).decode("utf-8", "replace")
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = dict(urllib.parse.parse_qsl(payload, keep_blank_values=True))
            if not parsed:
                raise PiopiyValidationError("webhook body is neither JSON nor a form") from None
        payload = parsed
    if not isinstance(payload, Mapping):
        raise PiopiyValidationError("webhook body must be a JSON object")
    raw = dict(payload)
    status = str(raw.get("status", raw.get("event", ""))).lower()
    event = {"stream_connected": "connected", "stream_disconnected": "disconnected"}.get(
        status, status)
    ws = raw.get("ws_status")
    if isinstance(ws, str):
        try:
            ws = json.loads(ws)
        except ValueError:
            ws = {"status": ws}
    ws_state = code = reason = None
    if isinstance(ws, Mapping):
        ws_state = _text(ws.get("status"))
        message = ws.get("message")
        if isinstance(message, Mapping):
            code = _int(message.get("code"))
            reason = _text(message.get("reason"))
    return StreamWebhook(event=event, call_id=_text(raw.get("cmiuuid")), leg=_text(raw.get("leg")),
                         ws_status=ws_state, code=code, reason=reason, raw=raw)


# -- value coercion: platform values arrive as ints or numeric strings --------------------

def _one(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    return value


def _int(value: Any) -> int | None:
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


def _sample_rate(value: Any) -> int | None:
    rate = _int(value)
    return rate if rate in SAMPLE_RATES else None


def _channels(value: Any) -> int | None:
    channels = _int(value)
    return channels if channels in (1, 2) else None


def _listen_mode(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in LISTEN_MODES:
        return value.strip().lower()
    return None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
