"""The rate cap in the frame path: a peer more than ``max_ahead`` seconds ahead of real
time has its frames dropped before the ingest, counted, and reported once."""
import time

import numpy as np
import pytest

from piopiy_fast.audio import CallDelivery, CallIngest, FrameSink
from piopiy_fast.receiver.clock import DeliveryClocks

RATE = 8000
PAIRS = 800  # 100 ms of two-channel L16 per frame
SEC_PER_BYTE = 1.0 / (RATE * 4)


def frames(count, seed=3):
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((count, PAIRS, 2)) * 3000).astype("<i2")
    return [frame.tobytes() for frame in audio]


class Capped:
    """A call whose first frame settles the format (attach, replay), then live."""

    def __init__(self, max_ahead):
        self.reported = []
        self.errors = []
        self.ingest = CallIngest(RATE, 2, 8000, ring_capacity=1 << 17)
        self.delivery = CallDelivery(DeliveryClocks(), self.errors.append)
        self.sink = FrameSink(self.delivery, self.pending, lambda size: None,
                              late_after=1e9, max_ahead=max_ahead,
                              on_rate_limited=self.reported.append)

    def pending(self, data):
        self.sink.attach(self.ingest, SEC_PER_BYTE)
        return self.sink.replay(data)


def test_frames_past_the_allowance_are_dropped_counted_and_reported_once():
    call = Capped(max_ahead=1.05)
    sent = frames(30)
    for frame in sent:
        call.sink.feed(frame)
    # Frame 0 starts the schedule; frames 1..10 bring it to 1.1 s ahead (each checked
    # while at most 1.0 s ahead); every later one finds it 1.1 s ahead and is dropped.
    assert call.ingest.frames == 11
    assert call.sink.rate_limited_frames == 19
    assert call.reported == [PAIRS * 4]
    rings = call.ingest.rings
    kept = np.frombuffer(b"".join(sent[:11]), "<i2").reshape(-1, 2)
    assert np.array_equal(rings[0].read(1 << 17), kept[:, 0])
    assert np.array_equal(rings[1].read(1 << 17), kept[:, 1])


def test_a_dropped_frame_does_not_advance_the_schedule():
    call = Capped(max_ahead=1.05)
    sent = frames(14)
    for frame in sent[:12]:
        call.sink.feed(frame)
    assert (call.ingest.frames, call.sink.rate_limited_frames) == (11, 1)
    time.sleep(0.15)  # real time catches up: 1.1 s ahead becomes at most 0.95 s
    call.sink.feed(sent[12])
    assert (call.ingest.frames, call.sink.rate_limited_frames) == (12, 1)
    assert call.reported == [PAIRS * 4]  # still reported once


def test_no_cap_by_default_and_a_bad_cap_is_refused():
    call = Capped(max_ahead=None)
    for frame in frames(300):
        call.sink.feed(frame)  # 30 s of audio at once
    assert (call.ingest.frames, call.sink.rate_limited_frames, call.reported) == (300, 0, [])
    with pytest.raises(ValueError, match="max_ahead"):
        FrameSink(call.delivery, print, print, late_after=1.0, max_ahead=-1.0)
    with pytest.raises(TypeError, match="on_rate_limited"):
        FrameSink(call.delivery, print, print, late_after=1.0, on_rate_limited=3)
