"""A call from the bus as its messages arrive: order, gaps, duplicates, takeovers,
acknowledgements; fed by hand, no bus."""
import asyncio

import numpy as np
from stream_testing import run

from piopiy_fast.bus.remote import Gap, RemoteCall
from piopiy_fast.bus.subjects import ChunkHeader

START = {"call_id": "c1", "rate": 8000, "channels": ["caller", "callee"], "audio": True,
         "listen_mode": "both", "layout": "stereo", "source_rate": 8000}


class Acks:
    def __init__(self):
        self.done = []

    def of(self, tag):
        async def ack():
            self.done.append(tag)
        return ack


def chunk(call, acks, channel, seq, position, n=100):
    samples = (np.arange(position, position + n) % 30000).astype("<i2")
    call.feed_audio(ChunkHeader("c1", channel, 8000, position, seq, 0.0), samples.tobytes(),
                    acks.of((channel, seq)))


def expected(start, stop):
    return (np.arange(start, stop) % 30000).astype(np.int16)


def test_chunks_in_order_with_a_gap_from_the_bus_and_the_end_counts():
    async def main():
        call, acks = RemoteCall(START), Acks()
        for seq, pos in ((0, 0), (1, 100), (4, 400), (5, 500)):
            chunk(call, acks, "caller", seq, pos)
        call.feed_end({"published": {"caller": {"chunks": 7, "samples": 700}}})
        got = []
        async for part in call.caller:
            got.append((call.caller.position - part.size, part.copy()))
        assert [p for p, _ in got] == [0, 100, 400, 500]
        for position, part in got:
            assert np.array_equal(part, expected(position, position + 100))
        assert call.caller.gaps == [Gap(200, 200, 2, "bus"), Gap(600, 100, 1, "bus")]
        assert call.caller.position == 600
        # Every chunk acknowledged, once it was read and the reader came back.
        assert acks.done == [("caller", s) for s in (0, 1, 4, 5)]
        assert [part.size async for part in call.callee] == []
        await asyncio.wait_for(call.settled(), 1)
    run(main())


def test_chunks_of_n_stop_short_before_a_gap():
    async def main():
        call, acks = RemoteCall(START), Acks()
        for seq, pos in ((0, 0), (1, 100), (3, 300)):
            chunk(call, acks, "callee", seq, pos)
        call.feed_end({"published": {"callee": {"chunks": 4, "samples": 400}}})
        sizes = [part.size async for part in call.callee.chunks(150)]
        assert sizes == [150, 50, 100]
    run(main())


def test_a_redelivered_chunk_is_read_once_and_a_takeover_starts_where_it_is():
    async def main():
        call, acks = RemoteCall(START, taken_over=True), Acks()
        for seq, pos in ((3, 300), (4, 400), (4, 400), (5, 500)):
            chunk(call, acks, "caller", seq, pos)
        call.feed_end({"published": {"caller": {"chunks": 6, "samples": 600}}})
        parts = [part.copy() async for part in call.caller]
        assert np.array_equal(np.concatenate(parts), expected(300, 600))
        assert call.caller.gaps == [] and call.caller.duplicates == 1
        assert sorted(acks.done) == [("caller", 3), ("caller", 4), ("caller", 4),
                                     ("caller", 5)]
    run(main())


def test_an_application_that_falls_behind_loses_the_oldest_as_a_gap():
    async def main():
        call, acks = RemoteCall(START, queue_seconds=0.05), Acks()  # 400 samples
        for seq in range(6):
            chunk(call, acks, "caller", seq, seq * 100)
        assert [g.position for g in call.caller.gaps] == [0, 100]
        assert call.caller.gaps[0] == Gap(0, 100, 1, "overrun")
        call.feed_end({"published": {"caller": {"chunks": 6, "samples": 600}}})
        parts = [part async for part in call.caller]
        assert call.caller.position == 600 and sum(p.size for p in parts) == 400
        assert len(acks.done) == 6
    run(main())


def test_on_chunk_and_events():
    async def main():
        call, acks = RemoteCall(START), Acks()
        seen, events = [], []
        call.feed_event({"event": {"event": "start"}})
        call.on_event(events.append)
        call.caller.on_chunk(lambda part: seen.append(part.size))
        chunk(call, acks, "caller", 0, 0)
        call.feed_event({"event": "dtmf 1"})
        chunk(call, acks, "caller", 1, 100)
        assert seen == [100, 100] and events == [{"event": "start"}, "dtmf 1"]
        await asyncio.sleep(0)
        assert acks.done == [("caller", 0), ("caller", 1)]
    run(main())
