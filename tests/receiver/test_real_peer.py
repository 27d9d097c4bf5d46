"""The receiver against the peer it really has: FreeSWITCH mod_audio_stream's client,
both generations, emulated from its source, over real sockets on 127.0.0.1.

Every layout the module sends (mono, mixed, stereo) under every URL a stream action
may have written (listen_mode caller, both, or no query at all), at 8 and 16 kHz, on
every transport: the receiver must settle the format the stream really has and
deliver each channel sample for sample. Then the module's habits: audio queued while
connecting and flushed before the metadata, the older client's reconnect after a
drop (the call goes on) and after the receiver ends a call (it stays ended).
"""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from http_recorder import HttpRecorder
from stream_testing import offline, run

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.sdk.client import RestClient
from piopiy_fast.simulator.conversation import default_script, scripted
from piopiy_fast.simulator.mod_audio_stream import AudioStream, StreamStart

SECONDS = 0.8


class Calls:
    """An ``on_call`` that reads every channel a call's format fills."""

    def __init__(self) -> None:
        self.audio: dict[str, dict[str, np.ndarray]] = {}
        self.done: dict[str, object] = {}
        self.handed: list[object] = []

    async def __call__(self, call) -> None:
        self.handed.append(call)
        await call.wait_audio()
        names = ("caller", "callee", "mix")
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}

        async def read(name):
            async for chunk in call.channel(name):
                parts[name].append(chunk)

        await asyncio.gather(*(read(name) for name in names))
        self.audio[call.call_id] = {
            name: np.concatenate(p) if p else np.zeros(0, np.int16) for name, p in parts.items()}
        self.done[call.call_id] = call

    async def wait_for(self, count: int) -> None:
        while len(self.done) < count:
            await asyncio.sleep(0.01)


def url_for(base: str, url: str, rate: int) -> str:
    if url == "none":
        return f"{base}/stream"
    return f"{base}/stream?listen_mode={url}&voice_quality={rate}"


def expected(layout: str, url: str, rate: int) -> tuple[tuple[str, str, int], dict[str, str]]:
    """What the receiver must make of the stream: (listen_mode, layout, rate), and for
    each channel it fills, the channel of the module's stream it carries."""
    if layout == "stereo":
        return ("both", "stereo", rate), {"caller": "caller", "callee": "callee"}
    sent = "caller" if layout == "mono" else "mixed"
    if url == "both":
        # One channel under listen_mode=both is the two parties in one: the mix.
        return ("both", "mixed", rate), {"mix": sent}
    # One channel under a one-party URL (or none) is that party; a mix cannot be told
    # from one party's voice, and is delivered as the URL says.
    return ("caller", "mono", rate), {"caller": sent}


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("url", ["caller", "both", "none"])
@pytest.mark.parametrize("layout", ["mono", "mixed", "stereo"])
def test_every_layout_url_and_rate(transport, layout, url, rate):
    conv = scripted(default_script(SECONDS, 3), rate, SECONDS, seed=3)
    client = "current" if rate == 8000 else "ixwebsocket"
    calls = Calls()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=calls) as server:
            start = StreamStart.parse(url_for(server.url, url, rate), layout, str(rate),
                                      json.dumps({"call_id": "fs-1"}))
            stream = AudioStream(start, conv, client=client, realtime=True,
                                 stop_text='{"event": "stop"}')
            await stream.run()
            await calls.wait_for(1)
        return stream

    stream = run(main(), transport=transport, timeout=30)
    call = calls.done["fs-1"]
    (mode, found_layout, found_rate), channels = expected(layout, url, rate)
    assert (call.listen_mode, call.layout, call.source_rate) == (mode, found_layout, found_rate)
    sent = stream.sent_audio()
    received = calls.audio["fs-1"]
    for name in ("caller", "callee", "mix"):
        if name in channels:
            want = offline(sent[channels[name]], rate, 16000)
            assert np.array_equal(received[name], want), name
        else:
            assert received[name].size == 0, name
    s = call.stats
    assert (s.decode_errors, s.overruns, s.format_changes) == (0, 0, 0)
    assert s.frames == stream.events.frames
    assert call.events[-1] == {"event": "stop"}
    assert call.close_info.code == 1000


