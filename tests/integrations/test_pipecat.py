"""PiopiyFrameSerializer with the real pipecat-ai: Pipecat's own WebSocket server
transport on 127.0.0.1, fed by the project's simulator or a plain websockets client
sending what Piopiy sends."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import pathlib
import signal
import socket
import subprocess
import sys
import wave

import numpy as np
import pytest
from http_recorder import HttpRecorder, Reply
from stream_testing import UNIT, run

pytest.importorskip("pipecat")

from pipecat.frames.frames import (  # noqa: E402
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.frame_processor import (  # noqa: E402
    FrameProcessor,
    FrameProcessorSetup,
)
from pipecat.transports.websocket.server import (  # noqa: E402
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.workers.runner import WorkerRunner  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from piopiy_fast import RestClient, Simulator  # noqa: E402
from piopiy_fast.audio import CallIngest, Resampler, interleave  # noqa: E402
from piopiy_fast.errors import PiopiyValidationError  # noqa: E402
from piopiy_fast.integrations.pipecat import PiopiyFrameSerializer  # noqa: E402
from piopiy_fast.simulator.synthetic import speech_like  # noqa: E402
from piopiy_fast.stream.wire import StreamFormat, start_event  # noqa: E402

Params = PiopiyFrameSerializer.InputParams
FRAME = 0.02  # seconds of audio per binary frame, and between frames when paced
# Paced frames held before the byte rate settles a format: the 11th brings the tenth gap.
HELD = 10


def l16(samples):
    return np.asarray(samples, dtype="<i2").tobytes()


def samples_of(audio):
    return np.frombuffer(audio, dtype="<i2")


def reply_samples(message):
    """Samples of a streamAudio message after checking its envelope exactly."""
    body = json.loads(message)
    assert set(body) == {"type", "data"} and body["type"] == "streamAudio"
    assert set(body["data"]) == {"audioDataType", "sampleRate", "audioData"}
    assert body["data"]["audioDataType"] == "raw"
    raw = base64.b64decode(body["data"]["audioData"], validate=True)
    assert len(raw) <= 50 * 1024
    return body["data"]["sampleRate"], samples_of(raw)


def with_silence(rate, seed, silence_s=2.0):
    """Speech, 2 s of digital silence, speech again: what clips a word elsewhere."""
    return np.concatenate([speech_like(0.7, rate, seed), np.zeros(int(silence_s * rate), np.int16),
                           speech_like(0.6, rate, seed + 1)])


class Clock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def deserialize_all(serializer, frames, clock=None):
    """Each message through ``deserialize``; with ``clock``, binary frames come 20 ms
    apart, as Piopiy paces them."""
    async def go():
        out = []
        for frame in frames:
            out.append(await serializer.deserialize(frame))
            if clock is not None and isinstance(frame, bytes):
                clock.now += FRAME
        return out
    return run(go())


def paced(**params):
    """A serializer whose clock the test moves, and that clock."""
    clock = Clock()
    return PiopiyFrameSerializer(params=Params(**params), clock=clock), clock


def frames_of(samples, rate, channels=1):
    """20 ms binary frames of ``samples`` (interleaved when ``channels`` is 2)."""
    step = int(rate * FRAME) * channels
    return [l16(samples[i:i + step]) for i in range(0, len(samples), step)]


def interleaved(left, right):
    pairs = np.empty(2 * len(left), np.int16)
    pairs[0::2], pairs[1::2] = left, right
    return pairs


def audio_after_the_hold(frames, held=HELD):
    """The audio of a call's frames, after checking the hold exactly: None for the
    first ``held`` frames, then an audio frame for every frame that brought audio."""
    assert frames[:held] == [None] * held
    assert all(isinstance(f, InputAudioRawFrame) for f in frames[held:])
    return samples_of(b"".join(f.audio for f in frames[held:]))


def set_up(serializer, audio_in, audio_out):
    """What a Pipecat transport does before the pipeline runs (the rates are all it uses)."""
    run(serializer.setup(FrameProcessorSetup(
        clock=None, task_manager=None, pipeline_worker=None,
        audio_in_sample_rate=audio_in, audio_out_sample_rate=audio_out)))
    return serializer


def serialize_all(serializer, frames):
    async def go():
        return [await serializer.serialize(f) for f in frames]
    return run(go())


def ingested(samples, rate, channels, target):
    """What the call core's native ingest makes of ``samples`` fed whole: each
    channel at ``target`` (no tail: the call goes on)."""
    ingest = CallIngest(rate, channels, target, ring_capacity=1 << 20)
    ingest.ingest(l16(samples))
    return [ring.read() for ring in ingest.rings]


# -- the serializer on its own --------------------------------------------------------------

@pytest.mark.parametrize("source, target", [(8000, 16000), (12000, 16000), (16000, 8000),
                                            (8000, 8000)])
def test_received_audio_is_the_offline_resampling_of_the_whole_call(source, target):
    x = with_silence(source, seed=1)
    serializer, clock = paced(piopiy_sample_rate=source, sample_rate=target)
    frames = deserialize_all(serializer, frames_of(x, source), clock)
    assert all(f.sample_rate == target and f.num_channels == 1 for f in frames[HELD:])
    got = audio_after_the_hold(frames)
    oracle = ingested(x, source, 1, target)[0]
    assert np.array_equal(got, oracle)
    assert serializer.format_decision.how == "byte rate"


@pytest.mark.parametrize("channel, swap, expected", [
    ("caller", False, "caller"), ("callee", False, "callee"), ("caller", True, "callee"),
    ("both", False, "caller,callee"), ("both", True, "callee,caller")])
def test_both_mode_delivers_the_channel_asked_for(channel, swap, expected):
    caller, callee = speech_like(0.5, 8000, 2), speech_like(0.5, 8000, 3)
    serializer, clock = paced(piopiy_sample_rate=8000, listen_mode="both", channel=channel,
                              swap_channels=swap, sample_rate=16000)
    frames = deserialize_all(serializer, frames_of(interleaved(caller, callee), 8000, 2), clock)
    names = expected.split(",")
    assert {f.num_channels for f in frames[HELD:]} == {len(names)}
    got = audio_after_the_hold(frames).reshape(-1, len(names))
    sent = dict(zip(("caller", "callee"),
                    ingested(interleaved(caller, callee), 8000, 2, 16000), strict=True))
    oracle = np.stack([sent[n] for n in names], axis=1)
    assert np.array_equal(got, oracle)


def test_text_frames_never_raise():
    serializer = PiopiyFrameSerializer()
    not_json = ["plain metadata string", "{", "", "[1, 2", "[" * 100_000, "\ud800"]
    as_json = ['"just a string"', "null", '{"event": "media"}', "[1, 2, 3]"]
    frames = deserialize_all(serializer, not_json + as_json)
    assert frames[:len(not_json)] == [None] * len(not_json)
    messages = frames[len(not_json):]
    assert all(isinstance(f, InputTransportMessageFrame) for f in messages)
    assert [f.message for f in messages] == ["just a string", None, {"event": "media"}, [1, 2, 3]]


def test_a_frame_without_whole_samples_is_counted_and_changes_nothing():
    x = speech_like(0.6, 8000, 4)
    good = frames_of(x, 8000)
    broken = b"\x01\x02\x03"
    # One broken frame while the audio is held, one after.
    sent = good[:3] + [broken] + good[3:18] + [broken] + good[18:]
    serializer, clock = paced(sample_rate=16000)
    frames = deserialize_all(serializer, sent, clock)
    assert frames[:HELD] == [None] * HELD and frames[19] is None
    assert all(isinstance(f, InputAudioRawFrame) for f in frames[HELD:19] + frames[20:])
    assert serializer.decode_errors == 2 and serializer.frames == len(good)
    got = samples_of(b"".join(f.audio for f in frames if f is not None))
    assert np.array_equal(got, ingested(x, 8000, 1, 16000)[0])


def test_start_event_names_the_call_and_the_format_before_the_audio():
    caller, callee = speech_like(0.4, 16000, 5), speech_like(0.4, 16000, 6)
    serializer, clock = paced(channel="callee", sample_rate=8000)
    event = start_event("call-7", StreamFormat("both", 16000))
    frames = deserialize_all(serializer, [event] + frames_of(
        interleaved(caller, callee), 16000, 2), clock)
    assert frames[0].message["call_id"] == "call-7"
    assert serializer.call_id == "call-7"
    assert serializer.reply_rate == 16000
    decision = serializer.format_decision
    assert (decision.format, decision.how) == (StreamFormat("both", 16000), "byte rate")
    assert np.array_equal(audio_after_the_hold(frames[1:]),
                          ingested(interleaved(caller, callee), 16000, 2, 8000)[1])
    # Later metadata does not rename the call; a format it names is a format change
    # (as the receiver takes it), replies following the new rate.
    deserialize_all(serializer, [start_event("call-8", StreamFormat("caller", 8000))])
    assert serializer.call_id == "call-7"  # the first one named stays
    assert serializer.format == StreamFormat("caller", 8000)
    assert serializer.stats.format_changes == 1 and serializer.reply_rate == 8000


def test_setup_takes_the_pipeline_rates_and_a_start_event_can_still_change_the_format():
    x = speech_like(0.4, 12000, 16)
    serializer, clock = paced()
    set_up(serializer, audio_in=24000, audio_out=24000)
    assert serializer.reply_rate == 8000
    frames = deserialize_all(serializer, [
        start_event("call-9", StreamFormat("caller", 12000))] + frames_of(x, 12000), clock)
    assert serializer.reply_rate == 16000
    assert {f.sample_rate for f in frames[1 + HELD:]} == {24000}
    assert np.array_equal(audio_after_the_hold(frames[1:]), ingested(x, 12000, 1, 24000)[0])
    y = speech_like(0.6, 24000, 17)
    [message] = [m for m in serialize_all(serializer, [OutputAudioRawFrame(l16(y), 24000, 1)])]
    assert reply_samples(message)[0] == 16000
    assert np.array_equal(reply_samples(message)[1], Resampler(24000, 16000).process(y))


def test_setup_after_the_format_was_read_still_takes_the_pipeline_rate():
    x = speech_like(0.4, 8000, 18)
    serializer, clock = paced(piopiy_sample_rate=8000)
    assert serializer.format == StreamFormat("caller", 8000)
    set_up(serializer, audio_in=16000, audio_out=16000)
    frames = deserialize_all(serializer, frames_of(x, 8000), clock)
    assert {f.sample_rate for f in frames[HELD:]} == {16000}
    assert np.array_equal(audio_after_the_hold(frames), ingested(x, 8000, 1, 16000)[0])


def test_format_changes_are_bounded_and_never_raise(caplog):
    serializer, clock = paced(piopiy_sample_rate=8000, sample_rate=16000)
    deserialize_all(serializer, frames_of(speech_like(0.3, 8000, 19), 8000), clock)
    assert serializer.format_decision is not None
    named = [start_event("c", StreamFormat(mode, 8000)) for mode in ("callee", "caller") * 9]
    with caplog.at_level(logging.WARNING, logger="piopiy_fast.pipecat"):
        frames = deserialize_all(serializer, named)
    assert [f.message["listen_mode"] for f in frames] == ["callee", "caller"] * 9
    # 16 changes are taken; the receiver would close the call at the 17th, a serializer
    # cannot, so the format stays.
    assert serializer.stats.format_changes == 16
    assert serializer.format == StreamFormat("caller", 8000)
    [record] = [r for r in caplog.records if r.name == "piopiy_fast.pipecat"]
    assert "a format named later is ignored" in record.getMessage()


def test_a_format_change_hands_over_the_old_format_s_tail_and_keeps_two_channels_whole():
    """stereo -> the caller alone -> stereo, named by metadata mid-call, with both
    channels asked for: each format's audio as the native ingest makes it, the old
    format's resampler tail first; back in stereo the caller's tail from the mono
    stretch delays the caller by its length, no sample lost or doubled."""
    a = interleaved(speech_like(0.4, 8000, 40), speech_like(0.4, 8000, 41))
    b = speech_like(0.2, 8000, 42)
    c = interleaved(speech_like(0.2, 8000, 43), speech_like(0.2, 8000, 44))
    serializer, clock = paced(piopiy_sample_rate=8000, listen_mode="both", channel="both",
                              sample_rate=16000)
    first = deserialize_all(serializer, frames_of(a, 8000, 2), clock)
    deserialize_all(serializer, [start_event("c", StreamFormat("caller", 8000))])
    second = deserialize_all(serializer, frames_of(b, 8000), clock)
    deserialize_all(serializer, [start_event("c", StreamFormat("both", 8000))])
    third = deserialize_all(serializer, frames_of(c, 8000, 2), clock)
    assert serializer.stats.format_changes == 2

    def whole(samples, channels):
        ingest = CallIngest(8000, channels, 16000, ring_capacity=1 << 20)
        ingest.ingest(l16(samples))
        out = [ring.read() for ring in ingest.rings]
        ingest.flush()
        return out, [ring.read() for ring in ingest.rings]

    (out_a, tail_a), (out_b, tail_b), (out_c, _) = whole(a, 2), whole(b, 1), whole(c, 2)
    assert tail_a[0].size and tail_b[0].size  # there is a tail to hand over
    assert {f.num_channels for f in second} == {1}
    assert {f.num_channels for f in first[HELD:] + third} == {2}
    assert np.array_equal(audio_after_the_hold(first), interleave(*out_a))
    assert np.array_equal(audio_after_the_hold(second, 0),
                          np.concatenate([tail_a[0], out_b[0]]))
    caller = np.concatenate([tail_b[0], out_c[0]])[:out_c[1].size]
    assert np.array_equal(audio_after_the_hold(third, 0), interleave(caller, out_c[1]))


# -- the layout: the call core decides, the parameters are hints ---------------------------

def mixed_call(seconds, rate):
    """Both parties summed into one channel (saturated), and the parties."""
    caller, callee = speech_like(seconds, rate, 30), speech_like(seconds, rate, 31)
    mixed = np.clip(caller.astype(np.int32) + callee, -32768, 32767).astype(np.int16)
    return mixed, caller, callee


@pytest.mark.parametrize("channel", ["caller", "callee", "both"])
def test_a_mixed_stream_under_both_is_the_mix_whatever_channel_says(channel, caplog):
    mixed, _, _ = mixed_call(1.0, 8000)
    serializer, clock = paced(piopiy_sample_rate=8000, listen_mode="both", channel=channel,
                              sample_rate=16000)
    with caplog.at_level(logging.WARNING, logger="piopiy_fast.pipecat"):
        frames = deserialize_all(serializer, frames_of(mixed, 8000), clock)
    decision = serializer.format_decision
    assert (decision.format, decision.how, decision.overruled) == (
        StreamFormat("both", 8000, "mixed"), "byte rate", ())
    assert {(f.num_channels, f.sample_rate) for f in frames[HELD:]} == {(1, 16000)}
    got = audio_after_the_hold(frames)
    assert np.array_equal(got, ingested(mixed, 8000, 1, 16000)[0])
    [record] = [r for r in caplog.records if r.name == "piopiy_fast.pipecat"]
    assert "the stream is mixed" in record.getMessage()
    assert "the pipeline gets the mix, one channel" in record.getMessage()


@pytest.mark.parametrize("channel, index", [("caller", 0), ("callee", 1)])
def test_a_stereo_stream_when_the_hint_says_caller_is_read_as_two_parties(channel, index):
    caller, callee = speech_like(1.0, 8000, 32), speech_like(1.0, 8000, 33)
    stereo = interleaved(caller, callee)
    serializer, clock = paced(piopiy_sample_rate=8000, listen_mode="caller", channel=channel,
                              sample_rate=16000)
    frames = deserialize_all(serializer, frames_of(stereo, 8000, 2), clock)
    decision = serializer.format_decision
    assert (decision.format, decision.how, decision.overruled) == (
        StreamFormat("both", 8000), "byte rate", ("listen_mode caller -> both",))
    assert serializer.stats.hints_overruled == 1
    assert {f.num_channels for f in frames[HELD:]} == {1}
    got = audio_after_the_hold(frames)
    # One party at its own length (less the resampler's delay, which the call's end
    # flushes): not both parties read as one at twice the length.
    assert abs(got.size - 2 * len(caller)) < 0.01 * 2 * len(caller)
    assert np.array_equal(got, ingested(stereo, 8000, 2, 16000)[index])


def test_held_audio_is_replayed_exactly_in_the_first_frame_after_the_decision():
    # What the stream module's current client does: the audio captured while it
    # connected, at once, then the metadata, then frames every 20 ms.
    caller, callee = speech_like(1.0, 8000, 34), speech_like(1.0, 8000, 35)
    stereo = interleaved(caller, callee)
    sent = frames_of(stereo, 8000, 2)
    serializer, clock = paced(channel="both", sample_rate=16000)
    burst = deserialize_all(serializer, sent[:20])
    metadata = deserialize_all(serializer, [json.dumps(
        {"event": "start", "call_id": "fs-1", "listen_mode": "both", "sample_rate": 8000})])
    rest = deserialize_all(serializer, sent[20:], clock)
    assert burst == [None] * 20 and isinstance(metadata[0], InputTransportMessageFrame)
    assert rest[:HELD] == [None] * HELD
    assert serializer.format_decision.format == StreamFormat("both", 8000)
    # The frame that settles the format carries everything held, sample for sample what
    # the core's native ingest makes of those frames fed whole.
    first = rest[HELD]
    assert (first.num_channels, first.sample_rate) == (2, 16000)
    held = 20 + HELD + 1
    want = ingested(stereo[:held * 320], 8000, 2, 16000)
    assert np.array_equal(samples_of(first.audio), interleave(*want))
    # And every frame after it, what the whole call gives.
    whole = ingested(stereo, 8000, 2, 16000)
    got = samples_of(b"".join(f.audio for f in rest[HELD:]))
    assert np.array_equal(got, interleave(*whole))
    assert serializer.call_id == "fs-1" and serializer.frames == len(sent)


def test_an_explicit_layout_settles_at_the_first_frame():
    mixed, _, _ = mixed_call(0.2, 8000)
    serializer = PiopiyFrameSerializer(params=Params(
        piopiy_sample_rate=8000, layout="mixed", sample_rate=16000))
    frames = deserialize_all(serializer, frames_of(mixed, 8000))
    assert serializer.format_decision.how == "setting"
    assert serializer.format == StreamFormat("both", 8000, "mixed")
    assert all(isinstance(f, InputAudioRawFrame) for f in frames)
    got = samples_of(b"".join(f.audio for f in frames))
    assert np.array_equal(got, ingested(mixed, 8000, 1, 16000)[0])


def test_replies_are_batched_at_the_reply_rate():
    # A 12 kHz call replies at 16 kHz; the pipeline's audio is at 24 kHz in 100 ms frames.
    serializer = PiopiyFrameSerializer(params=Params(piopiy_sample_rate=12000))
    assert serializer.reply_rate == 16000 and serializer.audio_out_10ms_chunks == 30
    y = speech_like(1.0, 24000, 7)
    out = serialize_all(serializer, [OutputAudioRawFrame(l16(y[i:i + 2400]), 24000, 1)
                                     for i in range(0, len(y), 2400)])
    # 100 ms frames give 1600 samples each: a batch (4800) is there at every third.
    assert [o is not None for o in out] == [False, False, True] * 3 + [False]
    messages = [o for o in out if o]
    assert all(reply_samples(m)[0] == 16000 for m in messages)
    got = np.concatenate([reply_samples(m)[1] for m in messages])
    assert len(got) == 3 * 4800 and serializer.pending_reply_samples == 1600
    assert np.array_equal(got, Resampler(24000, 16000).process(y)[:3 * 4800])


def test_interruption_sends_break_and_drops_the_pending_reply():
    serializer = PiopiyFrameSerializer()
    y = speech_like(0.2, 8000, 8)
    assert serialize_all(serializer, [OutputAudioRawFrame(l16(y), 8000, 1)]) == [None]
    assert serializer.pending_reply_samples == 1600
    assert serialize_all(serializer, [InterruptionFrame()]) == ['{"action": "break"}']
    assert serializer.pending_reply_samples == 0


def test_transport_messages_go_out_as_json_text():
    serializer = PiopiyFrameSerializer()
    pcmo = [{"action": "bridge", "from": 918000000000, "connect": [{"type": "pstn",
                                                                    "number": 919000000000}]}]
    out = serialize_all(serializer, [
        OutputTransportMessageUrgentFrame(message=pcmo),
        OutputTransportMessageFrame(message={"action": "pause"}),
        OutputTransportMessageFrame(message='[{"action": "hangup"}]'),
        OutputTransportMessageFrame(message={"label": "rtvi-ai", "type": "bot-ready"}),
    ])
    assert json.loads(out[0]) == pcmo
    assert json.loads(out[1]) == {"action": "pause"}
    assert out[2] == '[{"action": "hangup"}]'
    assert out[3] is None  # Pipecat's own client protocol is not for the platform


def test_end_sends_stop_once_and_hangs_up_the_call():
    with HttpRecorder() as http:
        client = RestClient(1234, "secret-token", base_url=http.url)
        serializer = PiopiyFrameSerializer("cmi-42", rest_client=client)
        out = serialize_all(serializer, [EndFrame(), CancelFrame()])
        assert out == ['{"action": "stop"}', None]
        [request] = http.requests
        assert request.path == "/v1/call/action"
        assert request.json == {"appid": 1234, "secret": "secret-token", "cmiuuid": "cmi-42",
                                "action": "hangup"}


def test_a_failed_hang_up_still_sends_stop():
    with HttpRecorder(default=Reply(400, {"error": "no such call"})) as http:
        client = RestClient(1234, "secret-token", base_url=http.url, retries=0)
        serializer = PiopiyFrameSerializer("cmi-43", rest_client=client)
        assert serialize_all(serializer, [CancelFrame()]) == ['{"action": "stop"}']
        assert len(http.requests) == 1


def test_no_hang_up_without_a_call_id_or_when_disabled():
    with HttpRecorder() as http:
        client = RestClient(1234, "secret-token", base_url=http.url)
        anonymous = PiopiyFrameSerializer(rest_client=client)
        disabled = PiopiyFrameSerializer("cmi-44", rest_client=client,
                                         params=Params(auto_hang_up=False))
        assert serialize_all(anonymous, [EndFrame()]) == ['{"action": "stop"}']
        assert serialize_all(disabled, [EndFrame()]) == ['{"action": "stop"}']
        assert http.requests == []


@pytest.mark.parametrize("params", [{"piopiy_sample_rate": 11025}, {"sample_rate": 44100}])
def test_unsupported_rates_are_refused(params):
    with pytest.raises(PiopiyValidationError):
        PiopiyFrameSerializer(params=Params(**params))


def test_unknown_listen_mode_is_refused():
    with pytest.raises(ValueError):
        Params(listen_mode="everyone")


# -- a real pipeline over a real socket ----------------------------------------------------

class Recorder(FrameProcessor):
    """Keeps the audio reaching the pipeline; with ``echo``, plays it back."""

    def __init__(self, echo=False):
        super().__init__()
        self.echo = echo
        self.audio = bytearray()
        self.rates = set()
        self.channels = set()
        self.messages = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.audio += frame.audio
            self.rates.add(frame.sample_rate)
            self.channels.add(frame.num_channels)
            if self.echo:
                await self.push_frame(OutputAudioRawFrame(
                    frame.audio, frame.sample_rate, frame.num_channels))
                return
        elif isinstance(frame, InputTransportMessageFrame):
            self.messages.append(frame.message)
        await self.push_frame(frame, direction)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def pipeline(serializer, recorder, *, audio_in, audio_out, out_chunks=None):
    """Pipecat's websocket server transport with ``serializer``; yields its URL and worker."""
    port = free_port()
    transport = SingleClientWebsocketServerTransport(
        SingleClientWebsocketServerParams(
            serializer=serializer, audio_in_enabled=True, audio_out_enabled=True,
            audio_out_10ms_chunks=out_chunks or serializer.audio_out_10ms_chunks),
        host="127.0.0.1", port=port)
    ready = asyncio.Event()

    @transport.event_handler("on_websocket_ready")
    async def on_ready(_transport):
        ready.set()

    worker = PipelineWorker(
        Pipeline([transport.input(), recorder, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=audio_in, audio_out_sample_rate=audio_out),
        enable_rtvi=False, idle_timeout_secs=None)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(ready.wait(), 10 * UNIT)
        yield f"ws://127.0.0.1:{port}", worker
    finally:
        if not worker.has_finished():
            await worker.cancel()
        await asyncio.wait_for(running, 10 * UNIT)


async def send_paced(ws, frames):
    """Frames on Piopiy's schedule, one every 20 ms (by the clock: a late one does not
    push the rest back), so the call core can measure the byte rate."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, frame in enumerate(frames):
        await asyncio.sleep(max(0.0, start + i * FRAME - loop.time()))
        await ws.send(frame)


async def until(condition, what):
    for _ in range(int(1000 * UNIT)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def write_wav(path, channels, rate):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(l16(np.stack(channels, axis=1)))


@pytest.mark.parametrize("rate, mode, channel, pipeline_rate", [
    (8000, "caller", "caller", 16000), (12000, "both", "callee", 16000),
    (16000, "both", "both", 8000)])
def test_simulated_call_reaches_the_pipeline_sample_for_sample(
        tmp_path, rate, mode, channel, pipeline_rate):
    sides = {"caller": with_silence(rate, seed=10), "callee": with_silence(rate, seed=20)}
    sent = [sides["caller"], sides["callee"]] if mode == "both" else [sides["caller"]]
    write_wav(tmp_path / "call.wav", sent, rate)
    serializer = PiopiyFrameSerializer(params=Params(
        piopiy_sample_rate=rate, listen_mode=mode, channel=channel))
    recorder = Recorder()
    wanted = ["caller", "callee"] if channel == "both" else [channel]
    expected = np.stack([sides[name] for name in wanted], axis=1)
    # The caller alone in caller mode: one channel to name.
    parties = dict(zip(("caller", "callee"), ingested(
        np.stack(sent, axis=1).ravel(), rate, len(sent), pipeline_rate), strict=False))
    oracle = np.stack([parties[name] for name in wanted], axis=1)

    async def scenario():
        async with pipeline(serializer, recorder, audio_in=pipeline_rate, audio_out=16000) as (
                url, _worker):
            report = await Simulator(url, listen_mode=mode, sample_rate=rate, seconds=None,
                                     wav=tmp_path / "call.wav").run()
            assert report.failed == [] and report.calls[0].samples_sent == len(expected)
            await until(lambda: len(recorder.audio) >= 2 * oracle.size, "the audio")
            assert recorder.rates == {pipeline_rate} and recorder.channels == {len(wanted)}
            assert np.array_equal(samples_of(bytes(recorder.audio)), oracle.reshape(-1))
            assert serializer.call_id == "sim-001"

    run(scenario(), timeout=30)


def test_a_two_second_pause_between_frames_clears_nothing():
    """Pipecat's own serializers clear their resampler after 0.2 s without audio;
    here a 2 s gap in the stream itself leaves the output equal to the offline
    resampling of everything sent."""
    first, second = speech_like(0.5, 8000, 11), speech_like(0.5, 8000, 12)
    serializer = PiopiyFrameSerializer(params=Params(piopiy_sample_rate=8000))
    recorder = Recorder()
    part_one = ingested(first, 8000, 1, 16000)[0]
    oracle = ingested(np.concatenate([first, second]), 8000, 1, 16000)[0]

    async def scenario():
        async with pipeline(serializer, recorder, audio_in=16000, audio_out=16000) as (
                url, _worker):
            async with connect(url) as ws:
                # Paced, as Piopiy sends: the stream settles its format on them.
                await send_paced(ws, frames_of(first, 8000))
                await until(lambda: len(recorder.audio) == 2 * part_one.size, "part one")
                await asyncio.sleep(2.0)
                for frame in frames_of(second, 8000):
                    await ws.send(frame)
                await until(lambda: len(recorder.audio) == 2 * oracle.size, "part two")
            assert np.array_equal(samples_of(bytes(recorder.audio)), oracle)

    run(scenario(), timeout=30)


def test_a_stereo_stream_hinted_as_caller_reaches_the_pipeline_as_the_caller():
    """Over Pipecat's own transport: the serializer is told the stream is the caller
    alone, but it is two parties interleaved. The pipeline gets the caller, at its own
    length, sample for sample what the core's native ingest makes of it."""
    caller, callee = speech_like(1.0, 8000, 36), speech_like(1.0, 8000, 37)
    stereo = interleaved(caller, callee)
    serializer = PiopiyFrameSerializer(params=Params(piopiy_sample_rate=8000,
                                                     listen_mode="caller"))
    recorder = Recorder()
    want = ingested(stereo, 8000, 2, 16000)[0]

    async def scenario():
        async with pipeline(serializer, recorder, audio_in=16000, audio_out=16000) as (
                url, _worker):
            async with connect(url) as ws:
                await send_paced(ws, frames_of(stereo, 8000, 2))
                await until(lambda: len(recorder.audio) >= 2 * want.size, "the audio")
            assert recorder.rates == {16000} and recorder.channels == {1}
            assert np.array_equal(samples_of(bytes(recorder.audio)), want)
            assert serializer.format == StreamFormat("both", 8000)
            assert serializer.format_decision.overruled == ("listen_mode caller -> both",)

    run(scenario(), timeout=30)


async def receive_replies(ws, count):
    """The next ``count`` streamAudio messages (other text kept apart)."""
    replies, other = [], []
    while len(replies) < count:
        message = await asyncio.wait_for(ws.recv(), 10 * UNIT)
        (replies if '"streamAudio"' in message else other).append(message)
    return replies, other


@pytest.mark.parametrize("call_rate, pipeline_in, pipeline_out, reply_rate", [
    (8000, 8000, 8000, 8000), (12000, 16000, 24000, 16000)])
def test_echo_replies_come_back_as_streamaudio_batches(
        call_rate, pipeline_in, pipeline_out, reply_rate):
    # 0.7 s: two whole 300 ms batches even after Pipecat's own resampler's delay.
    x = speech_like(0.7, call_rate, 13)
    with HttpRecorder() as http:
        serializer = PiopiyFrameSerializer(
            rest_client=RestClient(99, "token", base_url=http.url),
            params=Params(piopiy_sample_rate=call_rate))
        recorder = Recorder(echo=True)
        batch = reply_rate * 3 // 10

        async def scenario():
            async with pipeline(serializer, recorder, audio_in=pipeline_in,
                                audio_out=pipeline_out) as (url, worker):
                async with connect(url) as ws:
                    await ws.send(start_event("cmi-echo", StreamFormat("caller", call_rate)))
                    await send_paced(ws, frames_of(x, call_rate))
                    replies, other = await receive_replies(ws, 2)
                    assert other == []
                    for message in replies:
                        rate, samples = reply_samples(message)
                        assert rate == reply_rate and len(samples) == batch
                    exact = call_rate == pipeline_in == pipeline_out
                    if exact:
                        # Nothing resampled anywhere: the echo is the call itself.
                        got = np.concatenate([reply_samples(m)[1] for m in replies])
                        assert np.array_equal(got, x[:2 * batch])
                    await worker.queue_frame(EndFrame())
                    rest = [m async for m in ws]
                    # Pipecat's end silence goes out, then the stop, then the close.
                    assert rest[-1] == '{"action": "stop"}'
                    assert rest[:-1]
                    for message in rest[:-1]:
                        rate, samples = reply_samples(message)
                        assert rate == reply_rate
                        assert not exact or not samples.any()
            assert [r.json["cmiuuid"] for r in http.requests] == ["cmi-echo"]

        run(scenario(), timeout=30)


def test_interruption_clears_the_pending_reply_in_a_pipeline():
    serializer = PiopiyFrameSerializer(params=Params(piopiy_sample_rate=8000))
    recorder = Recorder(echo=True)
    # 240 ms: enough paced frames to settle the format, short of a 300 ms batch.
    before, after = speech_like(0.24, 8000, 14), speech_like(0.3, 8000, 15)

    async def scenario():
        # 20 ms output chunks: the echo piles up in the serializer, short of a batch.
        async with pipeline(serializer, recorder, audio_in=8000, audio_out=8000,
                            out_chunks=2) as (url, worker):
            async with connect(url) as ws:
                await send_paced(ws, frames_of(before, 8000))
                await until(lambda: serializer.pending_reply_samples == len(before),
                            "the echo to be pending")
                await worker.queue_frame(InterruptionFrame())
                assert await asyncio.wait_for(ws.recv(), 10 * UNIT) == '{"action": "break"}'
                assert serializer.pending_reply_samples == 0
                for i in range(0, len(after), 160):
                    await ws.send(l16(after[i:i + 160]))
                [reply], other = await receive_replies(ws, 1)
                assert other == []
                rate, samples = reply_samples(reply)
                # Only what came after the interruption: 300 ms, one batch.
                assert rate == 8000 and np.array_equal(samples, after)

    run(scenario(), timeout=30)


def test_the_echo_example_answers_simulated_calls():
    example = pathlib.Path(__file__).resolve().parents[2] / "examples" / "pipecat_echo.py"
    if not example.exists():
        pytest.skip("needs the source tree (examples/)")
    port = free_port()
    bot = subprocess.Popen([sys.executable, str(example), "--port", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for n in (1, 2):  # a new pipeline for each call
            assert bot.stdout.readline().strip() == f"listening on ws://127.0.0.1:{port}"
            # 2 s: the first 0.2 s is held until the format is settled, and Pipecat
            # paces its output in real time.
            report = run(Simulator(f"ws://127.0.0.1:{port}", seconds=2.0, realtime=True,
                                   call_id_prefix=f"call{n}").run())
            [call] = report.calls
            assert call.error is None and call.frames == 100
            # Replies come back while the caller still talks: 300 ms messages at 8000 Hz.
            assert len(call.received) >= 2
            for message in call.received:
                rate, samples = reply_samples(message)
                assert rate == 8000 and len(samples) == 2400
            assert bot.stdout.readline().strip() == f"call call{n}-001 ended: 100 frames"
        bot.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = bot.communicate(timeout=20 * UNIT)
        assert bot.returncode == 0 and "Traceback" not in err, err
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.communicate()
