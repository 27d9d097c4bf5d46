"""Voice activity of a call's channels, decided as each frame is received."""
from collections.abc import Callable

Frame = bytes | bytearray | memoryview

class VoiceActivity:
    """The energy detector of one call's channels (one or two), at the source rate."""
    @property
    def source_rate(self) -> int: ...
    @property
    def target_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def base(self) -> int:
        """Timeline sample of the last move (the origin, or the end of the last gap)."""
    @property
    def gaps(self) -> int:
        """Timeline samples added by gaps."""
    def __init__(self, source_rate: int, channels: int, target_rate: int,
                 on_change: Callable[[int, bool, int], object] | None = None, *,
                 origin: int = 0, frame_ms: float = 10.0, onset_ms: float = 20.0,
                 hangover_ms: float = 300.0, margin_db: float = 10.0,
                 min_dbfs: float = -50.0, rise_db_per_s: float = 2.0,
                 floor_dbfs: float = -60.0) -> None: ...
    def feed(self, data: Frame) -> None:
        """One frame of L16 LE bytes (interleaved pairs for two channels)."""
    def stop(self) -> None:
        """The audio stops: speech in progress ends at its last loud frame."""
    def gap(self, samples: int) -> None:
        """A gap of ``samples`` timeline samples before the next frame."""
    @property
    def position(self) -> int:
        """The timeline sample of the next sample fed."""
    def speaking(self, channel: int) -> bool: ...
    def levels(self, channel: int) -> dict[str, float]:
        """What the channel's samples measured (energy, peak, clipping, floor)."""
