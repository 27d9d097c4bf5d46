"""Where a call's binary frames go: ingest, counters, the real-time schedule, and the
readers' turn."""
from collections.abc import Callable

from .delivery import CallDelivery
from .ingest import CallIngest
from .vad import VoiceActivity

Frame = bytes | bytearray | memoryview

class FrameSink:
    """The receive path of one call, below Python."""
    @property
    def delivery(self) -> CallDelivery:
        """The call's delivery: ``after_frame()`` runs after each ingested frame."""
    def __init__(self, delivery: CallDelivery, on_pending: Callable[[bytes], object],
                 on_bad_frame: Callable[[int], object], *, late_after: float,
                 on_gap: Callable[[str, float], object] | None = None,
                 max_ahead: float | None = None,
                 on_rate_limited: Callable[[int], object] | None = None) -> None: ...
    def feed(self, data: Frame) -> bool:
        """One binary frame as it arrives; True when it woke a reader."""
    def replay(self, data: Frame) -> bool:
        """One held frame through the attached ingest, advancing the schedule by its
        audio with no lateness check; True when it woke a reader."""
    def attach(self, ingest: CallIngest, sec_per_byte: float,
               vad: VoiceActivity | None = None) -> None:
        """Send frames to ``ingest`` from now on."""
    def detach(self) -> None:
        """The call is over: frames from now on are ignored; the hooks are let go."""
    def restart_schedule(self) -> None:
        """Restart the real-time schedule now unless it is already ahead."""
    def mark_gap(self, kind: str) -> None:
        """The next frame reports its distance behind the schedule as a gap of ``kind``."""
    @property
    def vad(self) -> VoiceActivity | None: ...
    @property
    def ingest(self) -> CallIngest | None: ...
    @property
    def first_frame(self) -> float | None: ...
    @property
    def last_frame(self) -> float | None: ...
    @property
    def late_frames(self) -> int: ...
    @property
    def rate_limited_frames(self) -> int: ...
