"""The fused per-frame path equals the separate steps composed."""
import warnings

import numpy as np
import pytest

from piopiy_fast._core.ingest import CallIngest
from piopiy_fast._core.resample import Resampler, resample
from piopiy_fast.errors import FrameError, PiopiyValidationError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def signal_pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    tone = 6000 * np.sin(2 * np.pi * t * 0.031)[:, None]
    return np.clip(tone + rng.normal(0, 2500, (n, 2)), -32768, 32767).astype(np.int16)


def encode(pcm, encoding):
    """Interleaved int16 -> wire bytes, with the stdlib as the reference encoder."""
    raw = pcm.astype("<i2").tobytes()
    if encoding == "l16":
        return raw
    return audioop.lin2ulaw(raw, 2) if encoding == "pcmu" else audioop.lin2alaw(raw, 2)


def decode_reference(wire, encoding):
    if encoding == "l16":
        return np.frombuffer(wire, "<i2").astype(np.int16)
    lin = audioop.ulaw2lin(wire, 2) if encoding == "pcmu" else audioop.alaw2lin(wire, 2)
    return np.frombuffer(lin, "<i2").astype(np.int16)


def frames_of(wire, sizes, unit):
    out, at, i = [], 0, 0
    while at < len(wire):
        step = sizes[i % len(sizes)] * unit
        out.append(wire[at:at + step])
        at += step
        i += 1
    return out


def expected_channels(pcm, source_rate, target_rate, channels):
    """numpy de-interleave + one Resampler per channel, whole signal, flushed."""
    result = []
    for c in range(channels):
        x = np.ascontiguousarray(pcm[:, c]) if pcm.ndim == 2 else pcm
        r = Resampler(source_rate, target_rate, aligned=True)
        result.append(np.concatenate([r.process(x), r.flush()]))
    return result


@pytest.mark.parametrize("encoding", ["l16", "pcmu", "pcma"])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("source_rate,target_rate",
                         [(8000, 16000), (16000, 16000), (12000, 16000), (16000, 8000),
                          (8000, 48000)])
def test_ingest_equals_decode_deinterleave_resample(encoding, channels, source_rate, target_rate):
    pcm = signal_pairs(3001, seed=source_rate + channels)[:, :channels]
    if channels == 1:
        pcm = np.ascontiguousarray(pcm[:, 0])
    wire = encode(pcm, encoding)
    decoded = decode_reference(wire, encoding).reshape(pcm.shape)
    unit = (2 if encoding == "l16" else 1) * channels
    call = CallIngest(source_rate, channels, target_rate, encoding=encoding, ring_capacity=1 << 15)
    total = 0
    for frame in frames_of(wire, [160, 1, 0, 7, 509, 2000, 320], unit):
        total += call.ingest(frame)
    total_tail = call.flush()
    want = expected_channels(decoded, source_rate, target_rate, channels)
    assert total + total_tail == len(want[0])
    for ring, expected in zip(call.rings, want, strict=True):
        assert np.array_equal(ring.read(), expected)
    assert call.decode_errors == 0 and call.overruns == 0
    assert call.bytes == len(wire)


@pytest.mark.parametrize("source_rate,target_rate",
                         [(8000, 16000), (16000, 12000), (32000, 12000), (48000, 8000)])
@pytest.mark.parametrize("n", [0, 1, 2, 99, 100, 101, 4001])
def test_a_calls_channels_are_on_the_calls_timeline(source_rate, target_rate, n):
    """Aligned by default: each channel is the one-shot resampling of what came in,
    exactly round(n * target / source) samples, however the frames were cut."""
    pcm = signal_pairs(n, seed=n)
    call = CallIngest(source_rate, 2, target_rate, ring_capacity=1 << 14)
    assert call.aligned and call.delay == 0.0
    wire = encode(pcm, "l16")
    total = sum(call.ingest(frame) for frame in frames_of(wire, [17, 509, 1, 0, 2], 4))
    total += call.flush()
    expected = int(np.floor(n * target_rate / source_rate + 0.5))
    assert total == expected
    for c, ring in enumerate(call.rings):
        assert np.array_equal(ring.read(), resample(np.ascontiguousarray(pcm[:, c]),
                                                    source_rate, target_rate))


