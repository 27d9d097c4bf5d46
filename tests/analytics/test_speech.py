"""Against independent references: two-party conversations of real speech (espeak-ng)
on a scripted timeline with overlaps, through a real server with analytics on; and
the native detector's frame-level agreement with WebRTC's and Silero's."""

import asyncio
import importlib.util

import numpy as np
import pytest
from stream_testing import run
from websockets.asyncio.client import connect

from piopiy_fast.analytics import speech_frames, utterances
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.stream.wire import StreamFormat, start_event
from tests.analytics.espeak import SCRIPT, conversation

FRAME_MS = 20


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    return tmp_path_factory.mktemp("espeak")


def stereo(conv):
    both = np.empty(2 * conv.samples, dtype="<i2")
    both[0::2], both[1::2] = conv.caller, conv.callee
    data = both.tobytes()
    step = 4 * conv.rate * FRAME_MS // 1000
    return [data[i:i + step] for i in range(0, len(data), step)]


def truth(conv):
    rate = conv.rate
    talk = {p: sum(t.end - t.start for t in conv.turns if t.party == p) / rate
            for p in ("caller", "callee")}
    interruptions = []
    for t in conv.turns:
        for u in conv.turns:
            if u.party != t.party and t.start < u.start < t.end:
                interruptions.append((u.party, t.party, round(u.start / rate, 2)))
    return talk, sorted(interruptions, key=lambda i: i[2])


async def stream(conv, on_call):
    server = StreamServer("127.0.0.1", 0, layout="stereo", analytics=True, on_call=on_call)
    async with server:
        url = f"{server.url}/stream?listen_mode=both&voice_quality={conv.rate}&call_id=s-1"
        async with connect(url) as ws:
            await ws.send(start_event("s-1", StreamFormat("both", conv.rate, "stereo")))
            for frame in stereo(conv):   # faster than real time: never late
                await ws.send(frame)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_conversation_metrics_match_the_script(rate, voices):
    conv = conversation(SCRIPT, rate, voices)
    turns, calls = [], []
    done = asyncio.Event

    async def main():
        finished = done()

        async def on_call(call):
            calls.append(call)
            await call.wait_audio()
            call.analytics.on_turn(turns.append)
            got = {}

            async def cut(name):
                got[name] = [u async for u in utterances(call.channel(name), call.analytics)]
            await asyncio.gather(cut("caller"), cut("callee"))
            calls.append(got)
            finished.set()

        await stream(conv, on_call)
        await finished.wait()

    run(main(), timeout=60)
    call, cut = calls
    summary = call.analytics.summary()
    talk, interruptions = truth(conv)
    for party in ("caller", "callee"):
        got = summary["parties"][party]["talk_seconds"]
        n_turns = sum(t.party == party for t in conv.turns)
        assert abs(got - talk[party]) <= max(0.05 * talk[party], 0.06 * n_turns), (party, got)
    found = [(i["by"], i["of"], round(i["at_seconds"] * 16000 / 16000, 2))
             for i in summary["interruptions"]]
    assert [(b, o) for b, o, _ in found] == [(b, o) for b, o, _ in interruptions]
    for (_, _, at), (_, _, expected) in zip(found, interruptions, strict=True):
        assert abs(at - expected) <= 0.05
    # One silence over 5 s (15.8-21.5); the others are shorter
    assert summary["silences"]["count"] == 1
    assert summary["duration_seconds"] == pytest.approx(conv.samples / rate, abs=0.5)
    # Turn events as segments ended; utterances cut from the audio, on the timeline
    assert len(turns) == call.analytics.turns
    assert {e.segment.party for e in turns} == {"caller", "callee"}
    for party in ("caller", "callee"):
        pieces = cut[party]
        assert [(u.start, u.end) for u in pieces] == [
            (s.start, s.end) for s in call.analytics.metrics.segments(party)]
        for u in pieces:
            assert len(u.samples) == u.end - u.position
            assert 0 <= u.start - u.position <= 0.2 * 16000


def agreement(a, b):
    n = min(len(a), len(b))
    return float(np.mean(a[:n] == b[:n]))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_agreement_with_webrtc_and_silero(rate, voices, record_property):
    conv = conversation(SCRIPT, rate, voices)
    native = np.concatenate([speech_frames(conv.party(p), rate, 10) for p in ("caller", "callee")])
    rates = {}
    if importlib.util.find_spec("webrtcvad") is not None:
        from piopiy_fast.analytics.references import webrtc_frames
        web = np.concatenate([webrtc_frames(conv.party(p), rate, 10) for p in ("caller", "callee")])
        rates["webrtc"] = agreement(native, web)
    if (importlib.util.find_spec("onnxruntime") is not None
            and importlib.util.find_spec("silero_vad") is not None):
        from piopiy_fast.analytics.references import SileroVad
        silero = SileroVad(rate)
        frames = []
        for p in ("caller", "callee"):
            silero.reset()
            frames.append(silero.frames(conv.party(p), 10))
        rates["silero"] = agreement(native, np.concatenate(frames))
    if not rates:
        pytest.skip("neither webrtcvad nor onnxruntime with silero-vad is installed")
    for name, value in rates.items():
        record_property(f"agreement_{name}_{rate}", value)
        print(f"native vs {name} at {rate} Hz: {value:.3f} of 10 ms frames agree")
        assert value >= 0.85, (name, value)
