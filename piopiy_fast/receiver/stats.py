"""A receiver's counters, defined once: what a server counts, why it refuses, and how
counts add up (over calls, and over the worker processes of one service)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..stream.call import CallStats

# Why a connection was refused, by the HTTP status it was answered with; anything else
# (a check that failed, a handshake abandoned) is an ``error``.
REFUSAL_REASONS: Mapping[int, str] = {503: "busy", 400: "malformed", 401: "unauthorized",
                                       403: "forbidden", 410: "ended"}
REFUSAL_KINDS = (*REFUSAL_REASONS.values(), "error")


def refusal_reason(status: int) -> str:
    """The reason a refusal with HTTP ``status`` is counted under."""
    return REFUSAL_REASONS.get(status, "error")


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Totals over every call a server (or a service of several) has seen, live ones
    included. Every field adds up: ``a + b`` is the service of both.

    ``timed_out_calls`` counts calls the server closed (1008) for a limit: no audio,
    silence, or length. ``refused_by_reason``: ``rejected_calls`` by reason, ``busy``
    (max_calls), ``malformed`` (400: a bad credential header), ``unauthorized`` (401: no
    credential), ``forbidden`` (403: a wrong one), ``ended`` (410: a connection naming a
    call the receiver ended on purpose), ``error`` (the check failed).
    ``resumed_calls`` counts connections that continued a dropped call.
    ``hints_overruled`` counts format hints (URL, metadata, defaults) the stream itself
    contradicted. ``layouts``: ended calls by ``"<layout> by <what decided it>"``
    (``"stereo by byte rate"``, ``"mixed by content"``...). With analytics on, the
    ended calls' conversations: ``talk_seconds`` per party, ``overlap_seconds``,
    ``interruptions``, and ``long_silences`` (over the silence threshold).

    With a message bus (``publish``): ``bus_published`` counts messages the bus
    confirmed; ``bus_dropped`` (and ``bus_dropped_bytes``) the messages dropped, oldest
    audio first, because the bytes in flight passed their bound while the bus was slow
    or gone (a consumer sees each as a gap); ``bus_unconfirmed`` the messages sent and
    never confirmed (the connection dropped, or no answer in time: maybe stored, maybe
    not); ``bus_rejected`` those the bus refused (no stream, a limit);
    ``bus_reconnects`` the connections made after the first; ``bus_in_flight_bytes``
    the bytes queued or waiting for confirmation now.

    ``rate_limited_frames`` counts frames dropped because a call sent audio faster than
    real time past its burst allowance.
    """

    active_calls: int = 0
    total_calls: int = 0
    rejected_calls: int = 0
    failed_calls: int = 0
    frames: int = 0
    bytes: int = 0
    decode_errors: int = 0
    overruns: int = 0
    late_frames: int = 0
    received_seconds: float = 0.0
    app_errors: int = 0
    timed_out_calls: int = 0
    hints_overruled: int = 0
    resumed_calls: int = 0
    bus_published: int = 0
    bus_dropped: int = 0
    bus_dropped_bytes: int = 0
    bus_unconfirmed: int = 0
    bus_rejected: int = 0
    bus_reconnects: int = 0
    bus_in_flight_bytes: int = 0
    rate_limited_frames: int = 0
    refused_by_reason: Mapping[str, int] = field(default_factory=dict)
    layouts: Mapping[str, int] = field(default_factory=dict)
    talk_seconds: Mapping[str, float] = field(default_factory=dict)
    overlap_seconds: float = 0.0
    interruptions: int = 0
    long_silences: int = 0

    def __add__(self, other: ServerStats) -> ServerStats:
        return total((self, other))

    @classmethod
    def of_call(cls, call: CallStats) -> ServerStats:
        """What one call adds to its server's totals (its audio counters)."""
        return cls(frames=call.frames, bytes=call.bytes, decode_errors=call.decode_errors,
                   overruns=call.overruns, late_frames=call.late_frames,
                   received_seconds=call.received_seconds,
                   hints_overruled=call.hints_overruled,
                   rate_limited_frames=call.rate_limited_frames)


def total(stats: Iterable[ServerStats]) -> ServerStats:
    """The sum of ``stats``, field by field (counts by key: per key), built once: a
    server's totals over its live calls, a service's over its processes' reports."""
    sums: dict[str, Any] = {}
    for s in stats:
        for name in _FIELDS:
            value = getattr(s, name)
            if isinstance(value, Mapping):
                merged = sums.setdefault(name, {})
                for key, count in value.items():
                    merged[key] = merged.get(key, 0) + count
            elif value:
                sums[name] = sums.get(name, 0) + value
    return ServerStats(**sums)


_FIELDS = tuple(f.name for f in dataclasses.fields(ServerStats))
