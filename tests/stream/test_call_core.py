"""The call core driven with bytes: no socket, no event loop, a clock the test moves.

Frames go in as mod_audio_stream sends them (20 ms each, paced, or the connect burst);
what comes out of each channel's reader is compared, sample for sample, with the
native ingest fed the same audio as the format it really is.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from piopiy_fast.audio import CallDelivery, CallIngest
from piopiy_fast.receiver.channel import ChannelReader
from piopiy_fast.receiver.clock import DeliveryClocks
from piopiy_fast.simulator.synthetic import speech_like
from piopiy_fast.stream.call import BURST_FRAMES, CallCore, CallSettings
from piopiy_fast.stream.wire import StreamFormat

TARGET = 16000
FRAME = 0.02


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Call:
    """A core with its delivery and readers, as the receiver builds them."""

    def __init__(self, params=None, clock=None, **settings) -> None:
        self.clock = clock or Clock()
        self.delivery = CallDelivery(DeliveryClocks(), self.failed, burst_frames=BURST_FRAMES)
        self.readers = {name: ChannelReader(self.delivery, name, TARGET)
                        for name in ("caller", "callee", "mix")}
        self.audio = 0
        self.core = CallCore(params or {}, CallSettings(target_rate=TARGET, **settings),
                             self.delivery, self.readers, number=7, clock=self.clock,
                             on_audio=self.started)

    def failed(self, what):
        raise AssertionError(f"{what} callback failed")

    def started(self):
        self.audio += 1

    def send(self, frames, *, paced=True):
        for frame in frames:
            self.core.sink.feed(frame)
            if paced:
                self.clock.now += FRAME

    def read_all(self, name):
        reader = self.readers[name]
        parts = []
        while True:
            chunk = reader.read_blocking(1 << 20, timeout=0)
            if not chunk.size:
                break
            parts.append(chunk)
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def frames_of(samples: np.ndarray, rate: int, channels: int) -> list[bytes]:
    per = int(rate * FRAME) * channels
    return [samples[i:i + per].astype("<i2").tobytes() for i in range(0, samples.size, per)]


def two_parties(seconds, rate):
    return speech_like(seconds, rate, 21), speech_like(seconds, rate, 22)


def reference(samples: np.ndarray, rate: int, channels: int) -> list[np.ndarray]:
    """What the native ingest makes of the audio fed whole, per channel."""
    ingest = CallIngest(rate, channels, TARGET, ring_capacity=1 << 20)
    ingest.ingest(samples.astype("<i2").tobytes())
    ingest.flush()
    return [ring.read() for ring in ingest.rings]


def test_stereo_under_both_settles_by_byte_rate_and_loses_nothing():
    caller, callee = two_parties(1.0, 8000)
    stereo = np.stack([caller, callee], axis=1).ravel()
    call = Call({"listen_mode": "both", "voice_quality": "8000"})
    frames = frames_of(stereo, 8000, 2)
    call.send(frames[:5])
    assert not call.core.settled and call.core.held_bytes == 5 * 640
    call.send(frames[5:])
    decision = call.core.decision
    assert (decision.format, decision.how, decision.overruled) == (
        StreamFormat("both", 8000), "byte rate", ())
    call.core.end()
    want = reference(stereo, 8000, 2)
    assert np.array_equal(call.read_all("caller"), want[0])
    assert np.array_equal(call.read_all("callee"), want[1])
    assert call.read_all("mix").size == 0
    stats = call.core.stats
    assert (stats.frames, stats.bytes, stats.decode_errors) == (len(frames), stereo.size * 2, 0)
    assert call.audio == 1


def test_mixed_under_both_is_the_mix_never_the_caller():
    caller, callee = two_parties(1.0, 8000)
    mixed = np.clip(caller.astype(np.int32) + callee, -32768, 32767).astype(np.int16)
    call = Call({"listen_mode": "both", "voice_quality": "8000"})
    call.send(frames_of(mixed, 8000, 1))
    call.core.end()
    assert call.core.format == StreamFormat("both", 8000, "mixed")
    assert call.core.decision.how == "byte rate"
    assert np.array_equal(call.read_all("mix"), reference(mixed, 8000, 1)[0])
    assert call.read_all("caller").size == 0 and call.read_all("callee").size == 0


def test_stereo_when_the_url_says_caller_is_both_and_counted():
    caller, callee = two_parties(1.0, 8000)
    stereo = np.stack([caller, callee], axis=1).ravel()
    call = Call({"listen_mode": "caller", "voice_quality": "8000"})
    call.send(frames_of(stereo, 8000, 2))
    call.core.end()
    assert call.core.format == StreamFormat("both", 8000)
    assert call.core.decision.overruled == ("listen_mode caller -> both",)
    assert call.core.stats.hints_overruled == 1
    assert np.array_equal(call.read_all("callee"), reference(stereo, 8000, 2)[1])


def test_no_query_at_16k_is_told_from_8k_stereo_by_its_content():
    voice = speech_like(1.0, 16000, 5)
    call = Call()
    call.send(frames_of(voice, 16000, 1))
    call.core.end()
    assert call.core.format == StreamFormat("caller", 16000)
    assert call.core.decision.how == "content"
    assert np.array_equal(call.read_all("caller"), reference(voice, 16000, 1)[0])


def test_audio_before_the_metadata_is_held_and_the_metadata_is_a_hint():
    # The current client flushes what it captured while connecting, at once, then the
    # metadata, then paced frames.
    caller, callee = two_parties(1.0, 8000)
    stereo = np.stack([caller, callee], axis=1).ravel()
    frames = frames_of(stereo, 8000, 2)
    call = Call()
    call.send(frames[:20], paced=False)
    call.core.receive_text(json.dumps({"call_id": "fs-1", "listen_mode": "both",
                                       "sample_rate": 8000}))
    assert not call.core.settled and call.core.call_id == "fs-1"
    call.send(frames[20:])
    call.core.end()
    assert call.core.format == StreamFormat("both", 8000)
    assert call.core.stats.format_changes == 0
    want = reference(stereo, 8000, 2)
    assert np.array_equal(call.read_all("caller"), want[0])
    assert np.array_equal(call.read_all("callee"), want[1])


def test_a_call_that_ends_inside_the_hold_delivers_everything():
    voice = speech_like(0.2, 8000, 9)
    call = Call({"listen_mode": "caller", "voice_quality": "8000"})
    call.send(frames_of(voice, 8000, 1))
    assert not call.core.settled
    call.core.end()
    assert call.core.settled and call.audio == 1
    assert np.array_equal(call.read_all("caller"), reference(voice, 8000, 1)[0])


def test_the_hold_is_bounded_in_bytes():
    noise = np.random.default_rng(3).integers(-3000, 3000, 40000, dtype=np.int16)
    call = Call({"listen_mode": "caller"}, hold_bytes=8192)
    frames = frames_of(noise, 8000, 1)
    call.send(frames[:25], paced=False)   # 8000 bytes
    assert not call.core.settled
    call.send(frames[25:26], paced=False)
    assert call.core.settled and call.core.held_bytes == 0
    assert call.core.decision.how == "frame size"


def test_the_hold_is_bounded_in_time_by_settle():
    voice = speech_like(0.1, 8000, 4)
    call = Call({"listen_mode": "caller", "voice_quality": "8000"})
    call.send(frames_of(voice, 8000, 1))
    assert not call.core.settle()          # not yet its time
    call.clock.now += 1.0
    assert call.core.settle() and call.core.settled


def test_an_explicit_layout_and_rate_settle_at_the_first_frame():
    call = Call({"voice_quality": "8000"}, layout="mixed")
    call.send([b"\x01\x00" * 160])
    assert call.core.decision.how == "setting"
    assert call.core.format == StreamFormat("both", 8000, "mixed")
    assert call.readers["mix"].available > 0 or call.core.stats.frames == 1


def test_a_signed_layout_is_explicit_but_an_unsigned_one_is_a_hint():
    params = {"listen_mode": "both", "voice_quality": "8000", "layout": "mixed"}
    signed = Call(params)
    signed.core = CallCore(params, CallSettings(target_rate=TARGET), signed.delivery,
                           signed.readers, signed=True, clock=signed.clock)
    signed.send([b"\x00\x00" * 320])
    assert signed.core.decision.how == "signed URL"
    hinted = Call(params)
    hinted.send([b"\x00\x00" * 320])
    assert not hinted.core.settled


def test_an_unread_channel_shows_in_its_own_overruns():
    caller, callee = two_parties(2.0, 8000)
    stereo = np.stack([caller, callee], axis=1).ravel()
    call = Call({"listen_mode": "both", "voice_quality": "8000"}, ring_capacity=4096)
    for frame in frames_of(stereo, 8000, 2):
        call.send([frame])
        call.read_all("caller")
    call.core.end()
    by_channel = call.core.stats.overruns_by_channel
    assert by_channel["caller"] == 0 and by_channel["callee"] > 0
    assert call.core.stats.overruns == by_channel["callee"]


def test_events_are_bounded_by_the_memory_they_hold():
    call = Call(max_event_bytes=64 * 1024)
    flood = "[" + ",".join(["{}"] * 10000) + "]"   # 30 kB of text, 10,001 values
    call.core.receive_text(flood)
    call.core.receive_text(json.dumps({"event": "start", "call_id": "x"}))
    stats = call.core.stats
    assert (stats.events, stats.events_dropped) == (2, 1)
    assert call.core.events == [{"event": "start", "call_id": "x"}]
    assert call.core.call_id == "x"


def test_deep_json_in_one_pass():
    call = Call()
    attack = "[" * 33 + '"' + '\\"' * 32751       # quadratic for a backtracking regex
    call.core.receive_text(attack)
    assert call.core.events == [attack]
    assert call.core.stats.unrecognised_events == 1


def test_identity_from_the_url_then_the_metadata():
    call = Call({"call_ref": "order-9"})
    assert (call.core.call_id, call.core.ref) == ("order-9", "order-9")
    call.core.receive_text(json.dumps({"cmiuuid": "u-1", "from": "9199", "to": "9188"}))
    call.core.receive_text(json.dumps({"cmiuuid": "u-2"}))
    assert (call.core.call_id, call.core.from_number, call.core.to_number) == (
        "u-1", "9199", "9188")
    assert Call().core.call_id == "call-7"


@pytest.mark.parametrize("split", [1, 7, 320, 641])
def test_frames_of_any_size_give_the_same_samples(split):
    caller, callee = two_parties(0.6, 8000)
    stereo = np.stack([caller, callee], axis=1).ravel().astype("<i2").tobytes()
    call = Call({"listen_mode": "both", "voice_quality": "8000"}, layout="stereo")
    pieces = [stereo[i:i + split * 4] for i in range(0, len(stereo), split * 4)]
    call.send(pieces)
    call.core.end()
    want = reference(np.frombuffer(stereo, "<i2"), 8000, 2)
    assert np.array_equal(call.read_all("caller"), want[0])
    assert np.array_equal(call.read_all("callee"), want[1])
