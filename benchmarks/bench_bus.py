"""Publishing to NATS JetStream: what it costs the receiver, and how late the audio
reaches a worker on the bus.

Three figures, on a real ``nats-server -js`` started here (127.0.0.1, a temporary
store): the receiver's CPU per received frame while publishing every call, against the
same receiver reading the calls itself (the README's consumer; both picows on uvloop,
pinned to one core, the paced end-to-end client on the other, rounds alternated); the
real-time calls one core holds while publishing (no frame lost, nothing dropped for the
bus, the p99 below under its limit); and the p99 latency from the arrival of the frame
that completes a 200 ms chunk to a worker's reader returning that chunk (a worker in
its own process, unpinned, harness/bus_worker.py; calls under way, the first chunk of
each left out by the warm-up). nats-server shares the machine with
them. Without nats-server or nats-py the figures are declared not measured.
"""
from __future__ import annotations

import importlib.util
import shutil
import socket
import statistics
import subprocess
import time

import pytest
from harness import e2e
from harness import keys as k
from harness.timing import once

# Warm-up 0.5 s in both modes: the calls of a hold start within 20 ms of each other,
# and a worker takes them one pull at a time, so the first chunk of each (due 0.2 s in)
# is late by the line of calls before it; the figures are of calls under way.
SETTINGS = {
    "full": {"calls": 200, "seconds": 2.5, "warmup": 0.5, "rounds": 3, "hold": 2.0,
             "resolution": 0.1},
    "short": {"calls": 50, "seconds": 0.5, "warmup": 0.5, "rounds": 1, "hold": 0.6,
              "resolution": 0.5},
}
# The worker's limit, from the arrival of the frame that completes a chunk to a
# worker's reader returning the chunk: the end-to-end limit (20 ms beyond what the
# receiver delays on purpose: here only its 5 ms of read coalescing, as the publisher's
# readers are woken by the frame that completes a chunk, not by the delivery clock),
# plus 50 ms for the hop through the bus (publish, store, deliver, the worker's step).
BUS_LIMIT_MS = e2e.LATENCY_LIMIT_MS + 5.0 + 50.0
KEYS = (k.bus_paced(k.PUBLISHING), k.bus_paced(k.PICOWS), k.bus_capacity(), k.bus_p99(),
        k.bus_p99_limit())


def nats_server() -> str | None:
    return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")


class Nats:
    """nats-server with JetStream on a free port of 127.0.0.1."""

    def __init__(self, binary: str, store: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", store], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def client():
    process = e2e.Client()
    yield process
    process.close()


def hold(server, worker, client, calls, seconds, warmup):
    """One paced hold: the receiver's figures, the worker's latency, the bus's losses."""
    if worker is not None:
        worker.ask("reset")
    before = server.ask("settle").get("bus_dropped", 0)
    t0 = time.monotonic() + 0.1
    measured = e2e.paced_hold(server, client, calls, seconds, warmup)
    window = worker.ask("window", start=t0 + warmup, end=t0 + warmup + seconds - 0.1) \
        if worker is not None else None
    dropped = server.ask("settle").get("bus_dropped", 0) - before
    return measured, window, dropped


@pytest.mark.benchmark(group="end to end (pytest-benchmark's time: the whole run)")
def test_publishing_to_nats(benchmark, results, mode_name, client, tmp_path):
    binary = nats_server()
    reason = ("needs nats-server (apt-get install nats-server)" if binary is None
              else "needs nats-py (the nats extra)" if importlib.util.find_spec("nats") is None
              else f"the receiver {e2e.NEEDS_PICOWS}" if not e2e.available(k.PUBLISHING)
              else None)
    if reason:
        results.not_measured(reason, *KEYS)
        pytest.skip(reason)
    s = SETTINGS[mode_name]
    bus = Nats(binary, str(tmp_path / "jetstream"))
    publishing = local = worker = None
    try:
        publishing = e2e.Server(k.PUBLISHING, "--publish", bus.url)
        local = e2e.Server(k.PICOWS)
        worker = e2e.BusWorker(bus.url, int(publishing.hello["lag"]))

        def run() -> dict:
            cpu = {k.PUBLISHING: [], k.PICOWS: []}
            p99s = []
            for _ in range(s["rounds"]):
                measured, window, dropped = hold(publishing, worker, client, s["calls"],
                                                 s["seconds"], s["warmup"])
                cpu[k.PUBLISHING].append(measured.cpu_us_per_frame)
                p99s.append(window["p99_ms"])
                measured, _, _ = hold(local, None, client, s["calls"], s["seconds"],
                                      s["warmup"])
                cpu[k.PICOWS].append(measured.cpu_us_per_frame)
            return {"cpu": {name: statistics.median(v) for name, v in cpu.items()},
                    "p99_ms": max(p for p in p99s if p is not None), "rounds": cpu,
                    "capacity": capacity()}

        def held(calls: int) -> bool:
            measured, window, dropped = hold(publishing, worker, client, calls, s["hold"],
                                             s["warmup"])
            ok = (measured.lost_frames == 0 and dropped == 0 and window["p99_ms"] is not None
                  and window["p99_ms"] < BUS_LIMIT_MS and not measured.client_bound)
            points.append({"calls": calls, "held": ok, "lost": measured.lost_frames,
                           "bus_dropped": dropped, "worker_p99_ms": window["p99_ms"],
                           "cpu_us_per_frame": measured.cpu_us_per_frame})
            return ok

        points: list[dict] = []

        def capacity() -> int:
            low, high = 0, s["calls"]
            while held(high):  # double until a hold fails
                low, high = high, high * 2
                if high > 8192:
                    return low
            while high - low > max(1, low * s["resolution"]):
                middle = (low + high) // 2
                if held(middle):
                    low = middle
                else:
                    high = middle
            return low

        found = once(benchmark, run)
    finally:
        for process in (worker, publishing, local):
            if process is not None:
                process.close()
        bus.close()
    results.put(k.bus_paced(k.PUBLISHING), found["cpu"][k.PUBLISHING], "µs",
                calls=s["calls"])
    results.put(k.bus_paced(k.PICOWS), found["cpu"][k.PICOWS], "µs", calls=s["calls"])
    results.put(k.bus_p99(), found["p99_ms"], "ms", calls=s["calls"])
    results.put(k.bus_p99_limit(), BUS_LIMIT_MS, "ms")
    results.put(k.bus_capacity(), found["capacity"], "calls")
    for point in points:
        results.add("bus-capacity", point)
    results.notes.append(
        f"Publishing to NATS JetStream, {s['calls']} paced calls: "
        f"{found['cpu'][k.PUBLISHING]:.1f} µs/frame against {found['cpu'][k.PICOWS]:.1f} "
        f"reading locally; worker p99 {found['p99_ms']:.1f} ms; one core holds "
        f"{found['capacity']} calls while publishing.")
    benchmark.extra_info.update({"cpu": found["cpu"], "p99_ms": found["p99_ms"],
                                 "capacity": found["capacity"], "points": points})
