"""Streaming polyphase resampler between 8, 12, 16, 24, 32 and 48 kHz."""
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16] | npt.NDArray[np.float32]

DTYPES: tuple[str, ...]

def simd_kernel() -> str:
    """The inner-loop variant chosen for this CPU at import: "avx2" or "generic".
    ``PIOPIY_FAST_SIMD=generic`` in the environment forces the portable one."""

class FilterBank:
    """A designed filter laid out as polyphase sub-filters; immutable, shared."""
    spec: object

class Resampler:
    """State is carried between ``process`` calls: feeding a signal in pieces of
    any sizes gives exactly the samples of feeding it whole.

    Input is (n,) for one channel or (n, channels) interleaved, int16 or float32;
    output has the same dtype and layout. int16 output saturates.
    ``delay`` is the fixed delay of the output in output samples.
    """
    def __init__(self, in_rate: int, out_rate: int, channels: int = 1,
                 dtype: str = "int16", quality: str = "speech") -> None: ...
    in_rate: int
    out_rate: int
    channels: int
    quality: str
    dtype: str
    delay: float
    def process(self, samples: Samples) -> Samples: ...
    def flush(self) -> Samples:
        """Drain the tail (the last ``delay`` samples) and reset to a fresh state."""
    def clear(self) -> None:
        """Forget all history, as if newly built."""

def resample(samples: Samples, in_rate: int, out_rate: int, quality: str = "speech") -> Samples:
    """One shot: ``process`` then ``flush`` on a new Resampler."""
