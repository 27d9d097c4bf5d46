"""The picows transport's listener with its frame path in C (compiled against one picows
release)."""
from typing import Any

from picows import WSFrame, WSListener, WSTransport

from .framesink import FrameSink

BUILT_WITH_PICOWS: str
BURST_GAP: float

class FrameListener(WSListener):
    """Whole binary frames go to ``sink`` in C; everything else, and the connection's
    events, to ``link``."""
    link: Any
    sink: FrameSink | None
    held: bool
    budget: int
    yield_every: int
    max_message_bytes: int
    def __init__(self, link: Any, max_message_bytes: int, yield_every: int) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def is_user_specific_pong(self, frame: WSFrame) -> bool: ...
