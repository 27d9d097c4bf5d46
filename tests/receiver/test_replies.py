"""ReplyBatcher: exact messages, sizes and counts, against one streaming resampler."""
import base64
import json

import numpy as np
import pytest

from piopiy_fast.audio import Resampler
from piopiy_fast.errors import PiopiyValidationError
from piopiy_fast.simulator.synthetic import speech_like
from piopiy_fast.stream.replies import (
    DEFAULT_BATCH_MS,
    MAX_MESSAGE_BYTES,
    ReplyBatcher,
    reply_rate_for,
)


def streamed(x, in_rate, out_rate):
    """The oracle: process + flush of one Resampler as the batcher builds it."""
    r = Resampler(in_rate, out_rate)
    return np.concatenate([r.process(x), r.flush()])


def decode(message):
    """The samples of one streamAudio message, after checking its envelope exactly."""
    body = json.loads(message)
    assert set(body) == {"type", "data"}
    assert body["type"] == "streamAudio"
    data = body["data"]
    assert set(data) == {"audioDataType", "sampleRate", "audioData"}
    assert data["audioDataType"] == "raw"
    assert data["sampleRate"] in (8000, 16000)
    raw = base64.b64decode(data["audioData"], validate=True)
    assert len(raw) <= MAX_MESSAGE_BYTES
    return np.frombuffer(raw, dtype="<i2"), data["sampleRate"]


def joined(messages):
    return np.concatenate([decode(m)[0] for m in messages]) if messages \
        else np.zeros(0, np.int16)


def sizes(messages):
    return [len(decode(m)[0]) for m in messages]


@pytest.mark.parametrize("call_rate, reply_rate", [
    (8000, 8000), (12000, 16000), (16000, 16000), (24000, 16000), (32000, 16000),
    (48000, 16000)])
def test_replies_go_out_at_8000_or_16000(call_rate, reply_rate):
    assert reply_rate_for(call_rate) == reply_rate
    assert ReplyBatcher(call_rate).reply_rate == reply_rate


def test_default_batch_is_300_ms():
    assert DEFAULT_BATCH_MS == 300
    assert ReplyBatcher(8000).batch_samples == 2400
    assert ReplyBatcher(16000).batch_samples == 4800
    assert ReplyBatcher(12000).batch_samples == 4800


@pytest.mark.parametrize("rate", [8000, 16000])
def test_batches_at_the_call_rate_carry_the_audio_unchanged(rate):
    x = speech_like(1.0, rate, seed=1)
    batcher = ReplyBatcher(rate)
    messages = batcher.add(x)
    batch = batcher.batch_samples
    assert sizes(messages) == [batch, batch, batch]
    assert batcher.pending == rate - 3 * batch
    assert all(decode(m)[1] == rate for m in messages)
    tail = batcher.flush()
    assert sizes(tail) == [rate - 3 * batch]
    assert np.array_equal(joined(messages + tail), x)
    assert batcher.pending == 0
    assert batcher.flush() == []


def test_message_is_the_exact_envelope():
    batcher = ReplyBatcher(8000, batch_ms=1)
    [message] = batcher.add(np.array([1, -2, 300, -32768, 32767, 0, 7, 8], np.int16))
    payload = base64.b64encode(
        np.array([1, -2, 300, -32768, 32767, 0, 7, 8], "<i2").tobytes()).decode()
    assert json.loads(message) == {"type": "streamAudio", "data": {
        "audioDataType": "raw", "sampleRate": 8000, "audioData": payload}}


def test_a_12khz_call_replies_at_16000_equal_to_the_one_shot_resampling():
    x = speech_like(2.0, 12000, seed=2)
    batcher = ReplyBatcher(12000)
    messages = batcher.add(x) + batcher.flush()
    expected = streamed(x, 12000, 16000)
    assert all(decode(m)[1] == 16000 for m in messages)
    assert np.array_equal(joined(messages), expected)
    # 2 s at 12 kHz is 32000 samples at 16 kHz, plus the resampler's tail.
    assert len(expected) > 32000
    assert sizes(messages) == [4800] * 6 + [len(expected) - 6 * 4800]


@pytest.mark.parametrize("rate, seconds", [(8000, 3.2), (16000, 1.6)])
def test_no_message_holds_more_than_50_kib(rate, seconds):
    batcher = ReplyBatcher(rate, batch_ms=10_000)
    assert batcher.batch_samples == MAX_MESSAGE_BYTES // 2
    assert batcher.batch_seconds == seconds
    x = speech_like(7.0, rate, seed=3)
    messages = batcher.add(x) + batcher.flush()
    cap = MAX_MESSAGE_BYTES // 2
    full, rest = divmod(len(x), cap)
    assert full >= 2
    assert sizes(messages) == [cap] * full + [rest]
    assert np.array_equal(joined(messages), x)


