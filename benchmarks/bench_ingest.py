"""Per-frame cost of turning one received 20 ms frame into readable channels at the
target rate, for every pipeline Piopiy can send: listen mode caller, callee or both;
source 8, 12 or 16 kHz; target 16 or 8 kHz; L16 or PCMU.

Ours: ``CallIngest.ingest`` (decode + de-interleave + resample + ring write, one native
call), its rings emptied once every ~190 frames so they never overflow (that drain is
timed too, spread over those frames). Baselines, the receiver people write by hand:
numpy decode (``frombuffer``, or a lookup table for PCMU) and de-interleave, then per
channel ``soxr.ResampleStream`` (HQ, and QQ, soxr's cheapest) or
``scipy.signal.resample_poly`` (stateless, as a per-frame call has to be). When the
rates are equal nobody resamples.
"""
from __future__ import annotations

from math import gcd

import numpy as np
import pytest
import soxr
from harness import g711
from harness import keys as k
from harness.keys import FrameCase
from harness.timing import per_call
from scipy.signal import resample_poly

from piopiy_fast.audio import CallIngest

CONTENDERS = (k.OURS, k.SOXR_HQ, k.SOXR_QQ, k.SCIPY)
BUDGET = {"full": 0.08, "short": 0.015}


def frame_bytes(case: FrameCase, seed: int = 0) -> bytes:
    """One 20 ms frame as Piopiy sends it: speech-level noise, channels interleaved."""
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(case.source // 50 * case.channels) * 3000).astype("<i2")
    if case.codec == "l16":
        return samples.tobytes()
    return g711.ULAW_ENCODE[samples.view(np.uint16)].tobytes()


def ours(case: FrameCase, quality: str = "speech"):
    call = CallIngest(case.source, case.channels, case.target, encoding=case.codec,
                      quality=quality, ring_capacity=1 << 16)
    rings = call.rings
    out = np.empty(1 << 16, np.int16)

    def one_frame(frame: bytes) -> None:
        call.ingest(frame)
        if rings[0].available > 60000:
            for ring in rings:
                ring.read_into(out)

    return one_frame


def hand_rolled(case: FrameCase, resampler: str):
    source, target = case.source, case.target
    if source == target:
        def resample_channel_factory():
            return lambda x: x
    elif resampler in (k.SOXR_HQ, k.SOXR_QQ):
        quality = resampler.removeprefix("soxr-").upper()

        def resample_channel_factory():
            return soxr.ResampleStream(source, target, 1, dtype="int16",
                                       quality=quality).resample_chunk
    else:
        g = gcd(source, target)
        up, down = target // g, source // g

        def resample_channel_factory():
            return lambda x: resample_poly(x, up, down).astype(np.int16)

    resamplers = [resample_channel_factory() for _ in range(case.channels)]
    table = g711.ULAW_DECODE

    def decode(frame: bytes) -> np.ndarray:
        if case.codec == "l16":
            return np.frombuffer(frame, dtype="<i2")
        return table[np.frombuffer(frame, dtype=np.uint8)]

    if case.channels == 1:
        (only,) = resamplers

        def one_frame(frame: bytes) -> None:
            only(decode(frame))
    else:
        left, right = resamplers

        def one_frame(frame: bytes) -> None:
            pairs = decode(frame).reshape(-1, 2)
            left(np.ascontiguousarray(pairs[:, 0]))
            right(np.ascontiguousarray(pairs[:, 1]))

    return one_frame


def pipeline(case: FrameCase, contender: str):
    if contender == k.OURS:
        return ours(case)
    if contender == k.OURS_STRICT:
        return ours(case, quality="strict")
    return hand_rolled(case, contender)


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("case", k.FRAME_CASES, ids=[c.id for c in k.FRAME_CASES])
def test_per_frame(benchmark, results, mode_name, case, contender):
    benchmark.group = f"per frame: {case.id}"
    one_frame = pipeline(case, contender)
    frame = frame_bytes(case)
    seconds = per_call(benchmark, lambda: one_frame(frame), BUDGET[mode_name])
    results.put(k.frame(case, contender), seconds, "s")
    results.add(k.SERIES_PER_FRAME, {**case._asdict(), "contender": contender,
                                     "seconds": seconds})


def test_per_frame_strict(benchmark, results, mode_name):
    """The headline pipeline with the ``strict`` preset (its longer filters)."""
    benchmark.group = f"per frame: {k.HEADLINE.id}"
    one_frame = pipeline(k.HEADLINE, k.OURS_STRICT)
    frame = frame_bytes(k.HEADLINE)
    seconds = per_call(benchmark, lambda: one_frame(frame), BUDGET[mode_name])
    results.put(k.frame(k.HEADLINE, k.OURS_STRICT), seconds, "s")


@pytest.mark.parametrize("contender", [k.OURS, k.SOXR_HQ])
def test_per_frame_beside_a_busy_thread(benchmark, results, mode_name, busy_python_thread,
                                        contender):
    """A receiver shares the GIL with the application's threads. Handing the GIL over
    on every frame can cost a whole switch interval; the core keeps it for frame-sized
    work (soxr releases it on every call)."""
    benchmark.group = f"per frame: {k.HEADLINE.id} beside a busy Python thread"
    one_frame = pipeline(k.HEADLINE, contender)
    frame = frame_bytes(k.HEADLINE)
    seconds = per_call(benchmark, lambda: one_frame(frame), 4 * BUDGET[mode_name])
    results.put(k.frame_busy(contender), seconds, "s")
