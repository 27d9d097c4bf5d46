import asyncio
import wave

import numpy as np
import pytest
from scipy.io import wavfile
from stream_testing import mask, masked_frame_header, offline, run
from websockets.asyncio.client import connect

from piopiy_fast.errors import PiopiyValidationError
from piopiy_fast.receiver.recorder import Recorder, safe_stem
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.simulator import simulate
from piopiy_fast.simulator.synthetic import speech_like


def read_back(path, rate, expected):
    """Check a recording with both readers: rate, one channel, 16 bits, the samples."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (rate, 1, 2)
        assert wav.getnframes() == expected.size
        assert np.array_equal(np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), expected)
    sci_rate, data = wavfile.read(path)
    assert sci_rate == rate
    assert data.dtype == np.int16 and data.shape == expected.shape
    assert np.array_equal(data, expected)


@pytest.mark.parametrize("call_id, stem", [
    ("c4ec9bd2-efad-4296", "c4ec9bd2-efad-4296"),
    ("../../etc/passwd", "_.._etc_passwd"),
    ("/abs/path", "_abs_path"),
    ("..", "call"),
    ("", "call"),
    ("a b:c*d?e", "a_b_c_d_e"),
    ("x" * 100, "x" * 64),
    ("caf\u00e9.wav", "caf_.wav"),
])
def test_safe_stem(call_id, stem):
    assert safe_stem(call_id) == stem


def test_sink_is_valid_after_every_write(tmp_path):
    recorder = Recorder(tmp_path)
    sink = recorder.open(recorder.claim("c1"), "caller", 16000)
    first = np.arange(-500, 500, dtype=np.int16)
    sink.write(first)
    read_back(sink.path, 16000, first)  # still open: the header is already right
    second = np.full(123, 7, np.int16)
    sink.write(second)
    read_back(sink.path, 16000, np.concatenate([first, second]))
    sink.close()
    sink.close()
    assert sink.closed and sink.frames == 1123
    with pytest.raises(ValueError):
        sink.write(first)
    with recorder.open(recorder.claim("c2"), "caller", 8000) as other:
        with pytest.raises(PiopiyValidationError):
            other.write(first.astype(np.int32))


def test_never_overwrites(tmp_path):
    (tmp_path / "dup.caller.wav").write_bytes(b"someone else's")
    recorder = Recorder(tmp_path)
    stems = [recorder.claim("dup"), recorder.claim("dup"), recorder.claim("../dup")]
    assert stems == ["dup-2", "dup-3", "_dup"]
    assert (tmp_path / "dup.caller.wav").read_bytes() == b"someone else's"
    with pytest.raises(FileExistsError):
        recorder.open("dup", "caller", 8000)
    with pytest.raises(PiopiyValidationError):
        recorder.open("../x", "caller", 8000)
    with pytest.raises(PiopiyValidationError):
        recorder.open("x", "mixed", 8000)


def test_records_calls_from_the_server(tmp_path):
    recorder = Recorder(tmp_path)
    done = []

    async def on_call(call):
        done.append(await recorder.record(call))

    async def main():
        async with StreamServer("127.0.0.1", 0, on_call=on_call) as server:
            both = await simulate(server.url, listen_mode="both", sample_rate=12000,
                                  seconds=0.3, call_id_prefix="../up")
            callee = await simulate(server.url, listen_mode="callee", seconds=0.3,
                                    call_id_prefix="../up")
            while len(done) < 2:
                await asyncio.sleep(0.005)
        return both.calls[0], callee.calls[0]

    both, callee = run(main())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "_up-001-2.callee.wav", "_up-001.callee.wav", "_up-001.caller.wav"]
    read_back(tmp_path / "_up-001.caller.wav", 16000,
              offline(both.sent("caller"), 12000, 16000))
    read_back(tmp_path / "_up-001.callee.wav", 16000,
              offline(both.sent("callee"), 12000, 16000))
    read_back(tmp_path / "_up-001-2.callee.wav", 16000,
              offline(callee.sent("callee"), 8000, 16000))
    assert sorted(done[0] + done[1]) == sorted(recorder.files)


def test_abrupt_disconnect_leaves_a_valid_file(tmp_path):
    recorder = Recorder(tmp_path)
    signal = speech_like(0.3, 8000, 9)
    finished = []

    async def on_call(call):
        finished.append(await recorder.record(call))

    async def main():
        async with StreamServer("127.0.0.1", 0, on_call=on_call) as server:
            ws = await connect(server.url)
            await ws.send('{"event": "start", "call_id": "dropped"}')
            for i in range(0, signal.size, 160):
                await ws.send(signal[i:i + 160].tobytes())
            ws.transport.write(masked_frame_header(0x2, 320) + mask(b"\x00" * 100))
            ws.transport.abort()
            while not finished:
                await asyncio.sleep(0.005)

    run(main())
    read_back(tmp_path / "dropped.caller.wav", 16000, offline(signal, 8000, 16000))


def test_server_shutdown_finalises_recordings(tmp_path):
    recorder = Recorder(tmp_path)

    async def main():
        server = StreamServer("127.0.0.1", 0, on_call=recorder.record)
        await server.start()
        sim = asyncio.ensure_future(simulate(server.url, calls=2, listen_mode="both",
                                             seconds=5.0, realtime=True))
        while server.stats.frames < 20:
            await asyncio.sleep(0.005)
        await server.close()
        return await sim

    report = run(main())
    assert len(recorder.files) == 4
    for sent in report.calls:
        assert 0 < sent.seconds < 5.0
        for name in ("caller", "callee"):
            read_back(tmp_path / f"{sent.call_id}.{name}.wav", 16000,
                      offline(sent.sent(name), 8000, 16000))


def test_aligned_recordings_fill_a_pause_with_silence(tmp_path):
    from piopiy_fast.simulator.conversation import default_script, scripted
    from piopiy_fast.simulator.mod_audio_stream import AudioStream, StreamStart

    conv = scripted(default_script(2.5, 3), 8000, 2.5, seed=3)
    recorder = Recorder(tmp_path)

    async def main():
        async with StreamServer("127.0.0.1", 0, on_call=recorder.record,
                                late_after=0.1) as server:
            start = StreamStart.parse(f"{server.url}/s?listen_mode=both&voice_quality=8000",
                                      "stereo", "8k", '{"call_id": "paused"}')
            stream = AudioStream(start, conv, realtime=True, pauses=[(0.8, 1.8)])
            await stream.run()
            while len(recorder.files) < 2 or any(
                    call for call in server.active_calls):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
        return stream

    stream = run(main(), timeout=30)
    sent = stream.sent_audio()
    files = {name: wavfile.read(tmp_path / f"paused.{name}.wav")[1]
             for name in ("caller", "callee")}
    # Both files on the call's timeline: the same length, the paused second silent.
    assert files["caller"].size == files["callee"].size
    filled = {path.name: n for path, n in recorder.filled.items()}
    assert filled["paused.caller.wav"] == filled["paused.callee.wav"]
    assert 0.8 * 16000 <= filled["paused.caller.wav"] <= 1.2 * 16000
    for name in ("caller", "callee"):
        got, want = files[name], offline(sent[name], 8000, 16000)
        gap = filled[f"paused.{name}.wav"]
        assert got.size == want.size + gap
        # The audio around the silence is what was sent, sample for sample: the silence
        # sits where the resampler had got to when the pause ended (0.8 s, less the
        # filter's look-ahead).
        splits = [k for k in range(12000, 12801)
                  if np.array_equal(got[:k], want[:k]) and not got[k:k + gap].any()
                  and np.array_equal(got[k + gap:], want[k:])]
        assert len(splits) >= 1, name
