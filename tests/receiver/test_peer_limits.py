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
    metrics = {m.name: m.samples[0].value for m in ServerCollector(lambda: stats).collect()
               if m.samples}
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


async def idle_peer(port, sends=b""):
    """A TCP connection that sends ``sends`` (nothing, or half a request) and no more."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if sends:
        writer.write(sends)
        await writer.drain()
    return reader, writer


async def dropped_after(reader, limit):
    """Seconds until the server ends the connection (EOF or reset); fails after limit."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        while await asyncio.wait_for(reader.read(1024), limit):
            pass
    except ConnectionError:
        pass
    return loop.time() - start


async def status_of(url):
    from websockets.exceptions import InvalidStatus
    try:
        async with connect(url, open_timeout=5):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


HALF_A_REQUEST = b"GET /?call_id=slow HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


def test_connections_in_their_handshake_hold_call_slots_until_the_open_timeout(transport):
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, max_calls=4,
                                open_timeout=1.0) as server:
            peers = [await idle_peer(server.port) for _ in range(2)]
            peers += [await idle_peer(server.port, HALF_A_REQUEST) for _ in range(2)]
            await asyncio.sleep(0.2)
            # The table is full of peers that never finish a handshake: a new call is
            # answered 503 at once, not left to time out.
            busy = await asyncio.wait_for(status_of(server.url), 0.9)
            # Each idle peer is dropped within the open timeout, and its slot freed.
            waited = await asyncio.gather(*(dropped_after(r, 5.0) for r, _ in peers))
            for _, writer in peers:
                writer.close()
            await asyncio.sleep(0.1)
            admitted = await status_of(f"{server.url}/?call_id=good")
            return busy, waited, admitted, server.stats.refused_by_reason.get("busy", 0)

    busy, waited, admitted, refused = run(main(), transport=transport)
    assert busy == 503
    assert all(seconds < 2.5 for seconds in waited), waited
    assert admitted == 101
    assert refused == 1


def test_a_refused_connection_gets_its_503_even_with_its_request_on_the_way(transport):
    """Refused at accept, before its request arrives: the answer is not lost to a
    reset, and the live calls go on."""
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, max_calls=1) as server:
            async with connect(f"{server.url}/?call_id=live") as live:
                statuses = [await status_of(server.url) for _ in range(5)]
                await live.send(b"\x00\x01" * 160)
                await live.ping()
            return statuses, server.stats.refused_by_reason.get("busy", 0)

    statuses, refused = run(main(), transport=transport)
    assert statuses == [503] * 5
    assert refused == 5


def test_open_timeout_is_checked():
    for bad in (0, -1.0, "10", True):
        with pytest.raises(ValueError, match="open_timeout"):
            StreamServer(open_timeout=bad)
