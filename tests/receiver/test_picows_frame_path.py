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
from piopiy_fast.receiver.call import CallSettings, CallStream  # noqa: E402
from piopiy_fast.receiver.clock import DeliveryClocks  # noqa: E402
from piopiy_fast.receiver.server import StreamServer  # noqa: E402
from piopiy_fast.receiver.transports import picows as transport  # noqa: E402
from piopiy_fast.receiver.transports.base import YIELD_EVERY, Handshake  # noqa: E402
from piopiy_fast.simulator.simulator import simulate  # noqa: E402


def built_with_listener():
    record = json.loads(resources.files("piopiy_fast._core").joinpath("build.json").read_text())
    return record["picows_listener"] is not None


needs_listener = pytest.mark.skipif(not built_with_listener(),
                                    reason="this build has no compiled picows listener")


async def pumped_call(base):
    """A link of class ``base`` that counts its yields to the event loop (``holds``),
    pumping frames into a `both` call: (link, call, the pump task)."""
    class CountingLink(base):
        __slots__ = ("holds",)

        def _hold(self):
            self.holds += 1
            self._budget = self._yield_every

    link = CountingLink(Handshake("/s", {}, "-"), {}, max_message_bytes=1 << 16,
                        close_timeout=1.0, on_open=lambda link: None)
    link.holds = 0
    call = CallStream(link, {"listen_mode": "both"}, CallSettings(), 1, DeliveryClocks(0.05))
    pump = asyncio.ensure_future(link.pump(call._on_binary, call._on_text))
    await asyncio.sleep(0)
    return link, call, pump


@needs_listener
def test_the_compiled_listener_is_the_links_base():
    import picows

    listener = audio.picows_frame_listener()
    assert transport.PicowsLink.__mro__[2] is listener
    assert not issubclass(transport.PythonPicowsLink, listener)
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
        seen["link_sink"] = call._link._sink
        seen["call_sink"] = call._sink
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
    if compiled:
        assert seen["link_sink"] is seen["call_sink"]
    else:
        assert seen["link_sink"] is None


def test_without_the_compiled_listener_links_use_the_python_one(monkeypatch, caplog):
    def unavailable():
        raise ImportError("built against picows 0.0.0, found picows 9.9.9")

    monkeypatch.setattr(transport, "picows_frame_listener", unavailable)
    with caplog.at_level(logging.WARNING, logger="piopiy_fast.transport"):
        base = transport._listener_base()
    assert base is transport._PythonFrameListener
    [record] = caplog.records
    assert "found picows 9.9.9" in record.getMessage()


@needs_listener
def test_only_a_burst_spends_the_budget_of_frames_before_a_yield():
    """Frames back to back make the link yield every YIELD_EVERY frames; frames at
    least BURST_GAP apart (a call paced in real time) never do."""
    from piopiy_fast._core.picows_listener import BURST_GAP

    async def main(count, gap):
        link, call, pump = await pumped_call(transport.PicowsLink)
        payload = (np.arange(320) * 50).astype("<i2").tobytes()
        for _ in range(count):
            link.on_ws_frame(None, _make_test_ws_frame(WSMsgType.BINARY, payload, True, False))
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
print(transport.PicowsLink.frames_in_c)
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
    base = transport.PicowsLink if compiled else transport.PythonPicowsLink

    async def main():
        link, call, pump = await pumped_call(base)
        audio_frame = _make_test_ws_frame(WSMsgType.BINARY, b"\x00\x01" * 320, True, False)
        event = _make_test_ws_frame(WSMsgType.TEXT, b'{"event": "mark"}', True, False)
        for i in range(YIELD_EVERY * 8):
            link.on_ws_frame(None, audio_frame if mix != "text" and i % 2 == 0 else event)
        pump.cancel()
        return link.holds, call.stats.events + call.stats.frames

    assert run(main()) == (8, YIELD_EVERY * 8)
