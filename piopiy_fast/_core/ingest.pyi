"""The fused per-frame path: decode + de-interleave + resample + ring write."""
import builtins

from .ringbuffer import RingBuffer

ENCODINGS: tuple[str, ...]

class CallIngest:
    """Per-call state for one received stream.

    ``channels`` is 1 (caller or callee mode) or 2 (both mode, interleaved
    channel 0 / channel 1). One RingBuffer per channel, at ``target_rate``.
    ``aligned`` (the default): sample k of a channel is the call's audio at time
    ``k / target_rate`` from its first sample (the resampler's delay trimmed).
    """
    def __init__(self, source_rate: int, channels: int, target_rate: int, *,
                 encoding: str = "l16", ring_capacity: int = 65536,
                 policy: str = "drop_oldest", quality: str = "speech",
                 aligned: bool = True) -> None: ...
    source_rate: int
    target_rate: int
    channels: int
    encoding: str
    quality: str
    aligned: bool
    @property
    def rings(self) -> tuple[RingBuffer, ...]: ...
    @property
    def delay(self) -> float:
        """Resampler delay in target-rate samples: 0.0 when aligned or when the
        rates are equal."""
    @property
    def frames(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def decode_errors(self) -> int: ...
    @property
    def overruns(self) -> int:
        """Samples lost to ring overflow, all channels."""
    def ingest(self, frame: builtins.bytes | bytearray | memoryview) -> int:
        """Use one received frame; returns the samples written per channel.
        A frame without whole samples (or sample pairs) raises FrameError,
        is counted in ``decode_errors`` and changes no other state."""
    def flush(self) -> int:
        """Push the rest of the resampled stream into the rings (end of call);
        aligned, each channel then holds ``round(n * target_rate / source_rate)``
        samples for the n received."""
    def close(self) -> None:
        """Close the rings so blocked readers return."""
