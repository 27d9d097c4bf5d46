"""Timing through pytest-benchmark with a fixed time budget per benchmark.

pytest-benchmark's own calibration takes long enough per benchmark (docs/benchmarks.md)
that with a few hundred of them it alone would blow the suite's time. ``per_call`` picks the rounds
and iterations from a quick calibration so each benchmark takes about ``budget``
seconds, runs them through ``benchmark.pedantic`` (so the figures land in
pytest-benchmark's tables and saved files as usual) and returns the median time of one
call, or None under ``--benchmark-disable`` (the function then runs once).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ROUND_SECONDS = 0.002  # iterations per round: enough to dwarf the timer's own cost


def per_call(benchmark: Any, fn: Callable[[], Any], budget: float,
             min_rounds: int = 5) -> float | None:
    if not benchmark.enabled:
        benchmark.pedantic(fn)
        return None
    fn()  # the first call pays for lazy set-up
    calls, started = 0, time.perf_counter()
    while (spent := time.perf_counter() - started) < 0.005 or calls < 3:
        fn()
        calls += 1
    one = spent / calls
    iterations = max(1, int(ROUND_SECONDS / one))
    rounds = max(min_rounds, int(budget / (one * iterations)))
    benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=1)
    return float(benchmark.stats.stats.median)


def once(benchmark: Any, fn: Callable[[], Any]) -> Any:
    """A long measurement that reports its own figures: run it once, through the
    fixture, so ``--benchmark-skip`` and ``--benchmark-only`` treat it as a benchmark.
    pytest-benchmark's time for it is the whole run's wall time."""
    return benchmark.pedantic(fn, rounds=1, iterations=1)
