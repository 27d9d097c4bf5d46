"""End to end over 127.0.0.1: what the simulator sends, through the receiver, equals
the core's offline resampling of the same signal, sample for sample."""

import asyncio
import json

import numpy as np
import pytest
from stream_testing import Collector, mask, masked_frame_header, offline, run
from websockets.asyncio.client import connect

from piopiy_fast import SignedURL
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.simulator import simulate
from piopiy_fast.simulator.synthetic import speech_like
from piopiy_fast.stream.layout import HOLD_SECONDS

AWKWARD_FRAMES = (17, 160, 509, 1, 99)


def check_exact(sent, received, target_rate=16000):
    for name in ("caller", "callee"):
        if name in sent.audio:
            expected = offline(sent.sent(name), sent.sample_rate, target_rate)
            assert np.array_equal(received[name], expected), name
        else:
            assert received[name].size == 0, name


@pytest.mark.parametrize("rate", [8000, 12000, 16000])
@pytest.mark.parametrize("mode", ["caller", "callee", "both"])
def test_sample_exact(mode, rate, transport):
    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            report = await simulate(server.url, listen_mode=mode, sample_rate=rate,
                                    seconds=0.5, frame_samples=AWKWARD_FRAMES, seed=rate)
            await collector.wait_for(1)
        return report.calls[0], collector

    sent, collector = run(main(), transport=transport)
    call = collector.done[sent.call_id]
    assert (call.listen_mode, call.source_rate, call.target_rate) == (mode, rate, 16000)
    check_exact(sent, collector.audio[sent.call_id])
    s = call.stats
    assert (s.frames, s.bytes, s.decode_errors, s.overruns, s.format_changes) == (
        sent.frames, sent.bytes, 0, 0, 0)
    assert s.received_seconds == 0.5
    assert call.close_info.code == 1000


def test_hundred_concurrent_calls_lose_nothing(transport):
    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            report = await simulate(server.url, calls=100, listen_mode="both",
                                    sample_rate=8000, seconds=0.4, seed=7)
            await collector.wait_for(100)
            stats = server.stats
        return report, collector, stats

    report, collector, stats = run(main(), transport=transport)
    assert not report.failed
    assert len(collector.done) == 100
    for sent in report.calls:
        check_exact(sent, collector.audio[sent.call_id])
    assert (stats.total_calls, stats.failed_calls, stats.frames, stats.bytes,
            stats.decode_errors, stats.overruns) == (
        100, 0, report.frames, report.bytes, 0, 0)


def test_format_from_query_parameters(transport):
    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            url = f"{server.url}/stream?listen_mode=both&voice_quality=12000&call_id=q-7"
            report = await simulate(url, listen_mode="both", sample_rate=12000, seconds=0.3,
                                    start_event=False)
            await collector.wait_for(1)
        return report.calls[0], collector

    sent, collector = run(main(), transport=transport)
    call = collector.done["q-7"]
    assert (call.listen_mode, call.source_rate, call.route) == ("both", 12000, "/stream")
    check_exact(sent, collector.audio["q-7"])


def test_format_from_server_defaults(transport):
    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                listen_mode="callee", source_rate=16000,
                                target_rate=8000, on_call=collector) as server:
            report = await simulate(server.url, listen_mode="callee", sample_rate=16000,
                                    seconds=0.3, start_event=False)
            await collector.wait_for(1)
        return report.calls[0], collector

    sent, collector = run(main(), transport=transport)
    [call] = collector.done.values()
    assert (call.listen_mode, call.source_rate, call.call_id) == ("callee", 16000, "call-1")
    check_exact(sent, collector.audio[call.call_id], target_rate=8000)


def test_start_event_beats_query_parameters(transport):
    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            url = f"{server.url}/s?listen_mode=both&voice_quality=8000"
            report = await simulate(url, listen_mode="caller", sample_rate=16000,
                                    seconds=0.2)
            await collector.wait_for(1)
        return report.calls[0], collector

    sent, collector = run(main(), transport=transport)
    call = collector.done[sent.call_id]
    assert (call.listen_mode, call.source_rate) == ("caller", 16000)
    check_exact(sent, collector.audio[sent.call_id])


