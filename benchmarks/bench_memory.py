"""Memory per live call, ring buffers excluded (DESIGN.md target: under 64 KiB).

A StreamServer runs alone in its own process with rings of a few samples; a
simulator in another process opens CALLS real-time `both` calls at 8 kHz, which
the server resamples to 16 kHz. The server reports how much its resident memory
grew per call while they were all live, after collecting garbage. Both
transports. A third case counts the native per-call state alone: resident
memory grown per CallIngest (decoder, resampler, scratch). The figures are in
``extra_info``; pytest-benchmark's own time here is only the length of the run.

Run: ``pytest benchmarks/bench_memory.py`` (the ``bench`` and ``fast`` extras).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

CALLS = 200

SERVER = r"""
import asyncio, gc, sys
from piopiy_fast import StreamServer

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4

async def main(calls, transport):
    async with StreamServer("127.0.0.1", 0, target_rate=16000, ring_seconds=0.001,
                            transport=transport) as server:
        print(server.port, flush=True)
        await asyncio.sleep(1.0)          # filters designed and the loop warm
        gc.collect()
        base = rss_kib()
        while len(server.active_calls) < calls:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)          # every call streaming
        gc.collect()
        print((rss_kib() - base) / calls, flush=True)

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""

CLIENT = r"""
import asyncio, sys
from piopiy_fast.simulate import Simulator
asyncio.run(Simulator(f"ws://127.0.0.1:{sys.argv[1]}/stream", calls=int(sys.argv[2]),
                      listen_mode="both", sample_rate=8000, seconds=4, realtime=True).run())
"""


NATIVE_STATE = r"""
import gc, sys
import numpy as np
from piopiy_fast.audio import CallIngest

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4

CallIngest(8000, 2, 16000, ring_capacity=16)      # the filter designed and cached
gc.collect()
base = rss_kib()
calls = [CallIngest(8000, 2, 16000, ring_capacity=16) for _ in range(int(sys.argv[1]))]
frame = np.zeros(320, np.int16).tobytes()
for call in calls:
    call.ingest(frame)
print((rss_kib() - base) / len(calls))
"""


def kib_per_call(transport: str) -> float:
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(CALLS), transport],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = server.stdout.readline().strip()
        subprocess.run([sys.executable, "-c", CLIENT, port, str(CALLS)], check=True,
                       capture_output=True, timeout=120)
        return float(server.stdout.readline())
    finally:
        server.kill()
        server.wait()


@pytest.mark.benchmark(group="memory per live call, rings excluded")
@pytest.mark.parametrize("transport", ["websockets", "picows"])
def test_memory_per_call(benchmark, transport):
    if transport == "picows":
        pytest.importorskip("picows")
    result = benchmark.pedantic(kib_per_call, args=(transport,), rounds=1, iterations=1)
    benchmark.extra_info["kib_per_call"] = round(result, 1)
    print(f"\n{transport}: {result:.1f} KiB per live `both` call (8 -> 16 kHz), rings excluded")
    assert 0 < result < 1024


@pytest.mark.benchmark(group="memory per live call, rings excluded")
def test_native_state_per_call(benchmark):
    def measure() -> float:
        out = subprocess.run([sys.executable, "-c", NATIVE_STATE, "2000"], check=True,
                             capture_output=True, text=True, timeout=120)
        return float(out.stdout)

    result = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info["kib_per_call"] = round(result, 1)
    print(f"\nnative state: {result:.1f} KiB per `both` CallIngest (8 -> 16 kHz)")
    assert 0 < result < 1024
