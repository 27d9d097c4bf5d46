"""Where a call's binary frames go: ingest, counters and the real-time schedule."""
from collections.abc import Callable
from typing import Any

from .ingest import CallIngest

class FrameSink:
    """The receive path of one call, below Python."""
    unseen_frames: int
    """Frames that arrived while ``waiting`` had entries, since this was last reset."""
    per_frame: int
    """Waiting readers that want ``after_frame`` on every frame."""
    def __init__(self, on_start: Callable[[], object], on_bad_frame: Callable[[int], object],
                 *, late_after: float,
                 after_frame: Callable[[], object] | None = None) -> None: ...
    def watch(self, taps: list[Any], waiting: list[Any], burst_frames: int) -> None:
        """When ``after_frame`` runs: on every frame while ``taps`` has entries; while
        ``waiting`` has entries, when ``per_frame`` is positive or ``unseen_frames``
        reaches ``burst_frames``."""
    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        """One binary frame; True when the after-frame hook woke a reader."""
    def attach(self, ingest: CallIngest, sec_per_byte: float) -> None:
        """Send frames to ``ingest`` from now on."""
    def detach(self) -> None:
        """The call is over: frames from now on are ignored."""
    def restart_schedule(self) -> None:
        """Restart the real-time schedule now unless it is already ahead."""
    @property
    def ingest(self) -> CallIngest | None: ...
    @property
    def first_frame(self) -> float | None: ...
    @property
    def last_frame(self) -> float | None: ...
    @property
    def late_frames(self) -> int: ...
