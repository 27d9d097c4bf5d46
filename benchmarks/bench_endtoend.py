"""End to end over 127.0.0.1: server CPU per received 20 ms `both` frame (8 kHz L16,
two channels) made readable as two 16 kHz channels, latency, and capacity.

The server runs alone in its own process, pinned to one core; the client (one process,
raw sockets, pre-built masked frames) runs pinned to the other; see harness/e2e.py.
Servers:

- baseline, the receiver people write by hand: a plain ``websockets`` server doing
  numpy de-interleave + two ``soxr.ResampleStream`` (HQ) per frame;
- ours, as the README teaches: ``StreamServer(host, port, on_call=...)`` with library
  defaults, the application reading ``async for chunk in call.caller`` and
  ``call.callee`` concurrently; with the default transport on plain ``asyncio.run``,
  and with ``transport="picows"`` on uvloop.

Traffic:

- paced, how Piopiy sends: each call one frame every 20 ms, the calls spread over the
  period; 200 calls, rounds alternated between the servers, the median of three
  rounds per server is the figure;
- bursts: 20 connections each sending frames as fast as the client can write them (a
  server read then finds several frames waiting: cheaper per frame, but not how calls
  arrive);
- capacity: the largest number of paced calls one server core holds with zero frames
  lost and p99 frame latency (due -> readable by the application) under 20 ms beyond
  the delay the server adds on purpose (ours: its readers' delivery clock, 50 ms by
  default; the hand-rolled receiver: none), found by doubling then bisection, then held
  for 30 s (see e2e.search_capacity).
"""
from __future__ import annotations

import statistics

import pytest
from harness import e2e
from harness import keys as k
from harness.timing import once

PACED_CALLS = 200
SETTINGS = {
    # paced rounds: seconds measured after a warm-up; bursts: rounds and frames per
    # connection; capacity: first number of calls, search holds, the long hold, and
    # the bracket the bisection stops at
    "full": {"paced_seconds": 2.5, "paced_warmup": 0.5, "rounds": 3, "burst_rounds": 2,
             "burst_frames": 1000, "start": 200, "hold": 2.0, "confirm": 30.0,
             "resolution": 0.1},
    "short": {"paced_seconds": 0.5, "paced_warmup": 0.2, "rounds": 3, "burst_rounds": 1,
              "burst_frames": 300, "start": 50, "hold": 0.6, "confirm": 1.0,
              "resolution": 0.5},
}
COMPARED = (k.BASELINE, k.DEFAULT, k.PICOWS)
# One round each, for scale: ours on the websockets transport (what `auto` picks for a
# coroutine auth hook), and each transport library receiving and discarding.
FLOORS = (k.WEBSOCKETS, k.DISCARD_WEBSOCKETS, k.DISCARD_PICOWS)


@pytest.fixture(scope="module")
def client():
    process = e2e.Client()
    yield process
    process.close()


@pytest.fixture(scope="module")
def servers():
    """Started on first use, one process per server, kept for the module."""
    started: dict[str, e2e.Server] = {}

    def get(name: str) -> e2e.Server:
        if name not in started:
            started[name] = e2e.Server(name)
        return started[name]

    yield get
    for process in started.values():
        process.close()


def names(group: tuple[str, ...]) -> list[str]:
    return [n for n in group if e2e.available(n)]


def declare_unavailable(results, *figures) -> None:
    """The figures of the servers this machine cannot run, declared not measured."""
    for figure in figures:
        results.not_measured(e2e.NEEDS_PICOWS, *(figure(n) for n in COMPARED + FLOORS
                                                 if not e2e.available(n)))


