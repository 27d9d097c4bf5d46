"""L16 and G.711 conversions of the native core.

G.711 is checked value for value against CPython 3.11's audioop (the oracle
only; the package does not use it) over every int16 input and every code.
"""
import warnings

import numpy as np
import pytest

from piopiy_fast._core import codec
from piopiy_fast.errors import FrameError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # removed in Python 3.13
        audioop = None

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop (the oracle) not available")

ALL_I16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))
PAIRS = (0, 1, 2, 99, 100, 101)
BYTES_LIKE = (bytes, bytearray, memoryview)


def _le(a):
    """int16 array as little-endian bytes, on any host."""
    return np.asarray(a, dtype="<i2").tobytes()


# ---- G.711 against audioop ------------------------------------------------

@needs_audioop
def test_ulaw_encode_matches_audioop_for_every_int16():
    assert codec.ulaw_encode(ALL_I16) == audioop.lin2ulaw(_le(ALL_I16), 2)


@needs_audioop
def test_alaw_encode_matches_audioop_for_every_int16():
    assert codec.alaw_encode(ALL_I16) == audioop.lin2alaw(_le(ALL_I16), 2)


@needs_audioop
def test_ulaw_decode_matches_audioop_for_every_code():
    expected = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), dtype=np.int16)
    got = codec.ulaw_decode(ALL_CODES)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, expected)


@needs_audioop
def test_alaw_decode_matches_audioop_for_every_code():
    expected = np.frombuffer(audioop.alaw2lin(ALL_CODES, 2), dtype=np.int16)
    got = codec.alaw_decode(ALL_CODES)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("enc,dec", [(codec.ulaw_encode, codec.ulaw_decode),
                                     (codec.alaw_encode, codec.alaw_decode)])
def test_g711_code_round_trip(enc, dec):
    # decoding then encoding gives every code back, except mu-law's two zeros
    # (0x7F is -0 and encodes as 0xFF, +0)
    back = enc(dec(ALL_CODES))
    diff = [c for c in range(256) if back[c] != c]
    assert diff in ([], [0x7F])


@pytest.mark.parametrize("fn", [codec.ulaw_encode, codec.alaw_encode])
def test_g711_encode_any_shape_in_c_order(fn):
    a = ALL_I16[::97][:120].reshape(40, 3)
    assert fn(a) == fn(a.ravel())
    assert fn(np.empty(0, np.int16)) == b""


# ---- L16 ----------------------------------------------------------------

@pytest.mark.parametrize("kind", BYTES_LIKE)
def test_l16_to_int16_exact(kind):
    data = kind(_le(ALL_I16))
    got = codec.l16_to_int16(data)
    assert got.dtype == np.int16 and got.shape == (65536,)
    np.testing.assert_array_equal(got, ALL_I16)


def test_l16_round_trip_exact():
    b = codec.int16_to_l16(ALL_I16)
    assert isinstance(b, bytes) and b == _le(ALL_I16)
    np.testing.assert_array_equal(codec.l16_to_int16(b), ALL_I16)


def test_l16_unaligned_input():
    raw = bytearray(b"\x00" + _le(ALL_I16[:1001]))
    got = codec.l16_to_int16(memoryview(raw)[1:])
    np.testing.assert_array_equal(got, ALL_I16[:1001])


