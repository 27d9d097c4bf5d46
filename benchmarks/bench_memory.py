"""Memory per live call, ring buffers excluded (its target: harness/verdict.py).

- Native state: resident memory grown per ``CallIngest(8000, 2, 16000)`` (decoder,
  resampler, scratch), in a fresh process, against two ``soxr.ResampleStream`` (HQ),
  what the hand-rolled receiver keeps per call.
- The whole call in a server process: the server (harness/e2e_server.py) runs alone; CALLS
  real-time `both` calls at 8 kHz stream into it; it reports how much its resident
  memory grew per call while they were all live, after collecting garbage. Ours with
  rings of a few samples (``ring_seconds=0.001``) so the rings, which are sized by the
  application, are left out; on both transports (picows, the default, on uvloop); and
  the hand-rolled receiver.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from harness import e2e
from harness import keys as k
from harness.timing import once

CALLS = {"full": 200, "short": 50}
INSTANCES = {"full": 2000, "short": 500}  # native states made in one process
SECONDS = {"full": 2.0, "short": 1.0}  # of streaming; memory is read three quarters in

NATIVE_STATE = r"""
import gc, os, sys
import numpy as np

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)

count, what = int(sys.argv[1]), sys.argv[2]
if what == "ours":
    from piopiy_fast.audio import CallIngest
    frame = np.zeros(320, np.int16).tobytes()
    def one_call():
        call = CallIngest(8000, 2, 16000, ring_capacity=16)
        call.ingest(frame)
        return call
else:
    import soxr
    frame = np.zeros(160, np.int16)
    def one_call():
        streams = [soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
                   for _ in range(2)]
        for stream in streams:
            stream.resample_chunk(frame)
        return streams

one_call()                      # filters designed, libraries loaded
gc.collect()
base = rss_kib()
calls = [one_call() for _ in range(count)]
gc.collect()
print((rss_kib() - base) / count)
"""


@pytest.mark.benchmark(group="memory per call (pytest-benchmark's time: the whole run)")
@pytest.mark.parametrize("contender", [k.OURS, k.SOXR_HQ])
def test_native_state_per_call(benchmark, results, mode_name, contender):
    count = INSTANCES[mode_name]

    def measure() -> float:
        out = subprocess.run([sys.executable, "-c", NATIVE_STATE, str(count), contender],
                             check=True, capture_output=True, text=True, timeout=120)
        return float(out.stdout)

    kib = once(benchmark, measure)
    benchmark.extra_info["kib_per_call"] = round(kib, 1)
    results.put(k.memory_native(contender), kib, "KiB")
    assert 0 < kib < 1024


@pytest.fixture(scope="module")
def client():
    process = e2e.Client()
    yield process
    process.close()


def server_kib_per_call(name: str, client: e2e.Client, calls: int, seconds: float) -> float:
    extra = [] if name == k.BASELINE else ["--ring-seconds", "0.001"]
    server = e2e.Server(name, *extra)
    try:
        time.sleep(0.5)  # the loop warm
        base = server.ask("rss")["rss_kib"]
        client.ask("connect", port=server.port, calls=calls)
        t0 = time.monotonic() + 0.05
        client.send("paced", t0=t0, end=t0 + seconds)
        time.sleep(0.75 * seconds)  # every call streaming
        live = server.ask("rss")["rss_kib"]
        sent = client.read()
        client.ask("close")
        # Rings this small may drop samples while the machine is busy; not the point here.
        missing, _ = e2e.settle(server, sent["sent"])
        assert missing == 0
        return (live - base) / calls
    finally:
        server.close()


@pytest.mark.benchmark(group="memory per call (pytest-benchmark's time: the whole run)")
@pytest.mark.parametrize("name", [k.BASELINE, k.WEBSOCKETS, k.PICOWS])
def test_server_memory_per_call(benchmark, results, mode_name, client, name):
    if not e2e.available(name):
        results.not_measured(e2e.NEEDS_PICOWS, k.memory_server(name))
        pytest.skip(e2e.NEEDS_PICOWS)
    kib = once(benchmark, lambda: server_kib_per_call(name, client, CALLS[mode_name],
                                                              SECONDS[mode_name]))
    benchmark.extra_info["kib_per_call"] = round(kib, 1)
    results.put(k.memory_server(name), kib, "KiB", calls=CALLS[mode_name])
    assert 0 < kib < 1024
