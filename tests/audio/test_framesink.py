"""A call's frame path below Python: what FrameSink does with each frame, what it
hands the call while the format is pending, and how held frames are replayed."""
import time

import numpy as np
import pytest

from piopiy_fast.audio import CallDelivery, CallIngest, FrameSink
from piopiy_fast.receiver.channel import ChannelReader
from piopiy_fast.receiver.clock import DeliveryClocks

RATE = 8000
BOTH = 4  # bytes per sample pair of L16
SEC_PER_BYTE = 1.0 / (RATE * BOTH)
FRAME_SECONDS = 0.02  # 160 pairs


def both_frames(count, pairs=160, seed=0):
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((count, pairs, 2)) * 3000).astype("<i2")
    return [frame.tobytes() for frame in audio], audio.reshape(-1, 2)


def new_ingest():
    return CallIngest(RATE, 2, 16000, ring_capacity=1 << 16)


class Call:
    """What a call gives its sink: ``on_pending`` holds frames until ``hold`` of them
    are held (None: until ``settle()``), then attaches an ingest and replays them."""

    def __init__(self, late_after=1e9, hold=0):
        self.hold = hold
        self.held = []
        self.pending_calls = 0
        self.bad = []
        self.errors = []
        self.ingest = new_ingest()
        self.delivery = CallDelivery(DeliveryClocks(), self.errors.append)
        self.sink = FrameSink(self.delivery, self.pending, self.bad.append,
                              late_after=late_after)

    def pending(self, data):
        assert type(data) is bytes
        self.pending_calls += 1
        self.held.append(data)
        if self.hold is not None and len(self.held) > self.hold:
            return self.settle()
        return None

    def settle(self, readers=()):
        self.sink.attach(self.ingest, SEC_PER_BYTE)
        self.delivery.add_rings(zip(readers, self.ingest.rings, strict=False))
        woke = False
        held, self.held = self.held, []
        for frame in held:
            woke = self.sink.replay(frame) or woke
        return woke

    def channels(self):
        self.ingest.flush()
        return [ring.read() for ring in self.ingest.rings]


def reference_channels(frames):
    reference = new_ingest()
    for frame in frames:
        reference.ingest(frame)
    reference.flush()
    return [ring.read() for ring in reference.rings]


def test_frames_reach_the_rings_exactly_as_through_ingest():
    frames, _ = both_frames(50)
    call = Call()
    for frame in frames:
        assert call.sink.feed(frame) is False
    got = call.channels()
    for ours, theirs in zip(got, reference_channels(frames), strict=True):
        assert ours.size >= 50 * 320  # the frames, then the resampler tail
        np.testing.assert_array_equal(ours, theirs)
    assert (call.ingest.frames, call.ingest.bytes) == (50, 50 * 640)
    assert call.pending_calls == 1  # only the first frame waited for a format


