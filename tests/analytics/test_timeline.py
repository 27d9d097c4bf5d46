"""Positions on the call's timeline, through a real server on 127.0.0.1: caller and
callee chunks align sample for sample after an overrun and after a pause, and the
gaps are reported."""

import asyncio

import numpy as np
from stream_testing import run
from websockets.asyncio.client import connect

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.stream.wire import StreamFormat, start_event

RATE = 8000
FRAME = 160  # 20 ms


def signal(seconds, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 3000, int(seconds * RATE))).clip(-32768, 32767).astype(np.int16)


def stereo_frames(caller, callee):
    both = np.empty(2 * len(caller), dtype="<i2")
    both[0::2], both[1::2] = caller, callee
    data = both.tobytes()
    return [data[i:i + 4 * FRAME] for i in range(0, len(data), 4 * FRAME)]


async def open_call(ws, call_id):
    await ws.send(start_event(call_id, StreamFormat("both", RATE, "stereo")))


async def send_paced(ws, frames):
    """Frames on a real-time schedule (a little ahead of it), as the platform sends."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i, frame in enumerate(frames):
        delay = start + i * FRAME / RATE - 0.1 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(frame)


async def positioned(reader, n=None):
    return [(c.position, c.samples) for c in [c async for c in reader.positioned(n)]]


def timeline_of(chunks):
    """{position: sample} of positioned chunks (contiguous within each)."""
    out = {}
    for position, samples in chunks:
        for k, v in enumerate(samples.tolist()):
            out[position + k] = v
    return out


def test_channels_align_after_a_pause():
    async def main():
        calls = []
        server = StreamServer("127.0.0.1", 0, layout="stereo", on_call=calls.append)
        async with server:
            url = f"{server.url}/stream?listen_mode=both&voice_quality={RATE}&call_id=p-1"
            same = signal(2.0, 1)
            frames = stereo_frames(same, same)
            async with connect(url) as ws:
                await open_call(ws, "p-1")
                await send_paced(ws, frames[:50])  # 1 s
                while not calls or not calls[0].audio_started:
                    await asyncio.sleep(0.01)
                call = calls[0]
                await call.pause()
                await asyncio.sleep(1.6)           # the audio before ran out 0.6 s ago
                await call.resume()
                await send_paced(ws, frames[50:])
            await call.wait_closed()
            caller, callee = await asyncio.gather(positioned(call.caller),
                                                  positioned(call.callee, 321))
            return call, caller, callee

    call, caller, callee = run(main())
    gaps = call.timeline.gaps
    assert [g.kind for g in gaps] == ["pause"], gaps
    assert 0.4 * 16000 < gaps[0].samples < 1.6 * 16000
    assert call.stats.late_frames == 0
    a, b = timeline_of(caller), timeline_of(callee)
    assert a == b   # the same positions, the same samples
    # 2 s of audio at 16 kHz (resampler's delay and tail included) plus the gap
    assert max(a) + 1 == sum(len(s) for _, s in caller) + gaps[0].samples
    # the gap starts a chunk: no chunk straddles it
    assert any(p == gaps[0].end for p, _ in caller)
    assert call.caller.position == call.callee.position == max(a) + 1


def test_channels_align_after_an_overrun_and_a_late_frame():
    async def main():
        calls, tasks = [], []

        def on_call(call):
            calls.append(call)
            tasks.append(asyncio.ensure_future(positioned(call.callee)))

        server = StreamServer("127.0.0.1", 0, layout="stereo", ring_seconds=0.5,
                              on_call=on_call)
        async with server:
            url = f"{server.url}/stream?listen_mode=both&voice_quality={RATE}&call_id=o-1"
            same = signal(3.0, 2)
            frames = stereo_frames(same, same)
            async with connect(url) as ws:
                await open_call(ws, "o-1")
                await send_paced(ws, frames[:100])
                await asyncio.sleep(0.6)           # late: the audio ran out 0.5 s ago
                await send_paced(ws, frames[100:])
            call = calls[0]
            await call.wait_closed()
            # the caller is read only now: its ring kept the last 0.5 s
            caller = await positioned(call.caller)
            return call, caller, await tasks[0]

    call, caller, callee = run(main())
    assert call.stats.overruns_by_channel["caller"] > 0
    assert call.stats.overruns_by_channel["callee"] == 0
    assert [g.kind for g in call.timeline.gaps] == ["late"]
    a, b = timeline_of(caller), timeline_of(callee)
    assert 0 < len(a) < len(b)
    assert min(a) > call.timeline.gaps[0].end  # only the end was kept
    assert all(b[p] == v for p, v in a.items())   # what the caller kept, aligned
    assert max(a) == max(b)