def test_any_split_of_the_input_gives_the_same_messages():
    x = speech_like(1.3, 24000, seed=4)
    whole = ReplyBatcher(8000)
    expected = whole.add(x, 24000) + whole.flush()
    rng = np.random.default_rng(5)
    for trial in range(20):
        batcher = ReplyBatcher(8000)
        got = []
        at = 0
        while at < len(x):
            step = int(rng.choice([0, 1, 2, 17, 99, 100, 101, 509, 960, 7200, 9000]))
            got += batcher.add(x[at:at + step], 24000)
            at += step
        got += batcher.flush()
        assert got == expected, trial


def test_float_and_l16_input_match_int16():
    x = speech_like(0.5, 16000, seed=6)
    as_int = ReplyBatcher(8000)
    as_float = ReplyBatcher(8000)
    as_bytes = ReplyBatcher(8000)
    a = as_int.add(x, 16000) + as_int.flush()
    b = as_float.add(x.astype(np.float64) / 32768.0, 16000) + as_float.flush()
    c = as_bytes.add(x.astype("<i2").tobytes(), 16000) + as_bytes.flush()
    assert a == b == c


def test_float_input_saturates():
    batcher = ReplyBatcher(8000, batch_ms=1)
    [message] = batcher.add(np.array([2.0, -2.0, 0.5, -1.0, 0, 0, 0, 0], np.float32))
    assert decode(message)[0].tolist() == [32767, -32768, 16384, -32768, 0, 0, 0, 0]


def test_flush_ends_an_utterance_and_the_next_starts_fresh():
    first = speech_like(0.7, 24000, seed=7)
    second = speech_like(0.4, 24000, seed=8)
    batcher = ReplyBatcher(16000)
    one = batcher.add(first, 24000) + batcher.flush()
    two = batcher.add(second, 24000) + batcher.flush()
    assert np.array_equal(joined(one), streamed(first, 24000, 16000))
    assert np.array_equal(joined(two), streamed(second, 24000, 16000))


def test_clear_drops_the_pending_audio_and_the_resampler_history():
    batcher = ReplyBatcher(8000)
    assert batcher.add(speech_like(0.2, 16000, seed=9), 16000) == []
    assert batcher.clear() == 1600
    assert batcher.pending == 0
    after = speech_like(0.5, 16000, seed=10)
    fresh = ReplyBatcher(8000)
    assert batcher.add(after, 16000) + batcher.flush() == fresh.add(after, 16000) + fresh.flush()


def test_take_sends_everything_pending_in_one_message_up_to_50_kib():
    batcher = ReplyBatcher(16000)
    x = speech_like(2.0, 16000, seed=11)
    assert batcher.take() is None
    assert batcher.feed(x[:1000]) == 1000
    first = batcher.take()
    assert sizes([first]) == [1000]
    batcher.feed(x[1000:])
    second = batcher.take()
    third = batcher.take()
    assert sizes([second, third]) == [MAX_MESSAGE_BYTES // 2, 31000 - MAX_MESSAGE_BYTES // 2]
    assert batcher.take() is None
    assert np.array_equal(joined([first, second, third]), x)


def test_a_new_input_rate_drains_the_old_resampler_first():
    a = speech_like(0.25, 24000, seed=12)
    b = speech_like(0.25, 48000, seed=13)
    batcher = ReplyBatcher(8000)
    messages = batcher.add(a, 24000) + batcher.add(b, 48000) + batcher.flush()
    expected = np.concatenate([streamed(a, 24000, 8000), streamed(b, 48000, 8000)])
    assert np.array_equal(joined(messages), expected)


def test_prepare_builds_ahead_and_changes_nothing_else():
    x = speech_like(0.7, 24000, seed=15)
    ready, lazy = ReplyBatcher(16000), ReplyBatcher(16000)
    ready.prepare(24000)
    assert ready.pending == 0
    assert ready.add(x, 24000) + ready.flush() == lazy.add(x, 24000) + lazy.flush()
    with pytest.raises(PiopiyValidationError):
        ready.prepare(22050)


def test_default_input_rate_is_the_call_rate():
    x = speech_like(0.3, 12000, seed=14)
    a, b = ReplyBatcher(12000), ReplyBatcher(12000)
    assert a.add(x) + a.flush() == b.add(x, 12000) + b.flush()


@pytest.mark.parametrize("kwargs", [
    {"call_rate": 11025}, {"call_rate": 8000, "batch_ms": 0},
    {"call_rate": 8000, "batch_ms": -5}, {"call_rate": 8000, "batch_ms": "300"},
    {"call_rate": 8000, "quality": "best"}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(PiopiyValidationError):
        ReplyBatcher(**kwargs)


@pytest.mark.parametrize("audio", [
    b"\x00\x01\x02", np.zeros((10, 2), np.int16), np.zeros(4, np.int32)])
def test_bad_audio_is_refused(audio):
    with pytest.raises(PiopiyValidationError):
        ReplyBatcher(8000).add(audio)


def test_bad_input_rate_is_refused():
    with pytest.raises(PiopiyValidationError):
        ReplyBatcher(8000).add(np.zeros(10, np.int16), 44100)