@pytest.mark.parametrize("hold", [1, 7, 49])
def test_held_frames_replayed_give_exactly_the_samples_of_feeding_them_live(hold):
    frames, _ = both_frames(50, seed=hold)
    call = Call(hold=hold)
    for frame in frames:
        call.sink.feed(frame)
    # on_pending got each frame until it attached, at frame hold + 1, and no other.
    assert call.pending_calls == hold + 1
    for ours, theirs in zip(call.channels(), reference_channels(frames), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert (call.ingest.frames, call.ingest.bytes, call.ingest.decode_errors) == (
        50, 50 * 640, 0)
    assert call.sink.late_frames == 0


def test_any_contiguous_buffer_is_a_frame_or_a_replayed_one():
    frames, _ = both_frames(4)
    call = Call(hold=None)
    call.sink.feed(frames[0])
    call.sink.feed(bytearray(frames[1]))
    call.sink.feed(memoryview(frames[2]))
    assert call.held == frames[:3]  # handed over as bytes, whatever came in
    call.sink.attach(call.ingest, SEC_PER_BYTE)
    call.sink.replay(bytearray(frames[0]))
    call.sink.replay(memoryview(frames[1]))
    call.sink.replay(frames[2])
    call.sink.feed(frames[3])
    assert (call.ingest.frames, call.ingest.bytes) == (4, 4 * 640)
    for ours, theirs in zip(call.channels(), reference_channels(frames), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_a_frame_without_whole_samples_is_counted_and_reported_once():
    frames, _ = both_frames(2)
    call = Call()
    call.sink.feed(frames[0])
    call.sink.feed(b"\x00" * 641)
    call.sink.feed(b"\x00" * 3)
    call.sink.feed(frames[1])
    assert call.bad == [641]
    assert (call.ingest.frames, call.ingest.decode_errors) == (2, 2)


def test_a_replayed_frame_without_whole_samples_is_reported_once_for_the_call():
    frames, _ = both_frames(2)
    call = Call(hold=None)
    for frame in (frames[0], b"\x00" * 641, b"\x00" * 3):
        call.sink.feed(frame)
    assert call.bad == []  # held: nothing is decoded yet
    call.settle()
    assert call.bad == [641]
    call.sink.feed(b"\x00" * 5)
    call.sink.feed(frames[1])
    assert call.bad == [641]
    assert (call.ingest.frames, call.ingest.decode_errors) == (2, 3)


def test_replayed_frames_advance_the_schedule_by_their_audio():
    # 250 held frames are 5 s of audio: the schedule's origin is the first arrival and
    # replaying them moves it 5 s on, so a frame arriving at once is up to 5 s early.
    frames, _ = both_frames(252)
    held_seconds = 250 * FRAME_SECONDS
    for late_after, late in ((-(held_seconds - 0.5), 0), (-(held_seconds + 0.5), 1)):
        call = Call(late_after=late_after, hold=None)
        for frame in frames[:250]:
            call.sink.feed(frame)
        first, last = call.sink.first_frame, call.sink.last_frame
        assert call.sink.late_frames == 0  # held frames are never late
        call.settle()
        # Replays are not arrivals, nor checked for lateness.
        assert (call.sink.first_frame, call.sink.last_frame) == (first, last)
        assert call.sink.late_frames == 0
        call.sink.feed(frames[250])
        assert call.sink.late_frames == late, late_after
        assert call.sink.last_frame > last
        assert call.pending_calls == 250
        assert (call.ingest.frames, call.ingest.bytes) == (251, 251 * 640)


def test_the_schedule_starts_at_the_first_arrival_not_at_the_replay():
    # Three held frames are 60 ms of audio; the format is settled 300 ms after the
    # first arrived, so the next live frame is 240 ms behind, late at late_after=0.1.
    frames, _ = both_frames(4)
    call = Call(late_after=0.1, hold=None)
    for frame in frames[:3]:
        call.sink.feed(frame)
    time.sleep(0.3)
    call.settle()
    assert call.sink.late_frames == 0
    call.sink.feed(frames[3])
    assert call.sink.late_frames == 1


def test_replay_skips_the_lateness_check_that_live_frames_get():
    frames, _ = both_frames(6)
    call = Call(late_after=-1e3, hold=None)  # every live frame is late
    for frame in frames[:3]:
        call.sink.feed(frame)
    call.settle()
    assert call.sink.late_frames == 0
    for frame in frames[3:]:
        call.sink.feed(frame)
    assert call.sink.late_frames == 3


def test_replay_needs_an_ingest_and_never_calls_on_pending():
    frames, _ = both_frames(2)
    call = Call(hold=None)
    call.sink.feed(frames[0])
    with pytest.raises(RuntimeError, match="no ingest is attached"):
        call.sink.replay(frames[0])
    call.settle()
    call.sink.replay(frames[1])
    assert call.pending_calls == 1
    call.sink.detach()
    with pytest.raises(RuntimeError, match="detached"):
        call.sink.replay(frames[1])
    assert call.ingest.frames == 2


def test_feed_says_a_reader_was_woken_only_when_on_pending_says_true():
    frames, _ = both_frames(3)
    answers = iter([True, 1, None])
    sink = FrameSink(CallDelivery(DeliveryClocks(), print), lambda data: next(answers),
                     print, late_after=1.0)
    assert [sink.feed(frame) for frame in frames] == [True, False, False]
    assert sink.ingest is None


def test_each_frame_runs_the_deliverys_turn_for_readers():
    # A callback reader gets, after each frame, exactly what that frame brought.
    frames, _ = both_frames(5)
    call = Call(hold=None)
    caller = ChannelReader(call.delivery, "caller", 16000)
    chunks = []
    caller.on_chunk(chunks.append)
    reference = new_ingest()
    expected = []
    for frame in frames:
        if not expected:
            call.sink.feed(frame)
            # A tap is not a woken reader: the transport need not yield for it.
            assert call.settle([caller]) is False
        else:
            assert call.sink.feed(frame) is False
        reference.ingest(frame)
        expected.append(reference.rings[0].read())
    assert len(chunks) == 5
    for got, want in zip(chunks, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_format_change_sends_frames_to_the_new_ingest():
    frames, _ = both_frames(3)
    call = Call()
    call.sink.feed(frames[0])
    mono = CallIngest(16000, 1, 16000, ring_capacity=1 << 12)
    call.sink.attach(mono, 1.0 / (16000 * 2))
    call.sink.feed(frames[1])
    call.sink.feed(frames[2])
    assert (call.ingest.frames, mono.frames, mono.bytes) == (1, 2, 2 * 640)
    assert call.pending_calls == 1
    assert mono.rings[0].read().size == 2 * 320  # 16 kHz mono: one sample per 2 bytes


def test_detached_sink_ignores_frames_and_lets_go_of_its_hooks():
    frames, _ = both_frames(2)
    call = Call()
    call.sink.feed(frames[0])
    call.sink.detach()
    assert call.sink.ingest is None
    assert call.sink.feed(frames[1]) is False
    assert call.ingest.frames == 1
    with pytest.raises(RuntimeError):
        call.sink.attach(call.ingest, 1e-4)
    # A sink detached before any audio hands nothing to on_pending either.
    call = Call(hold=None)
    call.sink.detach()
    call.sink.feed(frames[0])
    assert (call.pending_calls, call.sink.first_frame) == (0, None)


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
    # Always late: every live frame arrives after its due time plus -1000 s.
    call = Call(late_after=-1e3)
    for frame in frames:
        call.sink.feed(frame)
    assert call.sink.late_frames == 2  # the first is replayed, not checked
    call.sink.restart_schedule()
    call.sink.feed(frames[0])
    assert call.sink.late_frames == 3


def test_a_hook_that_raises_reaches_the_caller():
    def pending(data):
        raise RuntimeError("no format")

    sink = FrameSink(CallDelivery(DeliveryClocks(), print), pending, print, late_after=1.0)
    with pytest.raises(RuntimeError, match="no format"):
        sink.feed(b"\x00" * 640)


def test_arguments_are_checked():
    delivery = CallDelivery(DeliveryClocks(), print)
    with pytest.raises(TypeError):
        FrameSink(None, print, print, late_after=1.0)
    with pytest.raises(TypeError):
        FrameSink(object(), print, print, late_after=1.0)
    with pytest.raises(TypeError):
        FrameSink(delivery, None, print, late_after=1.0)
    with pytest.raises(TypeError):
        FrameSink(delivery, print, 3, late_after=1.0)
    with pytest.raises(TypeError):
        FrameSink(delivery, print, print)  # late_after is required
    sink = FrameSink(delivery, print, print, late_after=1.0)
    assert sink.delivery is delivery
    with pytest.raises(ValueError):
        sink.attach(CallIngest(RATE, 1, RATE, ring_capacity=1024), 0.0)
    with pytest.raises(TypeError):
        sink.attach(None, 1e-4)
    with pytest.raises(TypeError):
        sink.feed("text")
