"""L16 and G.711 conversions. Every function checks its input and raises
``piopiy_fast.errors.FrameError`` (a ValueError) for a byte count that does not
hold whole samples (or whole sample pairs), ``TypeError`` for a wrong type.

Byte input: any contiguous buffer (bytes, bytearray, memoryview). Sample input:
a numpy array of the stated dtype, any shape, taken in C order; one that is not
C-contiguous, aligned and native-endian is copied first. Results are new objects.
The GIL is released for conversions of at least ``NOGIL_MIN`` samples."""
import numpy as np
import numpy.typing as npt

Buffer = bytes | bytearray | memoryview

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

NOGIL_MIN: int

def l16_to_int16(data: Buffer) -> Int16Array: ...
def l16_to_float32(data: Buffer) -> Float32Array:
    """Samples scaled by 1/32768, so -32768 maps to -1.0."""
def l16_deinterleave(data: Buffer) -> tuple[Int16Array, Int16Array]:
    """Two-channel L16 bytes -> (left, right); the byte count must be a multiple of 4."""
def int16_to_l16(samples: Int16Array) -> bytes: ...
def float32_to_l16(samples: Float32Array) -> bytes:
    """Scaled by 32768, rounded half to even, saturated to int16; NaN gives 0."""
def ulaw_decode(data: Buffer) -> Int16Array: ...
def ulaw_encode(samples: Int16Array) -> bytes: ...
def alaw_decode(data: Buffer) -> Int16Array: ...
def alaw_encode(samples: Int16Array) -> bytes: ...
def deinterleave(samples: Int16Array) -> tuple[Int16Array, Int16Array]:
    """(n*2,) or (n, 2) interleaved int16 -> two (n,) arrays; odd length is a
    FrameError, another shape a ValueError."""
def interleave(left: Int16Array, right: Int16Array) -> Int16Array:
    """Two (n,) int16 arrays of equal length -> (n*2,) interleaved; unequal
    lengths are a ValueError."""
