"""Which calls a new connection may continue, and which it may not come back to.

The media server's older stream client reconnects at once whenever its connection
ends, whoever ended it, and sends its metadata again. So a dropped connection is not
the end of a call: for ``grace`` seconds the call waits, readers and recording open,
for a connection naming the same call id, which then continues it. And a call the
receiver ended on purpose (past ``max_call_seconds``, or closed by the application)
must stay ended: its id is barred for ``bar_seconds``, and a connection naming it is
refused. No I/O here: the server asks and sweeps.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

Call = TypeVar("Call")

# Ids remembered at most: a peer inventing ids cannot grow the server without bound.
MAX_REMEMBERED = 10_000


@dataclass(slots=True)
class _Suspended(Generic[Call]):
    call: Call
    until: float


class Continuity(Generic[Call]):
    """Suspended calls by id, and barred ids.

    Args:
        grace: seconds a dropped call waits for its connection to come back (0: none).
        bar_seconds: seconds a call ended on purpose keeps its id barred.
    """

    def __init__(self, grace: float, bar_seconds: float = 3600.0) -> None:
        self.grace = grace
        self.bar_seconds = bar_seconds
        self._suspended: OrderedDict[str, _Suspended[Call]] = OrderedDict()
        self._barred: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def suspend(self, call_id: str, call: Call, now: float) -> bool:
        """Keep ``call`` waiting for a connection naming ``call_id``; False when no
        grace is given (the call ends now)."""
        if self.grace <= 0:
            return False
        self._suspended[call_id] = _Suspended(call, now + self.grace)
        self._suspended.move_to_end(call_id)
        return True

    def resume(self, call_id: str) -> Call | None:
        """The suspended call ``call_id`` names, taken out of waiting; None if none."""
        entry = self._suspended.pop(call_id, None)
        return None if entry is None else entry.call

    def waiting(self) -> list[Call]:
        """Every call waiting for its connection."""
        return [entry.call for entry in self._suspended.values()]

    def expired(self, now: float) -> list[Call]:
        """The suspended calls whose grace is over (taken out of waiting), plus the
        oldest past ``MAX_REMEMBERED``."""
        gone = [key for key, entry in self._suspended.items() if entry.until <= now]
        while len(self._suspended) - len(gone) > MAX_REMEMBERED:
            oldest = next(key for key in self._suspended if key not in gone)
            gone.append(oldest)
        return [self._suspended.pop(key).call for key in gone]

    def bar(self, call_id: str, reason: str, now: float) -> None:
        """Refuse connections naming ``call_id`` for ``bar_seconds``, saying ``reason``."""
        self._barred[call_id] = (now + self.bar_seconds, reason)
        self._barred.move_to_end(call_id)
        while len(self._barred) > MAX_REMEMBERED:
            self._barred.popitem(last=False)

    def barred(self, call_id: str | None, now: float) -> str | None:
        """Why ``call_id`` is refused, or None."""
        if call_id is None:
            return None
        entry = self._barred.get(call_id)
        if entry is None:
            return None
        until, reason = entry
        if until <= now:
            del self._barred[call_id]
            return None
        return reason