def test_signed_url_gives_the_format(transport):
    signer = SignedURL("s" * 32)

    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                auth=signer, on_call=collector) as server:
            url = signer.sign(f"{server.url}/media",
                              {"listen_mode": "both", "voice_quality": 16000,
                               "call_ref": "order-42"}, 60)
            report = await simulate(url, listen_mode="both", sample_rate=16000, seconds=0.2,
                                    start_event=False)
            await collector.wait_for(1)
        return report.calls[0], collector

    sent, collector = run(main(), transport=transport)
    call = collector.done["order-42"]
    assert (call.listen_mode, call.source_rate, call.ref) == ("both", 16000, "order-42")
    check_exact(sent, collector.audio["order-42"])


def test_swap_channels(transport):
    async def main():
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                swap_channels=True, on_call=collector) as server:
            report = await simulate(server.url, listen_mode="both", seconds=0.2)
            await collector.wait_for(1)
        return report.calls[0], collector

    sent, collector = run(main(), transport=transport)
    got = collector.audio[sent.call_id]
    assert np.array_equal(got["callee"], offline(sent.sent("caller"), 8000, 16000))
    assert np.array_equal(got["caller"], offline(sent.sent("callee"), 8000, 16000))


def test_blocking_reader_in_a_worker_thread(transport):
    received = {}

    def read_all(call):
        return np.concatenate(list(call.caller.iter_blocking(333)))

    async def on_call(call):
        received[call.call_id] = await asyncio.to_thread(read_all, call)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            report = await simulate(server.url, calls=3, seconds=0.3, frame_samples=(160, 7))
            while len(received) < 3:
                await asyncio.sleep(0.005)
        return report

    report = run(main(), transport=transport)
    for sent in report.calls:
        assert np.array_equal(received[sent.call_id], offline(sent.sent("caller"), 8000, 16000))


def test_read_blocking_times_out_and_reports_the_end(transport):
    results = []

    def reader(call):
        results.append(call.caller.read_blocking(10, timeout=0.05))  # no audio yet
        results.append(call.caller.ended)

    async def on_call(call):
        await asyncio.to_thread(reader, call)
        await call.wait_closed()
        results.append(call.callee.read_blocking(10, timeout=5))  # never had audio
        results.append(call.callee.ended)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            async with connect(server.url) as ws:
                while len(results) < 2:
                    await asyncio.sleep(0.005)
                await ws.send(b"\x00\x00" * 160)
            while len(results) < 4:
                await asyncio.sleep(0.005)

    run(main(), transport=transport)
    assert results[0].size == 0 and results[1] is False
    assert results[2].size == 0 and results[3] is True


def test_callback_reader(transport):
    chunks = []

    def on_call(call):
        call.caller.on_chunk(chunks.append)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            report = await simulate(server.url, seconds=0.3, sample_rate=12000)
        return report.calls[0]

    sent = run(main(), transport=transport)
    assert np.array_equal(np.concatenate(chunks), offline(sent.sent("caller"), 12000, 16000))


def test_fixed_size_chunks(transport):
    sizes = []
    parts = []

    async def on_call(call):
        async for chunk in call.caller.chunks(320):
            sizes.append(chunk.size)
            parts.append(chunk)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            report = await simulate(server.url, seconds=0.3, frame_samples=AWKWARD_FRAMES)
        return report.calls[0]

    sent = run(main(), transport=transport)
    expected = offline(sent.sent("caller"), 8000, 16000)
    assert np.array_equal(np.concatenate(parts), expected)
    # a stream that ends on a whole chunk (aligned, 0.3 s does) has no short one after it
    assert sizes == [320] * (expected.size // 320) + [expected.size % 320] * (
        expected.size % 320 > 0)


def test_format_change_mid_call(transport):
    first = speech_like(0.2, 8000, 1)
    second = speech_like(0.2, 16000, 2)
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            async with connect(server.url) as ws:
                await ws.send(json.dumps({"event": "start", "call_id": "fc",
                                          "sample_rate": 8000, "listen_mode": "caller"}))
                for i in range(0, first.size, 160):
                    await ws.send(first[i:i + 160].tobytes())
                # Past the hold: a format named inside it describes the audio held so far
                # (metadata that came after the first audio), not a change.
                await asyncio.sleep(HOLD_SECONDS + 0.2)
                await ws.send(json.dumps({"event": "media_format", "sample_rate": 16000}))
                for i in range(0, second.size, 320):
                    await ws.send(second[i:i + 320].tobytes())
            await collector.wait_for(1)

    run(main(), transport=transport)
    call = collector.done["fc"]
    expected = np.concatenate([offline(first, 8000, 16000), second])
    assert np.array_equal(collector.audio["fc"]["caller"], expected)
    s = call.stats
    assert (s.format_changes, s.frames, s.bytes, s.received_seconds) == (
        1, 20, first.nbytes + second.nbytes, pytest.approx(0.4))
    assert call.source_rate == 16000


