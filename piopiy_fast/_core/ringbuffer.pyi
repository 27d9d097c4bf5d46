"""Lock-free single-producer single-consumer ring of int16 samples."""
import numpy as np
import numpy.typing as npt

class RingBuffer:
    """Fixed capacity (a power of two), one producer thread, one consumer thread.

    ``write`` never blocks. When the ring is full, ``policy`` decides what is lost:
    ``"drop_oldest"`` (default) overwrites the oldest unread samples,
    ``"drop_newest"`` discards what does not fit. ``overruns`` counts every lost
    sample exactly.
    """
    def __init__(self, capacity: int, policy: str = "drop_oldest") -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def policy(self) -> str: ...
    @property
    def available(self) -> int:
        """Samples ready to read now."""
    @property
    def overruns(self) -> int:
        """Samples lost to overflow since creation."""
    @property
    def written(self) -> int:
        """Samples offered to ``write`` since creation (stored or lost)."""
    @property
    def closed(self) -> bool: ...
    def write(self, samples: npt.NDArray[np.int16]) -> int:
        """Producer side. Returns the number of samples stored."""
    def read(self, n: int | None = None) -> npt.NDArray[np.int16]:
        """Consumer side, non-blocking: up to ``n`` samples (all available when None)."""
    def read_into(self, out: npt.NDArray[np.int16]) -> int:
        """Fill a caller's contiguous int16 array without allocating; returns the count."""
    def read_wait(self, n: int, timeout: float | None = None) -> npt.NDArray[np.int16]:
        """Block (GIL released) until ``n`` samples are available, the ring is
        closed, or ``timeout`` seconds pass; return what is there, at most ``n``."""
    def close(self) -> None:
        """Mark the end of the stream; wakes a blocked reader. Reads drain what is left."""
