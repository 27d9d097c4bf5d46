"""Text frames from a hostile peer: each attack stays in its call, is counted, and costs
bounded memory, while a good call beside it streams on sample for sample."""
import asyncio
import json

import numpy as np
import pytest
from stream_testing import Collector, offline, run
from websockets.asyncio.client import connect

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.simulator import Simulator
from piopiy_fast.stream.layout import HOLD_SECONDS

GOOD_SECONDS = 1.0


async def with_a_good_call(server, attack):
    """Run ``attack(url)`` while a good `both` call streams in real time; return the good
    call's report."""
    good = Simulator(server.url, listen_mode="both", seconds=GOOD_SECONDS, realtime=True,
                     call_id_prefix="good")
    report, attacked = await asyncio.gather(good.run(), attack(server.url))
    return report.calls[0], attacked


def attacked(transport, attack):
    """Serve, run ``attack`` beside a good call, wait for both calls to end; return the
    collector, the good call's report, what ``attack`` returned and the server's stats."""
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            sent, result = await with_a_good_call(server, attack)
            await collector.wait_for(2)
            return sent, result, server.stats

    sent, result, stats = run(main(), transport=transport)
    check_good(collector, sent)
    return collector, result, stats


def check_good(collector, sent):
    assert sent.error is None
    received = collector.audio[sent.call_id]
    for name in ("caller", "callee"):
        assert np.array_equal(received[name], offline(sent.sent(name), 8000, 16000)), name


def test_json_nested_past_the_limit_is_kept_as_text(transport):
    deep = "[" * 2000 + "]" * 2000  # 4 KB: well inside the frame limit

    async def attack(url):
        async with connect(f"{url}/?call_id=deep") as ws:
            await ws.send('{"event": "start", "sample_rate": 8000}')
            for _ in range(3):
                await ws.send(deep)
            await ws.send(b"\x00\x01" * 160)

    collector, _, _ = attacked(transport, attack)
    call = collector.done["deep"]
    assert call.error is None and call.close_info.clean
    assert call.events[1:] == [deep] * 3
    s = call.stats
    assert (s.events, s.unrecognised_events, s.frames) == (4, 3, 1)


def test_kept_events_are_bounded_in_bytes(transport):
    big = json.dumps({"pad": "x" * 60_000})

    async def attack(url):
        async with connect(f"{url}/?call_id=flood") as ws:
            for _ in range(10):
                await ws.send(big)

    collector, _, _ = attacked(transport, attack)
    call = collector.done["flood"]
    # 256 KiB of kept events: four of 60 KB fit, the other six are counted, not kept.
    assert len(call.events) == 4
    assert (call.stats.events, call.stats.events_dropped) == (10, 6)


def test_format_changes_are_capped_then_the_call_is_closed_1008(transport):
    async def attack(url):
        async with connect(f"{url}/?call_id=flip") as ws:
            await ws.send(b"\x00\x00" * 160)
            # Past the first half second (inside it a format named is a hint for the
            # audio held, not a change): the format is settled, then it flips.
            await asyncio.sleep(HOLD_SECONDS + 0.2)
            for i in range(40):
                rate = (8000, 16000)[i % 2 == 0]
                await ws.send(json.dumps({"event": "start", "sample_rate": rate}))
            await ws.wait_closed()
            return ws.close_code, ws.close_reason

    collector, closed, stats = attacked(transport, attack)
    assert closed == (1008, "more than 16 format changes")
    call = collector.done["flip"]
    assert call.stats.format_changes == 16
    assert call.error == "more than 16 format changes"
    assert stats.failed_calls == 1


@pytest.mark.parametrize("where", ["query", "event"])
def test_control_characters_in_call_ids_are_escaped(transport, where):
    collector = Collector()
    forged = "c1\n2026-01-01 00:00:00 INFO forged line\x1b[2J"

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            if where == "query":
                query = "c1%0A2026-01-01%2000:00:00%20INFO%20forged%20line%1B[2J"
                async with connect(f"{server.url}/?call_id={query}") as ws:
                    await ws.send(b"\x00\x00" * 160)
            else:
                async with connect(server.url) as ws:
                    await ws.send(json.dumps({"event": "start", "call_id": forged}))
            await collector.wait_for(1)

    run(main(), transport=transport)
    (call_id,) = collector.done
    assert call_id == "c1\\n2026-01-01 00:00:00 INFO forged line\\x1b[2J"
