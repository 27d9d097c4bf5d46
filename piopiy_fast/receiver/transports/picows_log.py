"""picows' log lines, at a level that says whose fault they are.

picows logs a peer's protocol violation (a frame with an unknown opcode, an unmasked
frame, a control frame over 125 bytes, ...) at ERROR, the level of a fault in the
server. Anyone can send such a frame to a public port, so each would land in an
application's error log and perhaps page someone. picows takes a ``LoggerAdapter`` in
place of a logger; :class:`PicowsLog` logs the lines that name a peer's fault at INFO
(the call's own line says it ended 1002) and leaves every other line at picows' level:
an exception in the receiver's listener or a failure inside picows stays an ERROR.

Given an adapter, picows makes no per-connection child loggers: every line is logged on
the adapter's logger itself, so its level, filters and handlers all apply.
"""

from __future__ import annotations

import logging
from typing import Any

# How picows' lines about a peer's protocol violation begin (picows 2.3): the frame
# parser's, and a listener's refusal of a frame.
PEER_FAULTS = ("WS parser error", "on_ws_frame raised WSProtocolError")


class PicowsLog(logging.LoggerAdapter[logging.Logger]):
    """The logger picows is given: a peer's faults at INFO, everything else as is."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level > logging.INFO and isinstance(msg, str) and msg.startswith(PEER_FAULTS):
            level = logging.INFO
        super().log(level, msg, *args, **kwargs)
