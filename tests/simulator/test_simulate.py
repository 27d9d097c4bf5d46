"""The simulator against a bare websockets server that keeps every message."""

import asyncio
import hashlib
import json
import wave

import numpy as np
import pytest
from stream_testing import run
from websockets.asyncio.server import serve

from piopiy_fast.errors import PiopiyValidationError
from piopiy_fast.simulator.conversation import default_script, scripted
from piopiy_fast.simulator.simulator import Simulator, load_wav, simulate, write_sent
from piopiy_fast.simulator.synthetic import speech_like


class Sink:
    """A plain server: records each connection's path, headers, messages and arrival times."""

    def __init__(self):
        self.connections = []

    async def handler(self, ws):
        loop = asyncio.get_running_loop()
        record = {"path": ws.request.path, "headers": ws.request.headers, "messages": [],
                  "times": []}
        self.connections.append(record)
        async for message in ws:
            record["messages"].append(message)
            record["times"].append(loop.time())

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0, compression=None)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


def by_call(sink):
    return {json.loads(c["messages"][0])["call_id"]: c for c in sink.connections}


def expected_channel(mode, name, seconds, rate, seed, index):
    """What the simulator plays on ``name``: one party's speech, or in ``both`` mode a
    conversation where the parties take turns."""
    if mode == "both":
        return scripted(default_script(seconds, (seed, index)), rate, seconds,
                        (seed, index)).party(name)
    return speech_like(seconds, rate, (seed, index, 0))


def test_both_mode_parties_take_turns():
    sim = Simulator("ws://x", calls=4, listen_mode="both", seconds=60.0, seed=9)
    for index in range(4):
        audio, _ = sim.audio_for(index)
        talk = scripted(default_script(10.0, (9, index)), 8000, 10.0, (9, index))
        assert np.array_equal(audio["caller"], talk.caller)
        assert talk.overlap_fraction() < 0.15
        # Loud inside its turns, faint outside them.
        for party in ("caller", "callee"):
            speaking = talk.speaking(party)
            x = audio[party].astype(float)
            assert np.sqrt(np.mean(x[speaking] ** 2)) > 30 * np.sqrt(np.mean(x[~speaking] ** 2))


def test_speech_like_is_deterministic_and_band_limited():
    a = speech_like(2.0, 8000, (1, 2, 3))
    assert a.dtype == np.int16 and a.size == 16000
    assert np.array_equal(a, speech_like(2.0, 8000, (1, 2, 3)))
    assert not np.array_equal(a, speech_like(2.0, 8000, (1, 2, 4)))
    assert np.abs(a.astype(int)).max() == 16384  # normalised to half of full scale
    spectrum = np.abs(np.fft.rfft(a.astype(float))) ** 2
    freqs = np.fft.rfftfreq(a.size, 1 / 8000)
    assert spectrum[freqs > 3650].sum() / spectrum.sum() < 1e-3
    assert spectrum[(freqs > 80) & (freqs < 1200)].sum() / spectrum.sum() > 0.8
    assert speech_like(0, 8000).size == 0


@pytest.mark.parametrize("mode", ["caller", "callee", "both"])
def test_sends_exactly_what_it_reports(mode):
    async def main():
        async with Sink() as sink:
            report = await simulate(sink.url, calls=3, listen_mode=mode, sample_rate=12000,
                                    seconds=0.25, frame_samples=(17, 240, 1), seed=4)
        return report, sink

    report, sink = run(main())
    received = by_call(sink)
    assert sorted(received) == ["sim-001", "sim-002", "sim-003"]
    names = ("caller", "callee") if mode == "both" else (mode,)
    for sent in report.calls:
        messages = received[sent.call_id]["messages"]
        assert json.loads(messages[0]) == {
            "event": "start", "call_id": sent.call_id, "listen_mode": mode,
            "sample_rate": 12000, "channels": len(names)}
        frames = messages[1:]
        assert all(isinstance(f, bytes) for f in frames)
        step = 2 * len(names)
        assert [len(f) // step for f in frames[:4]] == [17, 240, 1, 17]
        assert (sent.frames, sent.bytes) == (len(frames), sum(map(len, frames)))
        samples = np.frombuffer(b"".join(frames), "<i2").reshape(-1, len(names))
        for i, name in enumerate(names):
            assert np.array_equal(samples[:, i], sent.sent(name))
            assert np.array_equal(sent.sent(name),
                                  expected_channel(mode, name, 0.25, 12000, 4,
                                                   int(sent.call_id[-3:]) - 1))
        assert sent.samples_sent == 3000 and sent.seconds == 0.25 and sent.error is None


def test_report_json():
    async def main():
        async with Sink() as sink:
            return await simulate(sink.url, listen_mode="both", seconds=0.1)

    report = run(main())
    body = json.loads(report.to_json())
    [call] = body["calls"]
    sent = report.calls[0]
    assert (body["frames"], body["bytes"], body["realtime"]) == (5, 3200, False)
    assert call == {
        "call_id": "sim-001", "listen_mode": "both", "sample_rate": 8000, "frames": 5,
        "bytes": 3200, "samples": 800, "seconds": 0.1, "error": None, "stopped": False,
        "received_messages": 0,
        "sha256": {name: hashlib.sha256(sent.sent(name).tobytes()).hexdigest()
                   for name in ("caller", "callee")}}


def test_real_time_pacing():
    async def main():
        async with Sink() as sink:
            report = await simulate(sink.url, seconds=0.3, realtime=True)
        return report, sink

    report, sink = run(main())
    times = np.array(sink.connections[0]["times"][1:])
    assert times.size == 15
    elapsed = times - times[0]
    # Frame k leaves at 20 ms * k on a steady clock: never early, and no drift.
    assert np.all(elapsed >= np.arange(15) * 0.02 - 0.002)
    assert elapsed[-1] < 0.28 + 0.1
    assert report.wall_seconds >= 0.28


def test_no_start_event_and_headers():
    async def main():
        async with Sink() as sink:
            await simulate(f"{sink.url}/s?listen_mode=callee", listen_mode="callee",
                           seconds=0.04, start_event=False,
                           headers={"Authorization": "Bearer t"})
        return sink

    [connection] = run(main()).connections
    assert connection["path"] == "/s?listen_mode=callee"
    assert connection["headers"]["Authorization"] == "Bearer t"
    assert [len(m) for m in connection["messages"]] == [320, 320]


def test_wav_source(tmp_path):
    left = speech_like(0.2, 16000, 1)
    right = speech_like(0.2, 16000, 2)
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())

    async def main():
        async with Sink() as sink:
            return await simulate(sink.url, listen_mode="both", sample_rate=16000,
                                  seconds=None, wav=path)

    sent = run(main()).calls[0]
    assert np.array_equal(sent.sent("caller"), left)
    assert np.array_equal(sent.sent("callee"), right)
    from piopiy_fast._core.resample import resample
    [mono] = load_wav(path, 8000, seconds=0.1)[:1]
    assert np.array_equal(mono, resample(left[:1600], 16000, 8000))


