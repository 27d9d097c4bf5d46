"""What a stream's text frames say, and what each source says of a call's format.

Incoming text frames become :class:`StreamEvent` (the JSON dict, or the raw string
when the text is not JSON, plus the fields we recognise). What a source (a start
event, the connection's query or the verified parameters of a signed URL, the
server's defaults) says of the format is a :class:`FormatHint`;
:func:`resolve_format` combines hints field by field, and the stream itself has the
last word (:mod:`.layout`). Nothing here raises on what the platform sends, nothing
costs more than linear time in the text's size, and what it names (call ids,
numbers) comes out printable: control characters escaped, so it can go to a log line
or a terminal as it is.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..redaction import printable
from .wire import (
    StreamFormat,
    channels_of,
    layout_of,
    listen_mode_of,
    sample_rate_of,
    text_of,
)

# JSON nested deeper than this is not parsed (the parser would recurse out of the stack
# near 1,000 levels, and no platform message nests past a handful): the text is kept raw.
MAX_JSON_DEPTH = 32
# The characters that decide the nesting of JSON text: strings (and escapes inside
# them) hide brackets; brackets open and close containers; separators start values.
_JSON_STRUCTURE = re.compile(r'[\\"\[\]{},:]')
# What a parsed JSON value costs in memory beyond its text, at least: an empty dict is
# 64 bytes, an empty list 56, a short string about 50 (CPython 3.11, 64-bit).
VALUE_BYTES = 64

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
    layout: str | None = None

    def __bool__(self) -> bool:
        return not (self.listen_mode is None and self.sample_rate is None
                    and self.channels is None and self.layout is None)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One text frame received on a stream.

    ``data`` is the parsed JSON (usually a dict) or the raw string when the text is
    not JSON. The other fields are what we recognise in a dict, None when absent:
    ``kind`` is the lower-cased ``event``/``type`` value (``"start"``, ``"stop"``...).
    ``too_deep`` marks JSON nested past ``MAX_JSON_DEPTH``, kept as the raw string.
    ``memory`` bounds from above what keeping ``data`` costs, in bytes.
    """

    data: Any
    kind: str | None = None
    call_id: str | None = None
    from_: str | None = None
    to: str | None = None
    format: FormatHint = field(default_factory=FormatHint)
    too_deep: bool = False
    memory: int = 0

    @property
    def recognised(self) -> bool:
        """True when at least one known field was found."""
        return bool(self.kind or self.call_id or self.from_ or self.to or self.format)


def parse_text_frame(text: str | bytes) -> StreamEvent:
    """Parse one text frame. Never raises: what is not JSON is kept as the raw string."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    shape = json_shape(text)
    memory = shape.memory(len(text))
    if shape.depth > MAX_JSON_DEPTH:
        return StreamEvent(text, too_deep=True, memory=len(text) + VALUE_BYTES)
    try:
        data = json.loads(text)
    except ValueError:
        return StreamEvent(text, memory=len(text) + VALUE_BYTES)
    if not isinstance(data, dict):
        return StreamEvent(data, memory=memory)
    return _event_from_dict(data, memory)


@dataclass(frozen=True, slots=True)
class JsonShape:
    """What one pass over JSON text finds without parsing it: how deep containers
    nest (outside strings) and how many values it holds at most."""

    depth: int
    values: int

    def memory(self, text_size: int) -> int:
        """A bound, from above, on what holding the parsed value costs in bytes."""
        return text_size + VALUE_BYTES * self.values


def json_shape(text: str) -> JsonShape:
    """Scan ``text`` once: nesting depth outside JSON strings and a count of values
    (containers and separators); linear in the text whatever it holds."""
    depth = deepest = values = 0
    in_string = False
    skip = -1  # the index of the character after a backslash in a string
    for match in _JSON_STRUCTURE.finditer(text):
        i = match.start()
        if i == skip:
            continue
        char = text[i]
        if in_string:
            if char == "\\":
                skip = i + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            values += 1
            if depth > deepest:
                deepest = depth
        elif char in "]}":
            depth -= 1
        else:
            values += 1
    return JsonShape(deepest, values + 1)


def json_depth(text: str) -> int:
    """How deep brackets nest in ``text``, outside JSON strings (an upper bound of the
    JSON's depth, found without parsing it, in linear time)."""
    return json_shape(text).depth


def _event_from_dict(data: dict[str, Any], memory: int) -> StreamEvent:
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
        layout=layout_of(first("layout")),
    )
    return StreamEvent(
        data,
        kind=kind,
        call_id=None if call_id is None else printable(str(call_id)),
        from_=_printable_or_none(text_of(first("from"))),
        to=_printable_or_none(text_of(first("to"))),
        format=hint,
        memory=memory,
    )


def format_from_params(params: Mapping[str, Any]) -> FormatHint:
    """The format named by a connection's query parameters (or verified signed params).

    ``listen_mode`` and ``voice_quality`` as ``StreamAction.stream()`` writes them;
    ``sample_rate`` is accepted for ``voice_quality``.
    """
    return FormatHint(
        listen_mode=listen_mode_of(_last(params.get("listen_mode"))),
        sample_rate=sample_rate_of(_last(params.get("voice_quality", params.get("sample_rate")))),
        layout=layout_of(_last(params.get("layout"))),
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
    """Combine format sources, most trusted first: the first source that names the
    mode, the channels or the layout decides those three together; the first that
    names the rate decides the rate.

    Two channels mean ``both`` in ``stereo``; a ``stereo`` or ``mixed`` layout means
    ``both``; one channel is ``mixed`` when the mode is ``both`` (named by that source
    or a later one), else the one party a source names (``caller`` when none does).
    """
    fmt = None
    for index, hint in enumerate(hints):
        if hint.listen_mode is None and hint.channels is None and hint.layout is None:
            continue
        later = [h.listen_mode for h in hints[index + 1:] if h.listen_mode is not None]
        mode = hint.listen_mode or (later[0] if later else default.listen_mode)
        if hint.layout in ("stereo", "mixed") or hint.channels == 2:
            layout = hint.layout if hint.layout in ("stereo", "mixed") else "stereo"
            fmt = ("both", layout)
        elif hint.layout == "mono" or hint.channels == 1:
            if mode == "both" and hint.layout != "mono":
                fmt = ("both", "mixed")
            else:
                fmt = (mode if mode != "both" else "caller", "mono")
        else:
            fmt = (mode, "")
        break
    mode, layout = fmt if fmt is not None else (default.listen_mode, default.layout)
    rate = next((h.sample_rate for h in hints if h.sample_rate is not None), default.sample_rate)
    return StreamFormat(mode, rate, layout)


def _printable_or_none(text: str | None) -> str | None:
    return None if text is None else printable(text)


def _last(value: Any) -> Any:
    """A parameter's value; of a repeated one, the last."""
    if isinstance(value, (list, tuple)):
        return value[-1] if value else None
    return value
