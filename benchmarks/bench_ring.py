"""Ring buffer: moving 20 ms frames (320 int16 samples, 16 kHz) from a producer to a
consumer, against what people reach for: a ``collections.deque`` of arrays and a
``queue.Queue``.

- one thread: write one frame, read it back;
- a producer thread and a consumer thread: FRAMES frames handed over as fast as the
  producer can write them, timed until the consumer has them all (per frame). Ours:
  ``write`` and a blocking ``read_wait`` (the wait releases the GIL); deque: the
  consumer polls, yielding the GIL when it finds nothing; Queue: ``put`` and ``get``.

And why the core keeps the GIL for frame-sized work: a write + read beside a busy
Python thread with the default (the GIL released only for large copies) and with it
released on every call (``set_nogil_threshold(0)``): each release hands the GIL to the
busy thread, and getting it back can take a switch interval (5 ms by default).
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque

import numpy as np
import pytest
from harness import keys as k
from harness.timing import per_call

from piopiy_fast.audio import RingBuffer, nogil_threshold, set_nogil_threshold

FRAME = 320
BUDGET = {"full": 0.1, "short": 0.01}
FRAMES = {"full": 2000, "short": 300}


def one_thread(contender: str):
    frame = np.arange(FRAME, dtype=np.int16)
    if contender == k.OURS:
        ring = RingBuffer(1 << 12)
        out = np.empty(FRAME, np.int16)

        def round_trip() -> None:
            ring.write(frame)
            ring.read_into(out)
    elif contender == k.DEQUE:
        frames: deque[np.ndarray] = deque()

        def round_trip() -> None:
            frames.append(frame)
            frames.popleft()
    else:
        q: queue.Queue[np.ndarray] = queue.Queue()

        def round_trip() -> None:
            q.put(frame)
            q.get()
    return round_trip


CONTENDERS = (k.OURS, k.DEQUE, k.QUEUE)


@pytest.mark.parametrize("contender", CONTENDERS)
def test_one_thread(benchmark, results, mode_name, contender):
    benchmark.group = "ring: write + read of one 20 ms frame, one thread"
    results.put(k.ring(k.RING_ONE_THREAD, contender),
                per_call(benchmark, one_thread(contender), BUDGET[mode_name]), "s")


def hand_over(contender: str, count: int) -> None:
    """Producer thread -> consumer thread, ``count`` frames; returns when all arrived."""
    frame = np.arange(FRAME, dtype=np.int16)
    if contender == k.OURS:
        ring = RingBuffer(1 << (count * FRAME - 1).bit_length())

        def produce() -> None:
            for _ in range(count):
                ring.write(frame)

        def consume() -> None:
            got = 0
            while got < count * FRAME:
                got += ring.read_wait(FRAME, 1.0).size
    elif contender == k.DEQUE:
        frames: deque[np.ndarray] = deque()

        def produce() -> None:
            for _ in range(count):
                frames.append(frame)

        def consume() -> None:
            got = 0
            while got < count:
                try:
                    frames.popleft()
                    got += 1
                except IndexError:
                    time.sleep(0)
    else:
        q: queue.Queue[np.ndarray] = queue.Queue()

        def produce() -> None:
            for _ in range(count):
                q.put(frame)

        def consume() -> None:
            for _ in range(count):
                q.get()

    consumer = threading.Thread(target=consume)
    consumer.start()
    produce()
    consumer.join(timeout=60)
    assert not consumer.is_alive()


@pytest.mark.parametrize("contender", CONTENDERS)
def test_producer_consumer(benchmark, results, mode_name, contender):
    benchmark.group = "ring: 20 ms frames from a producer thread to a consumer thread"
    count = FRAMES[mode_name]
    seconds = per_call(benchmark, lambda: hand_over(contender, count), 10 * BUDGET[mode_name],
                       min_rounds=3)
    results.put(k.ring(k.RING_PAIR, contender), None if seconds is None else seconds / count, "s",
                frames=count)


@pytest.mark.parametrize("release", [k.KEEP_GIL, k.RELEASE_EVERY_CALL])
def test_beside_a_busy_thread(benchmark, results, busy_python_thread, release):
    benchmark.group = "ring: write + read of one 20 ms frame beside a busy Python thread"
    round_trip = one_thread(k.OURS)
    previous = set_nogil_threshold(0 if release == k.RELEASE_EVERY_CALL else nogil_threshold())
    try:
        # Few rounds: releasing on every call can cost milliseconds each.
        if benchmark.enabled:
            benchmark.pedantic(round_trip, rounds=20, iterations=10, warmup_rounds=1)
            # The mean: the point is the occasional switch interval lost, not the usual case.
            results.put(k.ring(k.RING_BUSY, release), benchmark.stats.stats.mean, "s")
        else:
            benchmark.pedantic(round_trip)
    finally:
        set_nogil_threshold(previous)