def test_audio_queued_while_connecting_comes_first_and_is_kept(transport):
    # The current client queues what the call says while it connects (here 30 frames)
    # and flushes it right after the 101, before the metadata.
    conv = scripted(default_script(1.0, 8), 8000, 1.0, seed=8)
    calls = Calls()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=calls) as server:
            start = StreamStart.parse(f"{server.url}/stream?listen_mode=both", "stereo", "8k",
                                      json.dumps({"cmiuuid": "queued-1"}))
            stream = AudioStream(start, conv, client="current", realtime=False,
                                 preconnect_frames=30)
            await stream.run()
            await calls.wait_for(1)
        return stream

    stream = run(main(), transport=transport)
    call = calls.done["queued-1"]
    assert (call.layout, call.stats.format_changes) == ("stereo", 0)
    sent = stream.sent_audio()
    for name in ("caller", "callee"):
        assert np.array_equal(calls.audio["queued-1"][name], offline(sent[name], 8000, 16000))
    assert call.events == [{"cmiuuid": "queued-1"}]


class Proxy:
    """A TCP relay on 127.0.0.1 whose connections the test can cut, as a network does."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.pipes: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.pipes += [writer, up_writer]

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for w in self.pipes:
            w.transport.abort()
        self.pipes.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()


def test_a_dropped_call_goes_on_when_the_older_client_reconnects(transport):
    conv = scripted(default_script(2.0, 4), 8000, 2.0, seed=4)
    calls = Calls()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=calls,
                                reconnect_grace=5.0) as server:
            proxy = Proxy(server.port)
            port = await proxy.start()
            start = StreamStart.parse(f"ws://127.0.0.1:{port}/stream?listen_mode=both",
                                      "stereo", "8k", json.dumps({"call_id": "drop-1"}))
            stream = AudioStream(start, conv, client="ixwebsocket", realtime=True)
            task = asyncio.ensure_future(stream.run())
            await asyncio.sleep(0.8)
            proxy.cut()                               # the network drops the connection
            await task
            await calls.wait_for(1)
            stats = server.stats
            await proxy.close()
        return stream, stats

    stream, stats = run(main(), transport=transport, timeout=30)
    assert stream.events.connections == 2
    [call] = calls.handed
    assert calls.done == {"drop-1": call}
    assert call.stats.reconnects == 1
    assert (stats.total_calls, stats.resumed_calls, stats.failed_calls) == (1, 1, 0)
    # Both connections' audio, in one stream: the resampler went on across the gap.
    # Frames in flight when the network dropped are lost (the client wrote them); which
    # ones is the one thing not known, so it is looked for.
    lost = stream.events.frames - call.stats.frames
    assert 0 <= lost <= 3
    sent = stream.sent_audio()
    per = stream.frame_samples
    for name in ("caller", "callee"):
        got = calls.audio["drop-1"][name]
        candidates = [np.delete(sent[name], np.s_[i * per:(i + lost) * per])
                      for i in range(stream.events.frames - lost + 1)] if lost else [sent[name]]
        assert any(np.array_equal(got, offline(c, 8000, 16000)) for c in candidates), name
    assert call.close_info.code == 1000


def test_a_call_past_its_length_stays_ended_against_reconnects(transport):
    conv = scripted(default_script(4.0, 6), 8000, 4.0, seed=6)
    calls = Calls()

    async def main():
        with HttpRecorder() as platform:
            rest = RestClient(1, "token", base_url=platform.url)
            async with StreamServer("127.0.0.1", 0, transport=transport, on_call=calls,
                                    max_call_seconds=1.0, rest_client=rest) as server:
                start = StreamStart.parse(f"{server.url}/stream?listen_mode=both", "stereo",
                                          "8k", json.dumps({"cmiuuid": "long-1"}))
                stream = AudioStream(start, conv, client="ixwebsocket", realtime=True)
                await stream.run()
                await calls.wait_for(1)
                stats = server.stats
            hangups = [r.json for r in platform.requests]
        return stream, stats, hangups

    stream, stats, hangups = run(main(), transport=transport, timeout=30)
    # The client came back at once, again and again; every time it was turned away.
    assert stream.events.connections >= 2
    assert [c.call_id for c in calls.handed] == ["long-1"]
    call = calls.done["long-1"]
    assert call.close_info.code == 1008
    assert stats.total_calls == 1
    assert stats.refused_by_reason.get("ended", 0) == stream.events.connections - 1
    assert hangups == [{"appid": 1, "secret": "token", "cmiuuid": "long-1",
                        "action": "hangup"}]
