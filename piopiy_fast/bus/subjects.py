"""What a call looks like on a message bus: its subjects, the headers of an audio chunk,
and the JSON of its events. No bus library is needed here.

Subjects (``piopiy.calls`` is the default prefix; ``<call>`` is the call id, escaped)::

    piopiy.calls.<call>.start            the call's metadata and format, once
    piopiy.calls.<call>.event            each text event of the call, and format news
    piopiy.calls.<call>.audio.<channel>  audio chunks: caller, callee or mix
    piopiy.calls.<call>.end              how it ended, with its counters

so that ``piopiy.calls.*.audio.caller`` is every caller channel, ``piopiy.calls.<call>.>``
one call, and ``piopiy.calls.*.start`` every call as it starts.

A call id becomes one subject token: letters, digits, ``-`` and ``_`` stay, every other
byte of its UTF-8 is written ``%XX`` (a ``.`` would split the token, ``*`` and ``>`` are
wildcards, whitespace ends a subject), so that two ids never share a token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PiopiyValidationError

DEFAULT_PREFIX = "piopiy.calls"
CHANNELS = ("caller", "callee", "mix")
START, EVENT, AUDIO, END = "start", "event", "audio", "end"

# The headers of an audio chunk. The payload is the chunk's int16 samples, little-endian.
CALL = "Piopiy-Call"  # the call id, as the receiver knows it (not escaped)
CHANNEL = "Piopiy-Channel"
RATE = "Piopiy-Rate"  # samples per second
POSITION = "Piopiy-Position"  # the call-timeline index of the chunk's first sample
SEQUENCE = "Piopiy-Seq"  # 0, 1, 2... per channel of a call: a jump is a gap
SENT = "Piopiy-Time"  # wall-clock seconds when the chunk was complete at the receiver

_PLAIN = re.compile(r"[A-Za-z0-9_-]")
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def call_token(call_id: str) -> str:
    """``call_id`` as one subject token (see the module's note)."""
    return "".join(c if _PLAIN.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode())
                   for c in call_id) or "%"


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is dot-separated plain tokens; else PiopiyValidationError."""
    if not _PREFIX.fullmatch(prefix):
        raise PiopiyValidationError(
            f"a subject prefix is tokens of letters, digits, - and _ joined by dots, "
            f"not {prefix!r}")
    return prefix


@dataclass(frozen=True, slots=True)
class Subjects:
    """The subjects of one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    @property
    def everything(self) -> str:
        """What the stream captures: every call's messages."""
        return f"{self.prefix}.>"

    @property
    def starts(self) -> str:
        """Every call's start message: what a pool of workers shares out."""
        return f"{self.prefix}.*.{START}"

    def call(self, token: str) -> str:
        """Every message of one call (by its token)."""
        return f"{self.prefix}.{token}.>"

    def start(self, token: str) -> str:
        return f"{self.prefix}.{token}.{START}"

    def event(self, token: str) -> str:
        return f"{self.prefix}.{token}.{EVENT}"

    def end(self, token: str) -> str:
        return f"{self.prefix}.{token}.{END}"

    def audio(self, token: str, channel: str) -> str:
        return f"{self.prefix}.{token}.{AUDIO}.{channel}"

    def parse(self, subject: str) -> tuple[str, str, str | None]:
        """``(token, kind, channel)`` of one of this prefix's subjects; channel is None
        but for audio. Raises PiopiyValidationError for any other subject."""
        head = self.prefix + "."
        parts = subject[len(head):].split(".") if subject.startswith(head) else []
        if len(parts) == 2 and parts[1] in (START, EVENT, END):
            return parts[0], parts[1], None
        if len(parts) == 3 and parts[1] == AUDIO and parts[2] in CHANNELS:
            return parts[0], AUDIO, parts[2]
        raise PiopiyValidationError(f"not a call subject under {self.prefix}: {subject!r}")


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """What an audio chunk's headers say."""

    call_id: str
    channel: str
    rate: int
    position: int
    sequence: int
    sent: float

    def encode(self) -> dict[str, str]:
        return {CALL: self.call_id, CHANNEL: self.channel, RATE: str(self.rate),
                POSITION: str(self.position), SEQUENCE: str(self.sequence),
                SENT: f"{self.sent:.6f}"}

    @classmethod
    def decode(cls, headers: Mapping[str, str] | None) -> ChunkHeader:
        """The header of a chunk; PiopiyValidationError naming what is missing or bad."""
        if not headers:
            raise PiopiyValidationError("an audio chunk without headers")
        try:
            header = cls(headers[CALL], headers[CHANNEL], int(headers[RATE]),
                         int(headers[POSITION]), int(headers[SEQUENCE]),
                         float(headers.get(SENT, "0")))
        except KeyError as exc:
            raise PiopiyValidationError(f"an audio chunk without {exc.args[0]}") from None
        except ValueError as exc:
            raise PiopiyValidationError(f"an audio chunk with a bad header: {exc}") from None
        if header.channel not in CHANNELS or header.rate <= 0 or header.position < 0 \
                or header.sequence < 0:
            raise PiopiyValidationError(f"an audio chunk with bad headers: {header}")
        return header


def encode_json(data: Mapping[str, Any]) -> bytes:
    """An event's payload: compact JSON, UTF-8."""
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def decode_json(payload: bytes) -> dict[str, Any]:
    """An event's payload back; PiopiyValidationError when it is not a JSON object."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PiopiyValidationError(f"an event that is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PiopiyValidationError("an event that is not a JSON object")
    return data