@pytest.mark.parametrize("kind", BYTES_LIKE)
def test_l16_to_float32_exact(kind):
    got = codec.l16_to_float32(kind(_le(ALL_I16)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ALL_I16.astype(np.float32) / np.float32(32768))
    assert got[0] == -1.0 and got[-1] == np.float32(32767 / 32768)


def _float_oracle(x):
    with np.errstate(over="ignore"):
        y = np.clip(np.rint(x * np.float32(32768)), -32768, 32767)
    return y.astype(np.int16)


def test_float32_to_l16_round_trip_exact():
    f = ALL_I16.astype(np.float32) / np.float32(32768)
    np.testing.assert_array_equal(codec.l16_to_int16(codec.float32_to_l16(f)), ALL_I16)


def test_float32_to_l16_rounds_half_to_even_and_saturates():
    halves = (np.arange(-70000, 70000, dtype=np.float32) + np.float32(0.5)) / np.float32(32768)
    special = np.array([1.0, -1.0, 1.5, -1.5, 2.0, -2.0, 1e30, -1e30, np.inf, -np.inf,
                        0.0, -0.0, 0.49999997 / 32768, 0.5 / 32768, 1.5 / 32768, 2.5 / 32768,
                        -0.5 / 32768, -1.5 / 32768, -2.5 / 32768, 32767.5 / 32768,
                        -32768.5 / 32768, 32766.5 / 32768, 128.0, -4194304.5, 8388609.0,
                        np.finfo(np.float32).max, np.finfo(np.float32).tiny],
                       dtype=np.float32)
    rng = np.random.default_rng(20240611)
    noise = rng.normal(0, 0.7, 100_001).astype(np.float32)
    for x in (halves, special, noise):
        got = np.frombuffer(codec.float32_to_l16(x), dtype="<i2")
        np.testing.assert_array_equal(got, _float_oracle(x))


def test_float32_to_l16_nan_gives_zero():
    x = np.array([np.nan, -np.nan, 0.25], dtype=np.float32)
    assert np.frombuffer(codec.float32_to_l16(x), dtype="<i2").tolist() == [0, 0, 8192]


def test_float32_to_l16_non_contiguous_is_copied():
    x = np.linspace(-1.2, 1.2, 2001, dtype=np.float32)
    assert codec.float32_to_l16(x[::3]) == codec.float32_to_l16(np.ascontiguousarray(x[::3]))


def test_int16_to_l16_accepts_non_contiguous_and_byteswapped():
    a = ALL_I16[::7]
    assert codec.int16_to_l16(a) == _le(a)
    be = ALL_I16[:999].astype(">i2")
    assert codec.int16_to_l16(be) == _le(ALL_I16[:999])
    unaligned = np.frombuffer(b"\x00" + _le(ALL_I16[:500]), dtype=np.int16, offset=1)
    assert not unaligned.flags.aligned
    assert codec.int16_to_l16(unaligned) == _le(ALL_I16[:500])
    assert codec.ulaw_encode(unaligned) == codec.ulaw_encode(ALL_I16[:500])


def test_large_input_releases_gil_and_is_exact():
    n = 3 * codec.NOGIL_MIN + 7
    a = np.resize(ALL_I16, n)
    assert codec.int16_to_l16(a) == _le(a)
    np.testing.assert_array_equal(codec.l16_to_int16(_le(a)), a)
    idx = np.arange(n) % 65536
    for enc, dec in ((codec.ulaw_encode, codec.ulaw_decode),
                     (codec.alaw_encode, codec.alaw_decode)):
        table = np.frombuffer(enc(ALL_I16), dtype=np.uint8)
        codes = enc(a)
        np.testing.assert_array_equal(np.frombuffer(codes, dtype=np.uint8), table[idx])
        np.testing.assert_array_equal(dec(codes), dec(table.tobytes())[idx])
    left, right = codec.deinterleave(a[:-1])
    np.testing.assert_array_equal(left, a[:-1][0::2])
    np.testing.assert_array_equal(codec.interleave(left, right), a[:-1])


# ---- channels -------------------------------------------------------------

@pytest.mark.parametrize("pairs", PAIRS)
def test_deinterleave_matches_slicing(pairs):
    a = np.resize(ALL_I16[::-3], 2 * pairs)
    for shaped in (a, a.reshape(pairs, 2)):
        left, right = codec.deinterleave(shaped)
        assert left.dtype == right.dtype == np.int16
        assert left.shape == right.shape == (pairs,)
        np.testing.assert_array_equal(left, a[0::2])
        np.testing.assert_array_equal(right, a[1::2])


@pytest.mark.parametrize("pairs", PAIRS)
def test_interleave_matches_slicing(pairs):
    a = np.resize(ALL_I16[::5], 2 * pairs)
    left, right = a[0::2].copy(), a[1::2].copy()
    out = codec.interleave(left, right)
    assert out.dtype == np.int16 and out.shape == (2 * pairs,)
    np.testing.assert_array_equal(out, a)
    # strided views are copied first, same result
    np.testing.assert_array_equal(codec.interleave(a[0::2], a[1::2]), a)


@pytest.mark.parametrize("pairs", PAIRS)
@pytest.mark.parametrize("kind", BYTES_LIKE)
def test_l16_deinterleave_matches_slicing(pairs, kind):
    a = np.resize(ALL_I16[7::11], 2 * pairs)
    left, right = codec.l16_deinterleave(kind(_le(a)))
    np.testing.assert_array_equal(left, a[0::2])
    np.testing.assert_array_equal(right, a[1::2])


def test_deinterleave_column_pairs_of_fortran_array():
    a = np.asfortranarray(np.resize(ALL_I16, (101, 2)))
    left, right = codec.deinterleave(a)
    np.testing.assert_array_equal(left, a[:, 0])
    np.testing.assert_array_equal(right, a[:, 1])


# ---- errors ---------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 5, 321])
@pytest.mark.parametrize("fn", [codec.l16_to_int16, codec.l16_to_float32])
def test_odd_byte_count_is_frame_error(fn, n):
    with pytest.raises(FrameError, match="whole 16-bit samples"):
        fn(b"\x01" * n)
    assert issubclass(FrameError, ValueError)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 642])
