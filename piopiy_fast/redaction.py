"""Keeping secrets and a peer's control characters out of logs and terminals.

Two things reach a log from outside: what the WebSocket libraries trace at debug level
(request lines with query strings that carry tokens and signatures, credential
headers), and what a peer sends (call ids, numbers) which may hold newlines or ANSI
escapes to forge log lines or repaint a terminal.
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted>"
MAX_PRINTABLE = 128

_QUERY = re.compile(r"\?\S*")
_CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
# C0 controls, DEL, C1 controls (ESC starts ANSI sequences), line and paragraph
# separators, and the bidirectional controls (marks, embeddings, overrides, isolates),
# which make a terminal or log viewer show a line's text in another order than it has.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                          "\u202a-\u202e\u2066-\u2069]")


class RedactSecrets(logging.Filter):
    """Drops query strings (tokens, signatures) and credential header values from the
    arguments of a WebSocket library's log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if args and isinstance(args, tuple):
            if (len(args) == 2 and isinstance(args[0], str)
                    and args[0].lower() in _CREDENTIALS):
                args = (args[0], REDACTED)
            record.args = tuple(_QUERY.sub(f"?{REDACTED}", a) if isinstance(a, str) else a
                                for a in args)
        return True


def redacting_logger(name: str) -> logging.Logger:
    """A logger for a WebSocket library whose records pass :class:`RedactSecrets`."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
    return logger


def printable(text: str, limit: int = MAX_PRINTABLE) -> str:
    """``text`` safe for one log line or terminal line.

    Every C0 and C1 control, DEL, the line and paragraph separators and the Unicode
    bidirectional controls are shown as ``\\xNN`` / ``\\uNNNN`` escapes, so a peer's
    text can neither start a new line, repaint a terminal nor reorder what is shown;
    at most ``limit`` characters are kept (then ``...``).

    Args:
        text: What a peer sent (a call id, a request path).
        limit: The most characters of ``text`` kept.

    Returns:
        One line of printable text.
    """
    if len(text) > limit:
        text = text[:limit] + "..."
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
