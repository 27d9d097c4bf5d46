"""L16 and G.711 conversions. Every function checks its input and raises
``piopiy_fast.errors.FrameError`` (a ValueError) for a byte count that does not
hold whole samples (or whole sample pairs), ``TypeError`` for a wrong type."""
import numpy as np
import numpy.typing as npt
from collections.abc import Buffer

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

def l16_to_int16(data: Buffer) -> Int16Array: ...
def l16_to_float32(data: Buffer) -> Float32Array:
    """Samples scaled by 1/32768, so -32768 maps to -1.0."""
def int16_to_l16(samples: Int16Array) -> bytes: ...
def float32_to_l16(samples: Float32Array) -> bytes:
    """Scaled by 32768, rounded half to even, saturated to int16."""
def ulaw_decode(data: Buffer) -> Int16Array: ...
def ulaw_encode(samples: Int16Array) -> bytes: ...
def alaw_decode(data: Buffer) -> Int16Array: ...
def alaw_encode(samples: Int16Array) -> bytes: ...
def deinterleave(samples: Int16Array) -> tuple[Int16Array, Int16Array]:
    """(n*2,) or (n, 2) interleaved int16 -> two (n,) arrays; odd length is a FrameError."""
def interleave(left: Int16Array, right: Int16Array) -> Int16Array:
    """Two (n,) int16 arrays of equal length -> (n*2,) interleaved."""
