"""The picows transport's frame path: compiled when this build has the listener and
the installed picows is the release it was built with, in Python otherwise."""
import asyncio
import json
import logging
import time
from importlib import resources

import numpy as np
import pytest
from stream_testing import Collector, run

pytest.importorskip("picows")

from picows.picows import WSMsgType, _make_test_ws_frame  # noqa: E402

from piopiy_fast import audio  # noqa: E402
from piopiy_fast.receiver.call import CallStream  # noqa: E402
from piopiy_fast.receiver.clock import DeliveryClocks  # noqa: E402
from piopiy_fast.receiver.server import StreamServer  # noqa: E402
from piopiy_fast.receiver.transports import picows as transport  # noqa: E402
from piopiy_fast.receiver.transports.base import YIELD_EVERY, Handshake  # noqa: E402
from piopiy_fast.simulator.simulator import simulate  # noqa: E402
from piopiy_fast.stream.call import CallSettings  # noqa: E402


def built_with_listener():
    record = json.loads(resources.files("piopiy_fast._core").joinpath("build.json").read_text())
    return record["picows_listener"] is not None


needs_listener = pytest.mark.skipif(not built_with_listener(),
                                    reason="this build has no compiled picows listener")


class CountingLink(transport.PicowsLink):
    """A link that counts its yields to the event loop (``holds``) instead of yielding."""

    __slots__ = ("holds",)

    def hold(self):
        self.holds += 1
        self.listener.budget = self.listener.yield_every


async def pumped_call(compiled):
    """A counting link with the compiled listener or the Python one, pumping frames into
    a `both` call: (link, call, the pump task)."""
    link = CountingLink(Handshake("/s", {}, "-"), {}, transport.frame_listener(compiled),
                        max_message_bytes=1 << 16, max_unsent_bytes=1 << 20,
                        close_timeout=1.0, on_open=lambda link: None)
    link.holds = 0
    call = CallStream(link, {"listen_mode": "both"}, CallSettings(), DeliveryClocks(0.05))
    pump = asyncio.ensure_future(link.pump(call.sink, call.receive_text))
    await asyncio.sleep(0)
    return link, call, pump


@needs_listener
def test_each_link_owns_a_listener_of_its_transports_choice():
    import picows

    listener = audio.picows_frame_listener()
    compiled, in_python = (transport.PicowsTransport(compiled_listener=flag)
                           for flag in (True, False))
    assert (compiled.listener_class, compiled.frames_in_c) == (listener, True)
    assert (in_python.listener_class, in_python.frames_in_c) == (
        transport.PythonFrameListener, False)
    for chosen in (compiled, in_python):
        link = transport.PicowsLink(Handshake("/s", {}, "-"), {}, chosen.listener_class,
                                    max_message_bytes=64, max_unsent_bytes=64,
                                    close_timeout=1.0, on_open=lambda link: None)
        assert type(link.listener) is chosen.listener_class
        assert link.listener.link is link
        assert link.frames_in_c is chosen.frames_in_c
    from piopiy_fast._core.picows_listener import BUILT_WITH_PICOWS
    assert BUILT_WITH_PICOWS == picows.__version__


@pytest.mark.parametrize("compiled", [True, False])
def test_frames_reach_the_calls_sink(compiled):
    """On the compiled path the link holds the call's sink and hands it frames in C;
    on the Python path it calls the sink's feed with bytes. Both count every frame."""
    if compiled and not built_with_listener():
        pytest.skip("this build has no compiled picows listener")
    collector = Collector()
    seen = {}

    async def on_call(call):
        await call.wait_audio()
        seen["listener"] = call._link.listener
        seen["call_sink"] = call.sink
        await collector(call)

    async def main():
        async with StreamServer("127.0.0.1", 0, on_call=on_call,
                                transport=transport.PicowsTransport(
                                    compiled_listener=compiled)) as server:
            report = await simulate(server.url, calls=3, listen_mode="both", seconds=0.3,
                                    frame_samples=(160,), seed=3)
            await collector.wait_for(3)
            return report, server.stats

    report, stats = run(main(), transport="picows")
    assert not report.failed
    assert stats.frames == report.frames
    assert seen["listener"].sink is seen["call_sink"]
    assert type(seen["listener"]) is (audio.picows_frame_listener() if compiled
                                      else transport.PythonFrameListener)


def test_without_the_compiled_listener_links_use_the_python_one(monkeypatch, caplog):
    from piopiy_fast.receiver.transports import picows_frames

    def unavailable():
        raise ImportError("built against picows 0.0.0, found picows 9.9.9")

    monkeypatch.setattr(picows_frames, "picows_frame_listener", unavailable)
    with caplog.at_level(logging.WARNING, logger="piopiy_fast.transport"):
        chosen = transport.PicowsTransport()
        transport.PicowsTransport(compiled_listener=False)
    assert chosen.listener_class is transport.PythonFrameListener
    [record] = caplog.records  # one line, from the transport that asked for it
    assert "found picows 9.9.9" in record.getMessage()


@needs_listener
def test_only_a_burst_spends_the_budget_of_frames_before_a_yield():
    """Frames back to back make the link yield every YIELD_EVERY frames; frames at
    least BURST_GAP apart (a call paced in real time) never do."""
    from piopiy_fast._core.picows_listener import BURST_GAP

    async def main(count, gap):
        link, call, pump = await pumped_call(True)
        payload = (np.arange(320) * 50).astype("<i2").tobytes()
        for _ in range(count):
            link.listener.on_ws_frame(
                None, _make_test_ws_frame(WSMsgType.BINARY, payload, True, False))
            if gap:
                time.sleep(gap)
        pump.cancel()
        return link.holds, call.stats.frames

    holds, frames = run(main(YIELD_EVERY * 8, 0))
    assert frames == YIELD_EVERY * 8
    assert holds >= 1
    holds, frames = run(main(YIELD_EVERY + 8, BURST_GAP))
    assert (holds, frames) == (0, YIELD_EVERY + 8)


@needs_listener
@pytest.mark.parametrize("installed", ["2.4.0", "3.3.1"])
def test_the_compiled_listener_refuses_another_picows_release(installed):
    """Built against one picows release line, the listener will not load under another
    (its classes' layout may differ), and the transport runs in Python, saying why."""
    import subprocess
    import sys

    script = f"""
import logging, picows
picows.__version__ = {installed!r}
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from piopiy_fast.receiver.transports import picows as transport
print(transport.PicowsTransport().frames_in_c)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout == "False\n", result.stderr
    [line] = [line for line in result.stderr.splitlines() if "picows transport" in line]
    assert f"found picows {installed}" in line
    assert "frames take the Python path" in line


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("mix", ["text", "text and audio"])
def test_text_frames_spend_the_budget_too(compiled, mix):
    """Frames back to back make the link yield every YIELD_EVERY frames, text (events)
    counted like audio, so a flood of events cannot hold the event loop either."""
    if compiled and not built_with_listener():
        pytest.skip("this build has no compiled picows listener")
    async def main():
        link, call, pump = await pumped_call(compiled)
        audio_frame = _make_test_ws_frame(WSMsgType.BINARY, b"\x00\x01" * 320, True, False)
        event = _make_test_ws_frame(WSMsgType.TEXT, b'{"event": "mark"}', True, False)
        for i in range(YIELD_EVERY * 8):
            link.listener.on_ws_frame(
                None, audio_frame if mix != "text" and i % 2 == 0 else event)
        pump.cancel()
        return link.holds, call.stats.events + call.stats.frames

    assert run(main()) == (8, YIELD_EVERY * 8)
