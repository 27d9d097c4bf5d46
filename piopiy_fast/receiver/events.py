"""What a stream's text frames say, and how a call's format is discovered.

Incoming text frames become :class:`StreamEvent` (the JSON dict, or the raw string
when the text is not JSON, plus the fields we recognise). A call's format comes from
several sources, most trusted first: a start event, the connection's query (or the
verified parameters of a signed URL), the server's defaults; :func:`resolve_format`
combines them field by field. Nothing here raises on what the platform sends, and
what it names (call ids, numbers) comes out printable: control characters escaped,
so it can go to a log line or a terminal as it is.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..redaction import printable
from ..wire import StreamFormat, channels_of, listen_mode_of, sample_rate_of, text_of

# JSON nested deeper than this is not parsed (the parser would recurse out of the stack
# near 1,000 levels, and no platform message nests past a handful): the text is kept raw.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")

# Where a call id may be found, in order of preference.
CALL_ID_KEYS = ("call_id", "callId", "cmiuuid", "uuid")
# Nested objects that may carry the recognised fields (Twilio-like "start": {...}).
_NESTED_KEYS = ("start", "data", "metadata")


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
    ``too_deep`` marks JSON nested past ``MAX_JSON_DEPTH``, kept as the raw string.
    """

    data: Any
    kind: str | None = None
    call_id: str | None = None
    from_: str | None = None
    to: str | None = None
    format: FormatHint = field(default_factory=FormatHint)
    too_deep: bool = False

    @property
    def recognised(self) -> bool:
        """True when at least one known field was found."""
        return bool(self.kind or self.call_id or self.from_ or self.to or self.format)


def parse_text_frame(text: str | bytes) -> StreamEvent:
    """Parse one text frame. Never raises: what is not JSON is kept as the raw string."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    if json_depth(text) > MAX_JSON_DEPTH:
        return StreamEvent(text, too_deep=True)
    try:
        data = json.loads(text)
    except ValueError:
        return StreamEvent(text)
    if not isinstance(data, dict):
        return StreamEvent(data)
    return _event_from_dict(data)


def json_depth(text: str) -> int:
    """How deep brackets nest in ``text``, outside JSON strings (an upper bound of the
    JSON's depth, found without parsing it)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot nest deeper than it has brackets
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


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
        listen_mode=listen_mode_of(first("listen_mode", "listenMode")),
        sample_rate=sample_rate_of(first("sample_rate", "sampleRate", "voice_quality")),
        channels=channels_of(first("channels")),
    )
    return StreamEvent(
        data,
        kind=kind,
        call_id=None if call_id is None else printable(str(call_id)),
        from_=_printable_or_none(text_of(first("from"))),
        to=_printable_or_none(text_of(first("to"))),
        format=hint,
    )


def format_from_params(params: Mapping[str, Any]) -> FormatHint:
    """The format named by a connection's query parameters (or verified signed params).

    ``listen_mode`` and ``voice_quality`` as ``StreamAction.stream()`` writes them;
    ``sample_rate`` is accepted for ``voice_quality``.
    """
    return FormatHint(
        listen_mode=listen_mode_of(_last(params.get("listen_mode"))),
        sample_rate=sample_rate_of(_last(params.get("voice_quality", params.get("sample_rate")))),
    )


def call_id_from_params(params: Mapping[str, Any]) -> str | None:
    """A call id carried in the connection's query parameters, if any."""
    for key in CALL_ID_KEYS:
        value = _last(params.get(key))
        if value not in (None, ""):
            return printable(str(value))
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


def _printable_or_none(text: str | None) -> str | None:
    return None if text is None else printable(text)


def _last(value: Any) -> Any:
    """A parameter's value; of a repeated one, the last."""
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    return value
