"""A call's frame path below Python: what FrameSink does with each frame, and when it
calls back into Python."""
import time

import numpy as np
import pytest

from piopiy_fast.audio import CallIngest, FrameSink

RATE = 8000
BOTH = 4  # bytes per sample pair of L16


def both_frames(count, pairs=160, seed=0):
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((count, pairs, 2)) * 3000).astype("<i2")
    return [frame.tobytes() for frame in audio], audio.reshape(-1, 2)


class Call:
    """What a call gives its sink: the start hook attaches an ingest; the rest records."""

    def __init__(self, late_after=1e9, after_frame_result=False, burst_frames=1):
        self.started = 0
        self.bad = []
        self.after = 0
        self.after_frame_result = after_frame_result
        self.taps, self.waiting = [], []
        self.ingest = CallIngest(RATE, 2, 16000, ring_capacity=1 << 16)
        self.sink = FrameSink(self.start, self.bad.append, late_after=late_after,
                              after_frame=self.after_frame)
        self.sink.watch(self.taps, self.waiting, burst_frames)

    def start(self):
        self.started += 1
        self.sink.attach(self.ingest, 1.0 / (RATE * BOTH))

    def after_frame(self):
        self.after += 1
        return self.after_frame_result

    def channels(self):
        self.ingest.flush()
        return [ring.read() for ring in self.ingest.rings]


def test_frames_reach_the_rings_exactly_as_through_ingest():
    frames, _ = both_frames(50)
    call = Call()
    reference = CallIngest(RATE, 2, 16000, ring_capacity=1 << 16)
    for frame in frames:
        assert call.sink.feed(frame) is False
        reference.ingest(frame)
    reference.flush()
    got = call.channels()
    for ours, theirs in zip(got, (ring.read() for ring in reference.rings), strict=True):
        assert ours.size >= 50 * 320  # the frames, then the resampler tail
        np.testing.assert_array_equal(ours, theirs)
    assert (call.ingest.frames, call.ingest.bytes) == (50, 50 * 640)
    assert call.started == 1


def test_any_contiguous_buffer_is_a_frame():
    frames, _ = both_frames(3)
    call = Call()
    call.sink.feed(frames[0])
    call.sink.feed(bytearray(frames[1]))
    call.sink.feed(memoryview(frames[2]))
    assert (call.ingest.frames, call.ingest.bytes) == (3, 3 * 640)


def test_a_frame_without_whole_samples_is_counted_and_reported_once():
    frames, _ = both_frames(2)
    call = Call()
    call.sink.feed(frames[0])
    call.sink.feed(b"\x00" * 641)
    call.sink.feed(b"\x00" * 3)
    call.sink.feed(frames[1])
    assert call.bad == [641]
    assert (call.ingest.frames, call.ingest.decode_errors) == (2, 2)


def test_after_frame_runs_on_every_frame_while_taps_has_entries():
    frames, _ = both_frames(5)
    call = Call(after_frame_result=True, burst_frames=100)
    assert [call.sink.feed(f) for f in frames[:2]] == [False, False]
    call.taps.append("tap")
    assert [call.sink.feed(f) for f in frames[2:4]] == [True, True]
    call.taps.clear()
    call.sink.feed(frames[4])
    assert call.after == 2
    assert call.sink.unseen_frames == 0  # nobody waited


def test_waiting_readers_are_woken_by_a_burst_or_when_they_want_every_frame():
    frames, _ = both_frames(12)
    call = Call(after_frame_result=True, burst_frames=4)
    call.sink.feed(frames[0])
    call.waiting.append("reader")
    # Counted while someone waits; the hook runs at the 4th unseen frame.
    assert [call.sink.feed(f) for f in frames[1:5]] == [False, False, False, True]
    assert (call.after, call.sink.unseen_frames) == (1, 4)
    call.sink.unseen_frames = 0  # what waking the readers does
    assert call.sink.feed(frames[5]) is False
    call.sink.per_frame = 1
    assert [call.sink.feed(f) for f in frames[6:8]] == [True, True]
    call.sink.per_frame = 0
    call.sink.unseen_frames = 0
    call.waiting.clear()
    for f in frames[8:]:
        assert call.sink.feed(f) is False
    assert (call.after, call.sink.unseen_frames) == (3, 0)


def test_a_hook_that_raises_reaches_the_caller():
    def start():
        raise RuntimeError("no format")

    sink = FrameSink(start, print, late_after=1.0)
    with pytest.raises(RuntimeError, match="no format"):
        sink.feed(b"\x00" * 640)
    sink = FrameSink(lambda: None, print, late_after=1.0)
    with pytest.raises(RuntimeError, match="attached no ingest"):
        sink.feed(b"\x00" * 640)


def test_detached_sink_ignores_frames():
    frames, _ = both_frames(2)
    call = Call()
    call.sink.feed(frames[0])
    call.sink.detach()
    assert call.sink.ingest is None
    assert call.sink.feed(frames[1]) is False
    assert call.ingest.frames == 1
    with pytest.raises(RuntimeError):
        call.sink.attach(call.ingest, 1e-4)


def test_frame_times_and_the_late_count():
    frames, _ = both_frames(3)
    # Never late: the schedule allows a billion seconds of delay.
    call = Call(late_after=1e9)
    assert call.sink.first_frame is None and call.sink.last_frame is None
    before = time.monotonic()
    for frame in frames:
        call.sink.feed(frame)
    after = time.monotonic()
    # Stamped on time.monotonic()'s clock, which the rest of the receiver reads.
    first, last = call.sink.first_frame, call.sink.last_frame
    assert first is not None and last is not None
    assert before <= first <= last <= after
    assert call.sink.late_frames == 0
    # Always late: every frame arrives after its due time plus -1000 s.
    call = Call(late_after=-1e3)
    for frame in frames:
        call.sink.feed(frame)
    assert call.sink.late_frames == 3
    call.sink.restart_schedule()
    call.sink.feed(frames[0])
    assert call.sink.late_frames == 4


def test_arguments_are_checked():
    with pytest.raises(TypeError):
        FrameSink(None, print, late_after=1.0)
    with pytest.raises(TypeError):
        FrameSink(print, print, late_after=1.0, after_frame=3)
    sink = FrameSink(print, print, late_after=1.0)
    with pytest.raises(TypeError):
        sink.watch((), [], 1)
    with pytest.raises(ValueError):
        sink.watch([], [], 0)
    with pytest.raises(ValueError):
        sink.attach(CallIngest(RATE, 1, RATE, ring_capacity=1024), 0.0)
    with pytest.raises(TypeError):
        sink.attach(None, 1e-4)