def test_write_sent(tmp_path):
    async def main():
        async with Sink() as sink:
            return await simulate(sink.url, calls=2, listen_mode="both", seconds=0.1)

    report = run(main())
    paths = write_sent(report, tmp_path)
    assert [p.name for p in paths] == ["sim-001.caller.wav", "sim-001.callee.wav",
                                       "sim-002.caller.wav", "sim-002.callee.wav"]
    with wave.open(str(paths[1]), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert np.array_equal(data, report.calls[0].sent("callee"))


def test_connection_failure_is_reported():
    async def main():
        async with Sink() as sink:
            url = sink.url
        return await simulate(url, calls=2, seconds=0.1, open_timeout=2)

    report = run(main())
    assert len(report.failed) == 2
    assert all(c.frames == 0 and c.seconds == 0 for c in report.calls)
    assert "ConnectionRefused" in report.calls[0].error or "OSError" in report.calls[0].error


@pytest.mark.parametrize("ending", ["dropped", "closed"])
def test_a_call_cut_short_fails_with_how_it_ended(ending):
    # A server that goes away mid-call, with no closing handshake (the TCP connection
    # just drops, as when a receiver behind a proxy dies) or with one (1001): either
    # way the call did not send all its audio, so it failed, and the report says how.
    # Real time, so the end is noticed between two sends.
    async def handler(ws):
        for _ in range(5):
            await ws.recv()
        if ending == "dropped":
            ws.transport.abort()
        else:
            await ws.close(1001)

    async def main():
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            return await simulate(url, seconds=2.0, realtime=True)

    call = run(main()).calls[0]
    assert 0 < call.frames < 100
    if ending == "dropped":
        assert call.error is not None and "no close frame" in call.error
    else:
        assert call.error == (f"closed by the receiver (1001) after {call.seconds:.2f} "
                              f"of 2.00 s")


def test_validation():
    with pytest.raises(PiopiyValidationError, match="listen_mode"):
        Simulator("ws://x", listen_mode="stereo")
    with pytest.raises(PiopiyValidationError, match="sample_rate"):
        Simulator("ws://x", sample_rate=11025)
    with pytest.raises(PiopiyValidationError, match="calls"):
        Simulator("ws://x", calls=0)
    with pytest.raises(PiopiyValidationError, match="frame sizes"):
        Simulator("ws://x", frame_samples=[])


def test_memory_does_not_grow_with_call_length():
    # 200 calls of 3 minutes hold ten seconds of audio each, as 200 calls of 10 s do.
    long = Simulator("ws://x", calls=200, listen_mode="both", seconds=180.0)
    long.prepare()
    held = sum(a.nbytes for call in long._sent for a in call.audio.values())
    assert held == 200 * 2 * 80_000 * 2
    assert {call.total_samples for call in long._sent} == {180 * 8000}


def test_audio_past_the_cycle_goes_round_and_is_reported_exactly():
    received = []

    async def handler(ws):
        async for message in ws:
            if isinstance(message, bytes):
                received.append(message)

    async def main():
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            return await simulate(url, seconds=12.5, listen_mode="both")

    call = run(main()).calls[0]
    assert call.error is None and call.samples_sent == 100_000
    pairs = np.frombuffer(b"".join(received), "<i2").reshape(-1, 2)
    for channel, name in enumerate(("caller", "callee")):
        cycle = expected_channel("both", name, 10.0, 8000, 0, 0)
        assert np.array_equal(pairs[:, channel], np.concatenate([cycle, cycle[:20_000]]))
        assert np.array_equal(call.sent(name), pairs[:, channel])


def test_a_wav_at_a_rate_the_core_does_not_run_is_resampled(tmp_path):
    from scipy.signal import resample_poly

    path = tmp_path / "cd.wav"
    tone = np.round(8000 * np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100)).astype("<i2")
    stereo = np.stack([tone, -tone], axis=1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(stereo.tobytes())
    caller, callee = load_wav(path, 8000)
    expected = np.clip(np.rint(resample_poly(tone.astype(np.float64), 80, 441)), -32768, 32767)
    assert caller.size == 8000 and np.array_equal(caller, expected.astype(np.int16))
    assert np.array_equal(callee, np.clip(-expected, -32768, 32767).astype(np.int16))
