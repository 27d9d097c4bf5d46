"""Streaming polyphase resampler between 8, 12, 16, 24, 32 and 48 kHz."""
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16] | npt.NDArray[np.float32]

RATES: tuple[int, ...]
QUALITIES: tuple[str, ...]
DTYPES: tuple[str, ...]

def simd_kernel() -> str:
    """The inner-loop variant chosen for this CPU at import: "avx2", "neon" or "generic".
    ``PIOPIY_FAST_SIMD=generic`` in the environment forces the portable one."""

def filter_taps(in_rate: int, out_rate: int,
                quality: str = "speech") -> npt.NDArray[np.float64]:
    """The prototype filter this build runs (designed at build time): a new
    read-only float64 array, gain ``up``, linear phase, odd length."""

def ratio(in_rate: int, out_rate: int) -> tuple[int, int]:
    """(up, down): the conversion as a reduced fraction ``out_rate / in_rate``."""

class FilterBank:
    """A shipped filter laid out as polyphase sub-filters; immutable, shared."""
    def __init__(self, in_rate: int, out_rate: int, quality: str) -> None: ...
    up: int
    down: int
    center: int

class Resampler:
    """State is carried between ``process`` calls: feeding a signal in pieces of
    any sizes gives exactly the samples of feeding it whole.

    Input is (n,) for one channel or (n, channels) interleaved, int16 or float32;
    output has the same dtype and layout. int16 output saturates.
    By default the output is the filter's own, ``delay`` output samples late.
    ``aligned=True``: output k is the input at time ``k / out_rate``, ``delay`` is
    0.0 and the stream totals ``round(n * out_rate / in_rate)`` samples (halves
    rounded up), as ``resample()`` returns.
    """
    def __init__(self, in_rate: int, out_rate: int, channels: int = 1,
                 dtype: str = "int16", quality: str = "speech", *,
                 aligned: bool = False) -> None: ...
    in_rate: int
    out_rate: int
    channels: int
    quality: str
    dtype: str
    delay: float
    aligned: bool
    def process(self, samples: Samples) -> Samples: ...
    def flush(self) -> Samples:
        """The rest of the stream (what the filter still holds), then a fresh state."""
    def clear(self) -> None:
        """Forget all history, as if newly built."""

def resample(samples: Samples, in_rate: int, out_rate: int, quality: str = "speech") -> Samples:
    """One shot, aligned: ``round(n * out_rate / in_rate)`` samples per channel
    (halves rounded up, as soxr does); sample k is the input at time ``k / out_rate``."""