def test_a_30_second_call_gives_each_channel_exactly_30_seconds():
    call = CallIngest(8000, 2, 16000, encoding="pcmu", ring_capacity=1 << 20)
    frame = bytes(320)  # 20 ms of both-mode PCMU
    total = sum(call.ingest(frame) for _ in range(1500)) + call.flush()
    assert total == 480_000
    assert [ring.available for ring in call.rings] == [480_000, 480_000]


def test_unaligned_ingest_keeps_the_filters_delay():
    pcm = signal_pairs(1000)[:, 0].copy()
    call = CallIngest(8000, 1, 16000, aligned=False)
    call.ingest(encode(pcm, "l16"))
    call.flush()
    r = Resampler(8000, 16000)
    assert not call.aligned and call.delay == r.delay == 62.0
    assert np.array_equal(call.rings[0].read(), np.concatenate([r.process(pcm), r.flush()]))


def test_both_mode_channel_zero_is_caller_one_is_callee():
    pcm = np.zeros((320, 2), np.int16)
    pcm[:, 0] = 1000
    pcm[:, 1] = -2000
    call = CallIngest(16000, 2, 16000)
    call.ingest(pcm.tobytes())
    caller, callee = call.rings
    assert np.all(caller.read() == 1000) and np.all(callee.read() == -2000)


@pytest.mark.parametrize("channels,encoding,size,what", [
    (1, "l16", 321, "whole samples"),
    (2, "l16", 642, "whole sample pairs"),
    (2, "pcmu", 161, "whole sample pairs"),
])
def test_a_broken_frame_is_refused_counted_and_changes_nothing(channels, encoding, size, what):
    pcm = signal_pairs(800)[:, :channels].copy()
    wire = encode(pcm, encoding)
    clean = CallIngest(8000, channels, 16000, encoding=encoding)
    hit = CallIngest(8000, channels, 16000, encoding=encoding)
    half = len(wire) // 2 // ((2 if encoding == "l16" else 1) * channels)
    half *= (2 if encoding == "l16" else 1) * channels
    for call in (clean, hit):
        call.ingest(wire[:half])
    with pytest.raises(FrameError, match=what):
        hit.ingest(b"\x01" * size)
    for call in (clean, hit):
        call.ingest(wire[half:])
        call.flush()
    assert hit.decode_errors == 1 and clean.decode_errors == 0
    assert hit.frames == clean.frames == 2
    for a, b in zip(clean.rings, hit.rings, strict=True):
        assert np.array_equal(a.read(), b.read())


def test_bytes_bytearray_and_memoryview_frames_agree():
    wire = encode(signal_pairs(480), "l16")
    outputs = []
    for kind in (bytes, bytearray, memoryview):
        call = CallIngest(8000, 2, 16000)
        call.ingest(kind(wire))
        outputs.append([ring.read() for ring in call.rings])
    for other in outputs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(outputs[0], other, strict=True))


def test_ring_overflow_is_counted_exactly():
    call = CallIngest(16000, 2, 16000, ring_capacity=256)
    call.ingest(np.zeros((1000, 2), np.int16).tobytes())
    assert call.overruns == 2 * (1000 - 256)
    assert [ring.available for ring in call.rings] == [256, 256]


def test_close_ends_the_rings():
    call = CallIngest(8000, 1, 16000)
    call.ingest(np.ones(160, np.int16).tobytes())
    call.close()
    (ring,) = call.rings
    assert ring.closed
    # a closed ring hands over what it holds at once instead of waiting: the 320
    # samples of 160 in, less the 62 the aligned filter waits for until flush()
    assert len(ring.read_wait(10_000, timeout=30.0)) == 320 - 62


def test_not_a_buffer_is_a_type_error():
    call = CallIngest(8000, 1, 16000)
    with pytest.raises(TypeError):
        call.ingest("text frame")
    assert call.decode_errors == 0


@pytest.mark.parametrize("changed,message", [
    (dict(source_rate=11025), "source_rate must be one of"),
    (dict(channels=3), "channels must be 1 or 2"),
    (dict(encoding="opus"), "encoding must be one of"),
    (dict(ring_capacity=1000), "power of two"),
    (dict(quality="hifi"), "quality must be one of"),
])
def test_bad_arguments_name_what_is_allowed(changed, message):
    with pytest.raises(PiopiyValidationError, match=message):
        CallIngest(**{**dict(source_rate=8000, channels=1, target_rate=16000), **changed})