@pytest.mark.benchmark(group="end to end (pytest-benchmark's time: the whole run)")
def test_paced_200_calls(benchmark, results, mode_name, client, servers):
    s = SETTINGS[mode_name]
    declare_unavailable(results, k.paced, k.paced_p99, k.paced_p99_limit)

    def run() -> dict[str, list[e2e.Hold]]:
        holds: dict[str, list[e2e.Hold]] = {n: [] for n in names(COMPARED + FLOORS)}
        for round_number in range(s["rounds"]):
            # Alternated: slow drifts of the machine hit every server alike.
            for name in names(COMPARED + FLOORS if round_number == 0 else COMPARED):
                holds[name].append(e2e.paced_hold(servers(name), client, PACED_CALLS,
                                                  s["paced_seconds"], s["paced_warmup"]))
        return holds

    holds = once(benchmark, run)
    for name, rounds in holds.items():
        for hold in rounds:
            results.add(k.SERIES_PACED, hold.as_dict())
            assert hold.extra["never_received"] == 0, hold
        cpu = statistics.median(h.cpu_us_per_frame for h in rounds)
        results.put(k.paced(name), cpu * 1e-6, "s",
                    rounds=[h.cpu_us_per_frame for h in rounds])
        benchmark.extra_info[name] = {"cpu_us_per_frame": cpu}
        if all(h.p99_ms is not None for h in rounds):  # the floors do not tell
            p99 = statistics.median(h.p99_ms for h in rounds)
            results.put(k.paced_p99(name), p99, "ms", rounds=[h.p99_ms for h in rounds])
            results.put(k.paced_p99_limit(name), rounds[0].latency_limit_ms, "ms")
            benchmark.extra_info[name]["p99_ms"] = p99


@pytest.mark.benchmark(group="end to end (pytest-benchmark's time: the whole run)")
def test_bursts(benchmark, results, mode_name, client, servers):
    s = SETTINGS[mode_name]
    declare_unavailable(results, k.burst)

    def run() -> dict[str, list[dict]]:
        rounds: dict[str, list[dict]] = {n: [] for n in names(COMPARED + FLOORS)}
        for _ in range(s["burst_rounds"]):
            for name in rounds:
                rounds[name].append(e2e.burst_round(servers(name), client, 20,
                                                    s["burst_frames"]))
        return rounds

    rounds = once(benchmark, run)
    for name, measured in rounds.items():
        for one in measured:
            assert one["never_received"] == 0, one
        cpu = statistics.median(r["cpu_us_per_frame"] for r in measured)
        results.put(k.burst(name), cpu * 1e-6, "s")
        benchmark.extra_info[name] = {"cpu_us_per_frame": cpu}


@pytest.mark.benchmark(group="end to end (pytest-benchmark's time: the whole run)")
@pytest.mark.parametrize("name", [k.BASELINE, k.PICOWS])
def test_capacity(benchmark, results, mode_name, client, servers, name):
    if not e2e.available(name):
        results.not_measured(e2e.NEEDS_PICOWS, k.capacity(name), k.capacity_p99(name))
        pytest.skip(e2e.NEEDS_PICOWS)
    s = SETTINGS[mode_name]
    start = s["start"]
    p99, limit = results.value(k.paced_p99(name)), results.value(k.paced_p99_limit(name))
    if start == PACED_CALLS and p99 is not None and limit is not None and p99 < limit:
        start *= 2  # the paced rounds already held this many: double from there
    found = once(benchmark, lambda: e2e.search_capacity(
        servers(name), client, start, s["hold"], s["confirm"], s["resolution"]))
    for point in found["points"]:
        results.add(k.SERIES_CAPACITY, point)
    results.put(k.capacity(name), found["calls"], "calls", confirmed=found["confirmed"],
                client_bound=found["client_bound"])
    at = found["at_capacity"]
    if at:
        results.put(k.capacity_p99(name), at["p99_ms"], "ms")
    how = (f"held {s['confirm']:g} s" if found["confirmed"]
           else f"not held {s['confirm']:g} s (search holds only)")
    results.notes.append(
        f"Capacity, {e2e.SERVERS[name][0]}: {found['calls']} calls, {how}"
        + (f", p99 {at['p99_ms']:.1f} ms (limit {at['latency_limit_ms']:g} ms), "
           f"{at['cpu_us_per_frame']:.1f} µs/frame" if at else "")
        + (f"; in a failed hold the client itself ran late (p99 over "
           f"{e2e.CLIENT_LATE_LIMIT_MS:g} ms), so the server may hold more"
           if found["client_bound"] else "") + ".")
    benchmark.extra_info.update(found)
    # Zero calls held can be a machine busy with other work; a lost connection is a bug.
    assert all(p["never_received"] == 0 for p in found["points"]), found["points"]