def test_l16_deinterleave_half_pair_is_frame_error(n):
    with pytest.raises(FrameError, match="whole sample pairs"):
        codec.l16_deinterleave(bytes(n))


@pytest.mark.parametrize("n", [1, 3, 201])
def test_deinterleave_odd_length_is_frame_error(n):
    with pytest.raises(FrameError):
        codec.deinterleave(np.zeros(n, np.int16))


@pytest.mark.parametrize("shape", [(4, 3), (2, 2, 2), (6, 1)])
def test_deinterleave_bad_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        codec.deinterleave(np.zeros(shape, np.int16))


def test_interleave_unequal_lengths():
    with pytest.raises(ValueError, match="same size"):
        codec.interleave(np.zeros(3, np.int16), np.zeros(4, np.int16))


@pytest.mark.parametrize("fn", [codec.l16_to_int16, codec.l16_to_float32, codec.ulaw_decode,
                                codec.alaw_decode, codec.l16_deinterleave])
@pytest.mark.parametrize("bad", ["abcd", 1234, None, [1, 2, 3, 4]])
def test_bytes_input_wrong_type(fn, bad):
    with pytest.raises(TypeError):
        fn(bad)


@pytest.mark.parametrize("fn", [codec.int16_to_l16, codec.ulaw_encode, codec.alaw_encode,
                                codec.deinterleave, codec.float32_to_l16])
@pytest.mark.parametrize("bad", [b"\x00\x00", [0, 0], None])
def test_array_input_wrong_type(fn, bad):
    with pytest.raises(TypeError, match="numpy"):
        fn(bad)


@pytest.mark.parametrize("fn", [codec.int16_to_l16, codec.ulaw_encode, codec.alaw_encode,
                                codec.deinterleave])
@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.float32, np.int8])
def test_int16_input_wrong_dtype(fn, dtype):
    with pytest.raises(TypeError, match="int16"):
        fn(np.zeros(4, dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.int16])
def test_float32_input_wrong_dtype(dtype):
    with pytest.raises(TypeError, match="float32"):
        codec.float32_to_l16(np.zeros(4, dtype))


def test_interleave_wrong_dtype():
    with pytest.raises(TypeError):
        codec.interleave(np.zeros(2, np.int16), np.zeros(2, np.int32))


def test_non_contiguous_bytes_buffer_is_rejected():
    mv = memoryview(bytes(range(16)))[::2]
    with pytest.raises((BufferError, TypeError)):
        codec.ulaw_decode(mv)


def test_empty_inputs():
    assert codec.l16_to_int16(b"").shape == (0,)
    assert codec.l16_to_float32(b"").shape == (0,)
    assert codec.ulaw_decode(b"").shape == (0,)
    assert codec.alaw_decode(bytearray()).shape == (0,)
    assert codec.int16_to_l16(np.empty(0, np.int16)) == b""
    assert codec.float32_to_l16(np.empty(0, np.float32)) == b""


def test_results_do_not_share_memory_with_input():
    data = bytearray(_le(ALL_I16[:64]))
    out = codec.l16_to_int16(data)
    data[:] = bytes(len(data))
    np.testing.assert_array_equal(out, ALL_I16[:64])
    assert out.flags.owndata and out.flags.c_contiguous
