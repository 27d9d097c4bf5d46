"""What a peer cannot take from the server: audio far faster than real time, and call
slots held by connections that never finish their opening handshake. Real sockets on
127.0.0.1, over every transport."""
import asyncio
import logging

import numpy as np
import pytest
from stream_testing import run
from websockets.asyncio.client import connect

from piopiy_fast.receiver.metrics import ServerCollector
from piopiy_fast.receiver.server import StreamServer

FRAME_BYTES = 320  # 20 ms of 8 kHz mono L16


def test_audio_far_faster_than_real_time_is_capped(transport, caplog):
    rng = np.random.default_rng(11)
    audio = (rng.standard_normal(300 * 160) * 3000).astype("<i2").tobytes()
    ended = {}

    async def on_call(call):
        async for _ in call.caller:
            pass
        ended["stats"] = call.stats

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call,
                                max_audio_ahead=2.0) as server:
            async with connect(f"{server.url}/?call_id=fast&listen_mode=caller"
                               "&sample_rate=8000") as ws:
                for i in range(300):  # 6 s of audio, sent at once
                    await ws.send(audio[i * FRAME_BYTES:(i + 1) * FRAME_BYTES])
            while "stats" not in ended:
                await asyncio.sleep(0.01)
            return server.stats

    with caplog.at_level(logging.WARNING, logger="piopiy_fast.receiver"):
        stats = run(main(), transport=transport)
    call = ended["stats"]
    # 2 s ahead of real time is let in, and what real time added while sending.
    assert 2.0 <= call.received_seconds < 3.0
    assert call.frames + call.rate_limited_frames == 300
    assert stats.rate_limited_frames == call.rate_limited_frames > 100
    assert stats.frames == call.frames
    logged = [r for r in caplog.records if "faster than real time" in r.getMessage()]
    assert len(logged) == 1 and "call fast" in logged[0].getMessage()
    metrics = {m.name: m.samples[0].value for m in ServerCollector(lambda: stats).collect()}
    assert metrics["piopiy_fast_rate_limited_frames"] == call.rate_limited_frames


def test_real_time_audio_after_a_connect_burst_is_whole(transport):
    """The platform's client sends what it queued while connecting (up to 1024 frames of
    20 ms) at once: under the default allowance all of it is kept."""
    rng = np.random.default_rng(12)
    audio = (rng.standard_normal(1024 * 160) * 3000).astype("<i2")
    got = {}

    async def on_call(call):
        parts = [chunk async for chunk in call.caller]
        got["audio"] = np.concatenate(parts)
        got["stats"] = call.stats

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call,
                                target_rate=8000, ring_seconds=30.0) as server:
            async with connect(f"{server.url}/?call_id=burst&listen_mode=caller"
                               "&sample_rate=8000") as ws:
                data = audio.tobytes()
                for i in range(1024):
                    await ws.send(data[i * FRAME_BYTES:(i + 1) * FRAME_BYTES])
            while "stats" not in got:
                await asyncio.sleep(0.01)

    run(main(), transport=transport)
    assert got["stats"].rate_limited_frames == 0
    assert np.array_equal(got["audio"], audio)


def test_max_audio_ahead_is_checked():
    for bad in (0.5, -1, "30", True):
        with pytest.raises(ValueError, match="max_audio_ahead"):
            StreamServer(max_audio_ahead=bad)
