"""The receiver inside a web application, against its own transports: server CPU per
received frame of the paced end-to-end run (200 calls, each one 20 ms `both` 8 kHz
frame every 20 ms, see bench_endtoend.py and harness/e2e.py), the same load and the
same consumer (the README's) on four servers in one run, rounds alternated between
them, the median of the rounds per server:

- ``StreamServer`` on picows with uvloop (the default transport) and on websockets
  (the pure-Python one), each on its own port;
- the ASGI adapter (``AsgiTransport``) at a Starlette ``WebSocketRoute`` under uvicorn
  (its websockets-based protocol), and the aiohttp adapter (``AiohttpTransport``) at an
  aiohttp route: both on uvloop, as uvicorn and aiohttp's uvloop worker run.

Its figures have keys of their own (``web-app/<server>``): the end-to-end benchmark's
figures for picows and websockets are measured in other rounds.
"""
from __future__ import annotations

import statistics

import pytest
from bench_endtoend import PACED_CALLS, SETTINGS
from harness import e2e
from harness import keys as k
from harness.timing import once

COMPARED = (k.PICOWS, k.WEBSOCKETS, k.ASGI_UVICORN, k.AIOHTTP)


@pytest.fixture(scope="module")
def client():
    process = e2e.Client()
    yield process
    process.close()


@pytest.mark.benchmark(group="end to end (pytest-benchmark's time: the whole run)")
def test_paced_200_calls_inside_a_web_app(benchmark, results, mode_name, client):
    s = SETTINGS[mode_name]
    for name in COMPARED:
        if not e2e.available(name):
            results.not_measured(e2e.missing(name), k.web_app(name))
    names = [name for name in COMPARED if e2e.available(name)]
    servers = {name: e2e.Server(name) for name in names}

    def run() -> dict[str, list[e2e.Hold]]:
        holds: dict[str, list[e2e.Hold]] = {name: [] for name in names}
        for _ in range(s["rounds"]):
            # Alternated: slow drifts of the machine hit every server alike.
            for name in names:
                holds[name].append(e2e.paced_hold(servers[name], client, PACED_CALLS,
                                                  s["paced_seconds"], s["paced_warmup"]))
        return holds

    try:
        holds = once(benchmark, run)
    finally:
        for server in servers.values():
            server.close()
    for name, rounds in holds.items():
        for hold in rounds:
            results.add(k.SERIES_PACED, hold.as_dict())
            assert hold.extra["never_received"] == 0, hold
        cpu = statistics.median(h.cpu_us_per_frame for h in rounds)
        results.put(k.web_app(name), cpu * 1e-6, "s",
                    rounds=[h.cpu_us_per_frame for h in rounds],
                    p99_ms=[h.p99_ms for h in rounds], lost=[h.lost_frames for h in rounds])
        benchmark.extra_info[name] = {"cpu_us_per_frame": cpu,
                                      "p99_ms": [h.p99_ms for h in rounds]}
