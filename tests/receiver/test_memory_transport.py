"""The receiver driven through the in-memory transport: its real admission, calls and
readers, no socket. What an application's own tests can use too."""
from __future__ import annotations

import asyncio
import json
import resource

import numpy as np
from stream_testing import offline, run

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.receiver.transports.memory import MemoryTransport
from piopiy_fast.simulator.synthetic import speech_like

FRAME = 320  # bytes: 20 ms of 8 kHz mono


def test_a_call_through_memory_is_sample_exact():
    voice = speech_like(1.0, 8000, 2)
    got: dict[str, np.ndarray] = {}

    async def on_call(call):
        parts = [chunk async for chunk in call.caller]
        got[call.call_id] = np.concatenate(parts)

    async def main():
        transport = MemoryTransport()
        async with StreamServer(transport=transport, on_call=on_call) as server:
            peer = await transport.connect("/stream?listen_mode=caller&voice_quality=8000")
            await peer.send(json.dumps({"call_id": "mem-1"}))
            data = voice.astype("<i2").tobytes()
            for i in range(0, len(data), FRAME):
                await peer.send(data[i:i + FRAME])
            info = await peer.close()
            while server.active_calls or "mem-1" not in got:
                await asyncio.sleep(0.01)
            return info, server.stats

    info, stats = run(main())
    assert (info.code, info.clean) == (1000, True)
    assert np.array_equal(got["mem-1"], offline(voice, 8000, 16000))
    assert (stats.total_calls, stats.frames, stats.failed_calls) == (1, 50, 0)


def test_refusals_and_replies_through_memory():
    async def on_call(call):
        await call.send_pcmo([{"action": "hangup"}])
        await call.close(1000, "done")

    async def main():
        transport = MemoryTransport()
        async with StreamServer(transport=transport, auth="secret-token",
                                on_call=on_call) as server:
            refused = await transport.connect("/stream")
            peer = await transport.connect("/stream?token=secret-token&call_id=m-2")
            await peer.send('{"event": "start"}')
            info = await peer.closed
            return refused.refused, peer.received, info, server.stats

    refused, received, info, stats = run(main())
    assert refused.status == 401
    assert received == ['[{"action": "hangup"}]']
    assert (info.code, info.reason) == (1000, "done")
    assert stats.refused_by_reason == {"unauthorized": 1}


def test_a_server_changes_nothing_in_the_process_until_it_runs():
    # No open-file limit raised, no exception handler replaced by constructing one; a
    # running server's handler is taken back when it closes.
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    StreamServer()
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before

    async def main():
        loop = asyncio.get_running_loop()
        mine = loop.get_exception_handler()
        async with StreamServer(transport=MemoryTransport()):
            during = loop.get_exception_handler()
        return mine, during, loop.get_exception_handler()

    mine, during, after = run(main())
    assert during is not mine and after is mine
