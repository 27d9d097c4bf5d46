"""Per-frame cost of turning one received `both` frame into two 16 kHz channels.

Baseline: numpy de-interleave + two soxr.ResampleStream calls (HQ), the usual
hand-rolled receiver. Target (DESIGN.md): the fused ingest at most 1/4 of it.
"""
import numpy as np
import pytest

from piopiy_fast._core.ingest import CallIngest

soxr = pytest.importorskip("soxr")

GROUP = "ingest: 20 ms both frame, 8 kHz -> 2 x 16 kHz"


def frame_after_frame(call, frame):
    """One ingest per call of the returned function. The rings are emptied once
    every ~190 frames so they never overflow; that drain is timed too, but
    spread over those frames it adds only a few nanoseconds to each."""
    caller, callee = call.rings
    out = np.empty(1 << 16, np.int16)

    def one_frame():
        call.ingest(frame)
        if caller.available > 60000:
            caller.read_into(out)
            callee.read_into(out)

    return one_frame


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("quality", ["speech", "strict"])
def test_fused_ingest(benchmark, both_frame_8k, quality):
    call = CallIngest(8000, 2, 16000, quality=quality, ring_capacity=1 << 16)
    benchmark(frame_after_frame(call, both_frame_8k))
    assert call.decode_errors == 0


@pytest.mark.benchmark(group=GROUP)
def test_baseline_numpy_deinterleave_two_soxr_streams(benchmark, both_frame_8k):
    left = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
    right = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")

    def one_frame():
        pairs = np.frombuffer(both_frame_8k, dtype="<i2").reshape(-1, 2)
        left.resample_chunk(np.ascontiguousarray(pairs[:, 0]))
        right.resample_chunk(np.ascontiguousarray(pairs[:, 1]))

    benchmark(one_frame)


@pytest.mark.benchmark(group="ingest beside a busy Python thread (the application's own work)")
def test_fused_ingest_beside_a_busy_python_thread(benchmark, both_frame_8k):
    """A receiver shares the GIL with the application's threads. Giving the GIL
    away on every frame would cost a switch interval each time; the core keeps
    it for frame-sized work, so this stays close to the lone figure."""
    import threading

    call = CallIngest(8000, 2, 16000, ring_capacity=1 << 16)
    stop = threading.Event()

    def application_work():
        while not stop.is_set():
            sum(range(100))

    worker = threading.Thread(target=application_work)
    worker.start()
    try:
        benchmark(frame_after_frame(call, both_frame_8k))
    finally:
        stop.set()
        worker.join()
