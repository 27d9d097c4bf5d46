"""Why the core keeps the GIL for frame-sized work: one ring write + read of a
20 ms frame (320 samples) beside a busy Python thread, with the GIL kept
(the default: released only from ``nogil_threshold()`` samples) and with it
released on every call (``set_nogil_threshold(0)``). Each release hands the
GIL to the busy thread, and getting it back can take a whole switch interval
(5 ms by default).

Run: ``pytest benchmarks/bench_gil.py``.
"""
import threading

import numpy as np
import pytest

from piopiy_fast._core import ringbuffer
from piopiy_fast._core.ringbuffer import RingBuffer


@pytest.fixture
def busy_python_thread():
    stop = threading.Event()

    def application_work():
        while not stop.is_set():
            sum(range(100))

    worker = threading.Thread(target=application_work, daemon=True)
    worker.start()
    yield
    stop.set()
    worker.join()


@pytest.mark.benchmark(group="ring write + read of 320 samples beside a busy Python thread")
@pytest.mark.parametrize("release", ["frame-sized work keeps the GIL", "release every call"])
def test_round_trip(benchmark, busy_python_thread, release):
    ring = RingBuffer(1 << 12)
    frame = np.arange(320, dtype=np.int16)
    out = np.empty(320, np.int16)

    def round_trip():
        ring.write(frame)
        ring.read_into(out)

    previous = ringbuffer.set_nogil_threshold(0 if release == "release every call" else
                                              ringbuffer.nogil_threshold())
    try:
        # few rounds: releasing on every call can cost milliseconds each
        benchmark.pedantic(round_trip, rounds=20, iterations=10, warmup_rounds=1)
    finally:
        ringbuffer.set_nogil_threshold(previous)
    assert np.array_equal(out, frame)
