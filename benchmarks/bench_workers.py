"""Capacity past one core: real-time calls held by N worker processes sharing one port
(``SO_REUSEPORT``, how ``piopiy-fast serve --workers N`` runs), against one worker.

Each worker is ``StreamServer`` with library defaults and the README's consumer (see
harness/e2e_server.py), on picows with uvloop, pinned to its own core; the capacity
search is the end-to-end one (zero frames lost, p99 latency under 20 ms beyond the
delivery delay the server adds on purpose; see harness/e2e.search_capacity), with the
workers' replies merged. The client is not pinned here: on a machine with as many cores
as workers it shares them, and its kernel work for every frame it sends is then taken
from the workers (docs/benchmarks.md). So the ratio measures the whole machine under a
load generator running on it; with spare cores for the client it measures the workers
alone.
"""
from __future__ import annotations

import os

import pytest
from bench_endtoend import SETTINGS
from harness import e2e
from harness import keys as k
from harness.timing import once

WORKERS = 2  # against one; a machine with one core skips it


@pytest.fixture(scope="module")
def free_client():
    process = e2e.Client(pinned=False)
    yield process
    process.close()


@pytest.mark.benchmark(group="end to end (pytest-benchmark's time: the whole run)")
@pytest.mark.parametrize("count", [1, WORKERS])
def test_worker_capacity(benchmark, results, mode_name, free_client, count):
    reason = (f"the workers {e2e.NEEDS_PICOWS}" if not e2e.available(k.PICOWS)
              else f"{count} workers need {count} cores" if count > (os.cpu_count() or 1)
              else None)
    if reason:
        results.not_measured(reason, k.capacity_workers(count))
        pytest.skip(reason)
    s = SETTINGS[mode_name]
    workers = e2e.Workers(k.PICOWS, count)
    try:
        found = once(benchmark, lambda: e2e.search_capacity(
            workers, free_client, s["start"] * count, s["hold"], s["confirm"],
            s["resolution"]))
    finally:
        workers.close()
    for point in found["points"]:
        results.add(k.SERIES_CAPACITY_WORKERS, point)
    results.put(k.capacity_workers(count), found["calls"], "calls",
                confirmed=found["confirmed"], client_bound=found["client_bound"])
    at = found["at_capacity"]
    results.notes.append(
        f"Capacity, {workers.label} (client unpinned): {found['calls']} calls"
        + (f", p99 {at['p99_ms']:.1f} ms, {at['cpu_us_per_frame']:.1f} µs/frame"
           f" over all workers" if at else "")
        + ("" if found["confirmed"] else ", not held for the long hold") + ".")
    benchmark.extra_info.update(found)
    assert all(p["never_received"] == 0 for p in found["points"]), found["points"]
