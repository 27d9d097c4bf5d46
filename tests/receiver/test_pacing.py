"""Read coalescing: the event loop turns at most every ``coalesce_reads`` seconds while
calls are live; and however a reader waits in those turns (given up waits and cancelled
reader tasks included) it gets every sample."""
import asyncio
import time

import numpy as np
import pytest
from stream_testing import run
from test_receiver import check_exact

from piopiy_fast.receiver.pacing import MAX_COALESCING, coalescing_interval
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.simulator import simulate


async def loop_turns(seconds: float) -> int:
    """How many times the event loop came back to this task in ``seconds``."""
    turns = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0)
        turns += 1
    return turns


@pytest.mark.parametrize("coalesce, paced", [("auto", True), (0, False), (0.02, True)])
def test_the_loop_turns_at_most_every_interval_while_calls_are_live(transport, coalesce,
                                                                     paced):
    interval = coalescing_interval(coalesce, 0.05)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                coalesce_reads=coalesce) as server:
            idle = await loop_turns(0.2)
            call = asyncio.ensure_future(simulate(server.url, seconds=1.0, realtime=True))
            while not server.active_calls:
                await asyncio.sleep(0.01)
            live = await loop_turns(0.4)
            report = await call
            while server.active_calls:
                await asyncio.sleep(0.01)
            after = await loop_turns(0.2)
        return idle, live, after, report

    idle, live, after, report = run(main(), transport=transport)
    assert not report.failed
    # With no call the loop is never held back: thousands of turns in 0.2 s.
    assert idle > 500 and after > 500
    if paced:
        assert live <= 0.4 / interval + 3
    else:
        assert live > 500


def test_coalesce_reads_setting():
    assert MAX_COALESCING == 0.005
    assert coalescing_interval("auto", 0.05) == 0.005
    assert coalescing_interval("auto", 0.5) == 0.005
    assert coalescing_interval("auto", 0.02) == pytest.approx(0.002)
    assert coalescing_interval("auto", 0.0) == 0.0
    assert coalescing_interval(0.01, 0.05) == 0.01
    for bad in (-0.001, 0.2, "fast", True, None):
        with pytest.raises(ValueError, match="coalesce_reads must be 'auto' or from 0 to 0.1"):
            StreamServer(coalesce_reads=bad)


def one_real_time_call(transport, on_call, finished, seed):
    """Stream one real-time second of audio into a server running ``on_call``; return
    what was sent once ``finished()``."""
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=on_call) as server:
            report = await simulate(server.url, seconds=1.0, realtime=True, seed=seed)
            while not finished():
                await asyncio.sleep(0.01)
            return report

    return run(main(), transport=transport).calls[0]


def test_a_reader_that_gives_up_waits_loses_nothing(transport):
    """``asyncio.wait_for`` around each step of ``async for``: most steps time out (audio
    comes every 50 ms), and the audio is still exact."""
    received = {}
    timeouts = []

    async def on_call(call):
        parts = []
        steps = aiter(call.caller)
        gave_up = 0
        while True:
            try:
                chunk = await asyncio.wait_for(anext(steps), 0.003)
            except TimeoutError:
                gave_up += 1
                continue
            except StopAsyncIteration:
                break
            parts.append(chunk)
        timeouts.append(gave_up)
        received[call.call_id] = {"caller": np.concatenate(parts), "callee": np.empty(0)}

    sent = one_real_time_call(transport, on_call, finished=lambda: bool(timeouts), seed=3)
    check_exact(sent, received[sent.call_id])
    assert timeouts[0] > 10


def test_a_cancelled_reader_task_leaves_the_channel_to_the_next(transport):
    """A task reading a channel is cancelled mid-call; a new one reads on. Together they
    got every sample, in order."""
    received = {}

    async def on_call(call):
        first: list[np.ndarray] = []

        async def read_into(parts):
            async for chunk in call.caller:
                parts.append(chunk)

        task = asyncio.ensure_future(read_into(first))
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rest: list[np.ndarray] = []
        await read_into(rest)
        assert first and rest
        received[call.call_id] = {"caller": np.concatenate(first + rest),
                                  "callee": np.empty(0)}

    sent = one_real_time_call(transport, on_call, finished=lambda: bool(received), seed=4)
    check_exact(sent, received[sent.call_id])
