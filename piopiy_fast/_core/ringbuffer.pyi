"""Lock-free single-producer single-consumer ring of int16 samples.

Sample arrays: numpy int16, any shape, taken in C order (input that is not
C-contiguous, aligned and native-endian is copied first). The GIL is released
while ``read_wait`` blocks and around copies of at least ``nogil_threshold()``
samples."""
import numpy as np
import numpy.typing as npt

POLICIES: tuple[str, ...]

def nogil_threshold() -> int:
    """Copies of at least this many samples release the GIL (default 16384)."""
def set_nogil_threshold(samples: int) -> int:
    """Set that threshold (0: always release); returns the previous value."""

class RingBuffer:
    """Fixed capacity (a power of two), one producer thread, one consumer thread.

    ``write`` never blocks. When the ring is full, ``policy`` decides what is lost:
    ``"drop_oldest"`` (default) overwrites the oldest unread samples (but keeps
    only what fits of a write that comes while the reader is copying them),
    ``"drop_newest"`` discards what does not fit. ``overruns`` counts every lost
    sample exactly. ``capacity`` must be a power of two from 1 to 2**30, else
    PiopiyValidationError (also for an unknown policy).
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
    def read_index(self) -> int:
        """Index of the next sample a read returns (read plus dropped; only grows)."""
    @property
    def write_index(self) -> int:
        """Index the next stored sample gets."""
    @property
    def closed(self) -> bool: ...
    def write(self, samples: npt.NDArray[np.int16]) -> int:
        """Producer side. Returns the number of samples stored (under
        drop_oldest, the newest ``min(len, capacity)`` of them)."""
    def read(self, n: int | None = None) -> npt.NDArray[np.int16]:
        """Consumer side, non-blocking: up to ``n`` samples (all available when None)."""
    def read_into(self, out: npt.NDArray[np.int16]) -> int:
        """Fill a caller's contiguous int16 array without allocating; returns the count.
        ``out`` must be C-contiguous, aligned, native-endian and writeable (ValueError)."""
    def read_wait(self, n: int, timeout: float | None = None) -> npt.NDArray[np.int16]:
        """Block (GIL released) until ``n`` samples are available, the ring is
        closed, or ``timeout`` seconds pass; return what is there, at most ``n``.
        The wait also ends when the ring is full (``n`` above the capacity).
        ``timeout=None`` waits without limit; Ctrl-C still interrupts it."""
    def close(self) -> None:
        """Mark the end of the stream; wakes a blocked reader. Reads drain what is
        left; writes are still accepted."""
