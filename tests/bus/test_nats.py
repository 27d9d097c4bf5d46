"""A receiver publishing to a real nats-server with JetStream, workers reading from it:
every sample where it was sent, and a bus that goes away mid-call costs a gap, not a
call. Needs nats-server (skipped with the reason when it is missing)."""
import asyncio
import urllib.request

import numpy as np
from stream_testing import UNIT, offline, run

from piopiy_fast import Simulator, StreamServer
from piopiy_fast.bus import NatsPublisher, NatsSubscriber

CHANNELS = ("caller", "callee")


async def read_call(call):
    """Per channel: (timeline position, samples) of every piece read."""
    async def read(name):
        reader = call.channel(name)
        pieces = []
        async for part in reader:
            pieces.append((reader.position - part.size, part.copy()))
        return pieces
    got = dict(zip(CHANNELS, await asyncio.gather(*(read(n) for n in CHANNELS)),
                   strict=True))
    await call.wait_closed()
    return got


async def take(subscriber, count, results):
    tasks = {}
    async for call in subscriber.calls():
        tasks[call.call_id] = (call, asyncio.ensure_future(read_call(call)))
        if len(tasks) == count:
            break
    for call_id, (call, task) in tasks.items():
        results[call_id] = (call, await task)


def test_every_sample_reaches_a_worker_in_place(nats_server):
    async def main():
        results = {}
        async with StreamServer("127.0.0.1", 0, publish=nats_server.url,
                                metrics_port=0) as server:
            async with NatsSubscriber(nats_server.url, group="t1") as subscriber:
                taking = asyncio.ensure_future(take(subscriber, 2, results))
                report = await Simulator(server.url + "/stream", calls=2,
                                         listen_mode="both", sample_rate=8000,
                                         seconds=1.3, seed=3).run()
                await asyncio.wait_for(taking, 20 * UNIT)
            stats = server.stats
            metrics = await asyncio.to_thread(scrape, server.metrics_port)
        return report, results, stats, metrics
    report, results, stats, metrics = run(main(), timeout=60)
    assert not report.failed
    messages = 0
    for sent in report.calls:
        call, got = results[sent.call_id]
        assert (call.layout, call.source_rate, call.rate) == ("stereo", 8000, 16000)
        assert call.channels == CHANNELS and not call.taken_over
        assert call.end["close_code"] == 1000 and call.stats["frames"] == 65
        for name in CHANNELS:
            want = offline(sent.sent(name), 8000, 16000)
            # 200 ms chunks at 16 kHz: 3200 samples each, the last one shorter.
            assert [p for p, _ in got[name]] == list(range(0, want.size, 3200))
            assert np.array_equal(np.concatenate([s for _, s in got[name]]), want)
            assert call.channel(name).gaps == []
            assert call.end["published"][name] == {"chunks": len(got[name]),
                                                   "samples": want.size}
            messages += len(got[name])
        messages += 2  # start, end
        messages += len(call.events)
    assert (stats.bus_published, stats.bus_dropped, stats.bus_unconfirmed) == (messages, 0, 0)
    assert stats.bus_in_flight_bytes == 0
    assert {name: value for name, value in metrics.items() if "_bus_" in name} == {
        "piopiy_fast_bus_published_total": messages, "piopiy_fast_bus_dropped_total": 0,
        "piopiy_fast_bus_dropped_bytes_total": 0, "piopiy_fast_bus_unconfirmed_total": 0,
        "piopiy_fast_bus_rejected_total": 0, "piopiy_fast_bus_reconnects_total": 0,
        "piopiy_fast_bus_in_flight_bytes": 0}


def scrape(port):
    """The server's /metrics, as {name: value} (no labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line and not line.startswith("#") and "{" not in line}


def test_the_bus_stops_mid_call_and_comes_back(nats_server):
    """The calls go on while nats-server is down; what was dropped is counted on the
    receiver and is a gap on the worker's timeline; publishing resumes."""
    async def main():
        publisher = NatsPublisher(nats_server.url, max_in_flight=1 << 16, max_backoff=0.3,
                                  ack_timeout=1.0)
        async with StreamServer("127.0.0.1", 0, publish=publisher) as server:
            sim = asyncio.ensure_future(Simulator(
                server.url + "/stream", calls=2, listen_mode="both", sample_rate=8000,
                seconds=6.0, seed=5, realtime=True).run())
            await asyncio.sleep(1.5)
            await asyncio.to_thread(nats_server.stop)
            await asyncio.sleep(2.0)
            during = server.stats
            assert during.active_calls == 2  # nothing waited for the bus
            await asyncio.to_thread(nats_server.start)
            report = await sim
            results = {}
            async with NatsSubscriber(nats_server.url, group="t2") as subscriber:
                await asyncio.wait_for(take(subscriber, 2, results), 20 * UNIT)
            await publisher.flush(5)
            stats = server.stats
        return report, results, during, stats
    report, results, during, stats = run(main(), timeout=90)
    assert not report.failed
    assert during.bus_dropped > 0
    assert stats.bus_reconnects >= 1 and stats.failed_calls == 0
    assert stats.bus_dropped == during.bus_dropped or stats.bus_dropped > during.bus_dropped
    gaps = 0
    for sent in report.calls:
        call, got = results[sent.call_id]
        assert call.end["close_code"] == 1000  # the call lived through the outage
        for name in CHANNELS:
            want = offline(sent.sent(name), 8000, 16000)
            reader = call.channel(name)
            # Every sample is read in its place, or in a gap the worker was told of.
            assert sum(s.size for _, s in got[name]) + reader.gap_samples == want.size
            for position, samples in got[name]:
                assert np.array_equal(samples, want[position:position + samples.size])
            assert reader.gaps and all(g.cause == "bus" for g in reader.gaps)
            gaps += sum(g.messages for g in reader.gaps)
            # The audio after the outage arrived: publishing resumed.
            assert got[name][-1][0] + got[name][-1][1].size == want.size
    # Every lost chunk is one the receiver dropped or never heard confirmed.
    assert 0 < gaps <= stats.bus_dropped + stats.bus_unconfirmed
