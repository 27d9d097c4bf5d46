"""The picows transport's frame path in C (compiled against one picows release)."""
from collections.abc import Callable

from picows import WSFrame, WSListener, WSTransport

from .framesink import FrameSink

BUILT_WITH_PICOWS: str
BURST_GAP: float

class FrameListener(WSListener):
    """Whole binary frames go to ``_sink`` in C (or to ``_on_binary`` as bytes);
    the rest to the subclass's ``_other_frame``."""
    _sink: FrameSink | None
    _on_binary: Callable[[bytes], object] | None
    _held: bool
    _budget: int
    _yield_every: int
    _max_message_bytes: int
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