def test_bad_frame_is_contained(transport):
    signal = speech_like(0.2, 8000, 3)
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            neighbour = asyncio.ensure_future(simulate(server.url, seconds=0.3, seed=5))
            async with connect(server.url) as ws:
                await ws.send('{"call_id": "bad", "listen_mode": "both"}')
                pairs = np.repeat(signal, 2)
                await ws.send(pairs[:320].tobytes())
                await ws.send(b"\x01\x02\x03")      # not a whole sample
                await ws.send(b"\x01\x02\x03\x04\x05\x06")  # whole samples, half a pair
                await ws.send(pairs[320:].tobytes())
            report = await neighbour
            await collector.wait_for(2)
        return report.calls[0]

    neighbour = run(main(), transport=transport)
    call = collector.done["bad"]
    expected = offline(signal, 8000, 16000)
    assert np.array_equal(collector.audio["bad"]["caller"], expected)
    assert np.array_equal(collector.audio["bad"]["callee"], expected)
    s = call.stats
    assert (s.frames, s.decode_errors) == (2, 2)  # frames counts the frames used
    assert call.close_info.code == 1000
    check_exact(neighbour, collector.audio[neighbour.call_id])


def test_call_that_drops_mid_frame(transport):
    signal = speech_like(0.2, 8000, 4)
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            ws = await connect(server.url)
            await ws.send('{"event": "start", "call_id": "cut"}')
            for i in range(0, signal.size, 160):
                await ws.send(signal[i:i + 160].tobytes())
            # Half of a 640-byte binary frame, then the TCP connection is gone.
            partial = np.arange(320, dtype=np.int16).tobytes()
            ws.transport.write(masked_frame_header(0x2, len(partial)) + mask(partial[:300]))
            ws.transport.abort()
            await collector.wait_for(1)
            # The server goes on serving.
            report = await simulate(server.url, seconds=0.1, call_id_prefix="after")
            await collector.wait_for(2)
            stats = server.stats
        return report.calls[0], stats

    after, stats = run(main(), transport=transport)
    call = collector.done["cut"]
    assert np.array_equal(collector.audio["cut"]["caller"], offline(signal, 8000, 16000))
    assert call.close_info.code == 1006 and not call.close_info.clean
    assert call.stats.frames == 10
    check_exact(after, collector.audio[after.call_id])
    assert (stats.total_calls, stats.failed_calls) == (2, 1)


def test_text_only_call(transport):
    seen = []
    collector = Collector()

    async def on_call(call):
        call.on_event(seen.append)
        streamed = [event async for event in call.iter_events()]
        await collector(call)
        collector.audio[call.call_id]["streamed"] = streamed

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            async with connect(server.url) as ws:
                await ws.send("metadata:v1")
                await ws.send('{"event": "start", "cmiuuid": "t-1", "from": "9100"}')
                await ws.send('{"something": "else", "to": 9200, "from": "9999"}')
                await ws.send('{"event": "stop"}')
            await collector.wait_for(1)

    run(main(), transport=transport)
    call = collector.done["t-1"]
    expected = ["metadata:v1", {"event": "start", "cmiuuid": "t-1", "from": "9100"},
                {"something": "else", "to": 9200, "from": "9999"}, {"event": "stop"}]
    assert call.events == expected
    assert seen == expected
    assert collector.audio["t-1"]["streamed"] == expected
    assert collector.audio["t-1"]["caller"].size == 0
    assert collector.audio["t-1"]["callee"].size == 0
    assert not call.audio_started
    s = call.stats
    assert (s.frames, s.events, s.unrecognised_events, s.first_frame_time) == (0, 4, 1, None)
    # The first event naming each number wins, as for the call id.
    assert (call.from_number, call.to_number) == ("9100", "9200")
    assert call.close_info.code == 1000


