"""Log lines a peer can cause, at a rate a console and a disk can take.

Anyone who can reach the port can make the server refuse them, thousands of times a
second; a line per refusal would fill a disk, and a console nobody reads would stop
the server when its pipe fills. :class:`RateLimitedLog` lets through a burst of each
kind of line, then one line per interval, and says how many like it were left out. ::

    refusals = RateLimitedLog(logger)
    refusals.warning("stream %s from %s refused: wrong token", route, remote)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimitedLog"]


@dataclass
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0


class RateLimitedLog:
    """A logger's lines, each kind (its format string) limited to a rate.

    Each kind may log ``burst`` lines at once, then one every ``per / burst`` seconds
    (a token bucket). A line that finds the bucket empty is dropped and counted; the
    next line of that kind that is logged ends with how many were left out. The kind
    is the format string, never the arguments, so a peer cannot make new kinds: the
    state is one small record per line written in the code.

    Args:
        logger: Where the lines go.
        burst: Lines of one kind logged back to back before the limit applies.
        per: Seconds over which ``burst`` lines are allowed, once the burst is spent.
        clock: Monotonic seconds; tests give their own.
    """

    def __init__(self, logger: logging.Logger, *, burst: int = 5, per: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or not per > 0:
            raise ValueError("burst must be at least 1 and per greater than 0")
        self.logger = logger
        self._burst = burst
        self._refill = burst / per  # tokens a second
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def suppressed(self) -> int:
        """Lines dropped and not yet reported by a later line of their kind."""
        return sum(bucket.suppressed for bucket in self._buckets.values())

    def log(self, level: int, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``msg % args`` at ``level`` unless its kind is over the rate.

        Args:
            level: A logging level (``logging.WARNING``).
            msg: The format string; it names the kind of line.
            *args: Its arguments.
            exc_info: Add the exception being handled (its traceback), as logging does.

        Returns:
            True if the line was logged, False if it was dropped (and counted).
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = self._clock()
        bucket = self._buckets.get(msg)
        if bucket is None:
            bucket = self._buckets[msg] = _Bucket(float(self._burst), now)
        bucket.tokens = min(float(self._burst),
                            bucket.tokens + (now - bucket.updated) * self._refill)
        bucket.updated = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return False
        bucket.tokens -= 1.0
        if bucket.suppressed:
            msg = f"{msg} (and {bucket.suppressed} more like it, not logged)"
            bucket.suppressed = 0
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def info(self, msg: str, *args: object) -> bool:
        """:meth:`log` at INFO."""
        return self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: object) -> bool:
        """:meth:`log` at WARNING."""
        return self.log(logging.WARNING, msg, *args)

    def exception(self, msg: str, *args: object) -> bool:
        """:meth:`log` at ERROR with the exception being handled."""
        return self.log(logging.ERROR, msg, *args, exc_info=True)
