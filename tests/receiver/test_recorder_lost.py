"""A recording whose file is deleted (or replaced) while it is written: writes to a
deleted file still succeed on Linux, so the recorder checks the file at the end and
reports it as a failure, by name, rather than as a file written."""
import asyncio
import shutil

import numpy as np
from stream_testing import run
from websockets.asyncio.client import connect

from piopiy_fast.receiver.recorder import Recorder, RecordingError
from piopiy_fast.receiver.server import StreamServer


def test_deleting_the_record_directory_mid_call_is_a_failed_recording(tmp_path, transport):
    directory = tmp_path / "rec"
    recorder = Recorder(directory, chunk_seconds=0.02)
    outcome = {}
    frame = (np.random.default_rng(9).standard_normal(160) * 3000).astype("<i2").tobytes()

    async def on_call(call):
        try:
            outcome["paths"] = await recorder.record(call)
        except RecordingError as exc:
            outcome["error"] = exc

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call,
                                target_rate=8000, layout="mono") as server:
            async with connect(f"{server.url}/?call_id=gone&listen_mode=caller") as ws:
                for _ in range(40):
                    await ws.send(frame)
                    await asyncio.sleep(0.005)
                path = directory / "gone.caller.wav"
                while not path.exists() or path.stat().st_size <= 44:
                    await asyncio.sleep(0.01)
                shutil.rmtree(directory)
                for _ in range(20):
                    await ws.send(frame)
            while not outcome:
                await asyncio.sleep(0.01)

    run(main(), transport=transport)
    assert "paths" not in outcome
    error = outcome["error"]
    path = directory / "gone.caller.wav"
    assert error.reasons == [f"caller: {path} was deleted while recording"]
    assert error.paths == []
    assert str(path) in str(error)


def test_a_file_put_in_the_recordings_place_is_no_recording(tmp_path):
    recorder = Recorder(tmp_path)
    sink = recorder.open(recorder.claim("swap"), "caller", 8000)
    sink.write(np.arange(100, dtype=np.int16))
    assert sink.lost() is None
    sink.path.unlink()
    sink.path.write_bytes(b"someone else's file")
    assert sink.lost() == f"{sink.path} was replaced by another file while recording"
    sink.path.unlink()
    assert sink.lost() == f"{sink.path} was deleted while recording"
    sink.close()
