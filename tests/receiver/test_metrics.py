"""/metrics and /healthz of a StreamServer, scraped over HTTP on 127.0.0.1 and parsed with
prometheus-client's own parser."""
import asyncio
import urllib.error
import urllib.request

import pytest
from stream_testing import run

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.simulator import simulate

parser = pytest.importorskip("prometheus_client.parser")

TOKEN = "metrics-token"


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict:
    found = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_metrics_count_calls_frames_and_refusals_exactly(transport):
    release = asyncio.Event()
    seen = {}

    async def on_call(call):
        async for _ in call.caller:
            pass
        await release.wait()  # keeps the server draining until released

    async def main():
        server = StreamServer("127.0.0.1", 0, transport=transport, auth=TOKEN, metrics_port=0,
                              on_call=on_call, drain_timeout=10)
        async with server:
            port = server.metrics_port
            seen["health"] = await asyncio.to_thread(fetch, port, "/healthz")
            good = await simulate(server.url, calls=2, seconds=0.5,
                                  headers={"Authorization": f"Bearer {TOKEN}"})
            unauthorized = await simulate(server.url, seconds=0.1)
            forbidden = await simulate(server.url, seconds=0.1,
                                       headers={"Authorization": "Bearer wrong"})
            while server.active_calls:
                await asyncio.sleep(0.01)
            seen["metrics"] = await asyncio.to_thread(fetch, port, "/metrics")
            seen["404"] = await asyncio.to_thread(fetch, port, "/nothing")
            closing = asyncio.ensure_future(server.close())
            await asyncio.sleep(0.1)
            seen["draining"] = await asyncio.to_thread(fetch, port, "/healthz")
            release.set()
            await closing
        return good, unauthorized, forbidden

    good, unauthorized, forbidden = run(main(), transport=transport)
    assert not good.failed and unauthorized.failed and forbidden.failed
    assert seen["health"] == (200, "serving\n")
    assert seen["draining"] == (503, "draining\n")
    assert seen["404"][0] == 404
    status, text = seen["metrics"]
    assert status == 200
    got = samples(text)
    assert got[("piopiy_fast_calls_total", ())] == 2
    assert got[("piopiy_fast_calls_live", ())] == 0
    assert got[("piopiy_fast_frames_total", ())] == good.frames == 50
    assert got[("piopiy_fast_bytes_total", ())] == good.bytes == 50 * 320
    assert got[("piopiy_fast_audio_seconds_total", ())] == pytest.approx(1.0)
    refused = {reason: got[("piopiy_fast_calls_refused_total", (("reason", reason),))]
               for reason in ("busy", "malformed", "unauthorized", "forbidden", "error")}
    assert refused == {"busy": 0, "malformed": 0, "unauthorized": 1, "forbidden": 1, "error": 0}
    # Two caller calls at 8 kHz, 320-byte frames sent without pacing: settled by their
    # steady frame size, agreeing with what the start event said.
    assert got[("piopiy_fast_calls_by_layout_total",
                (("decided_by", "frame size"), ("layout", "mono")))] == 2
    assert got[("piopiy_fast_hints_overruled_total", ())] == 0
    assert got[("piopiy_fast_calls_resumed_total", ())] == 0
    assert got[("piopiy_fast_calls_failed_total", ())] == 0
    assert ("piopiy_fast_event_loop_lag_seconds_count", ()) in got


def test_metrics_port_is_checked():
    with pytest.raises(ValueError, match="metrics_port must be from 0 to 65535"):
        StreamServer(metrics_port=70000)