def test_one_real_time_call(transport):
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector) as server:
            report = await simulate(server.url, seconds=0.4, realtime=True)
            await collector.wait_for(1)
        return report

    report = run(main(), transport=transport)
    sent = report.calls[0]
    s = collector.done[sent.call_id].stats
    # 20 frames of 20 ms: the last one leaves 380 ms after the first.
    assert 0.36 <= s.last_frame_time - s.first_frame_time < 0.6
    assert report.wall_seconds >= 0.38
    assert s.late_frames == 0
    check_exact(sent, collector.audio[sent.call_id])


def test_a_burst_cannot_outrun_its_readers(transport):
    """300 frames in one TCP write, rings of about 50 frames: the receiver lets the
    waiting readers run before the rings fill, so nothing is lost."""
    signal = speech_like(6.0, 8000, 6)
    pairs = np.repeat(signal, 2)
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, ring_seconds=1.0,
                                on_call=collector) as server:
            async with connect(f"{server.url}/?listen_mode=both&call_id=burst") as ws:
                while not collector.calls:
                    await asyncio.sleep(0.005)
                burst = b"".join(
                    masked_frame_header(0x2, 640) + mask(pairs[i:i + 320].tobytes())
                    for i in range(0, pairs.size, 320))
                ws.transport.write(burst)
            await collector.wait_for(1)

    run(main(), transport=transport)
    call = collector.done["burst"]
    assert (call.stats.frames, call.stats.overruns) == (300, 0)
    expected = offline(signal, 8000, 16000)
    assert np.array_equal(collector.audio["burst"]["caller"], expected)
    assert np.array_equal(collector.audio["burst"]["callee"], expected)


def test_fragmented_messages(transport):
    signal = speech_like(0.1, 8000, 8)
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            async with connect(server.url) as ws:
                await ws.send(['{"call_id": ', '"frag"}'])
                data = signal.tobytes()
                await ws.send([data[:101], data[101:1001], data[1001:]])
            await collector.wait_for(1)

    run(main(), transport=transport)
    call = collector.done["frag"]
    assert call.events == [{"call_id": "frag"}]
    assert call.stats.frames == 1
    assert np.array_equal(collector.audio["frag"]["caller"], offline(signal, 8000, 16000))


def test_picows_on_the_default_event_loop():
    """uvloop is optional: picows on asyncio's own loop is exact too."""
    pytest.importorskip("picows")
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport="picows",
                                on_call=collector) as server:
            report = await simulate(server.url, calls=10, listen_mode="both", seconds=0.3,
                                    frame_samples=AWKWARD_FRAMES, seed=9)
            await collector.wait_for(10)
        return report

    report = run(main())
    assert not report.failed
    for sent in report.calls:
        check_exact(sent, collector.audio[sent.call_id])


@pytest.mark.parametrize("server_latency,reader_latency,most,least", [
    (0.25, None, 12, 2),   # the server's clock: about one chunk per 0.25 s
    (0.25, 0.0, None, 26),  # a reader asking for every frame: about one per 20 ms
    (0.0, 0.25, 12, 2),     # and a reader's own clock on a per-frame server
])
def test_readers_are_woken_by_the_clock(transport, server_latency, reader_latency, most,
                                        least):
    """1 s of real-time audio (50 frames): how many chunks `async for` yields shows how
    often the reader was woken; the audio is exact either way."""
    chunks = []
    received = {}

    async def on_call(call):
        if reader_latency is not None:
            call.caller.latency = reader_latency
        parts = []
        async for chunk in call.caller:
            parts.append(chunk)
        chunks.append(len(parts))
        received[call.call_id] = {"caller": np.concatenate(parts), "callee": np.empty(0)}

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, latency=server_latency,
                                on_call=on_call) as server:
            report = await simulate(server.url, seconds=1.0, realtime=True)
            while not chunks:
                await asyncio.sleep(0.01)
            return report

    report = run(main(), transport=transport)
    sent = report.calls[0]
    check_exact(sent, received[sent.call_id])
    assert chunks[0] >= least
    if most is not None:
        assert chunks[0] <= most


def test_latency_is_checked():
    with pytest.raises(ValueError, match="latency must be from 0 to 1 second"):
        StreamServer(latency=-0.1)
    with pytest.raises(ValueError, match="latency must be from 0 to 1 second"):
        StreamServer(latency="fast")
