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

import g711
import numpy as np
import pytest
import soxr
from scipy.signal import resample_poly
from timing import per_call

from piopiy_fast.audio import CallIngest

MODES = {"caller": 1, "callee": 1, "both": 2}
SOURCES = (8000, 12000, 16000)
TARGETS = (16000, 8000)
CODECS = ("l16", "pcmu")
CONTENDERS = ("ours", "soxr-hq", "soxr-qq", "scipy")
BUDGET = {"full": 0.08, "short": 0.015}


def frame_bytes(mode: str, rate: int, codec: str, seed: int = 0) -> bytes:
    """One 20 ms frame as Piopiy sends it: speech-level noise, channels interleaved."""
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(rate // 50 * MODES[mode]) * 3000).astype("<i2")
    if codec == "l16":
        return samples.tobytes()
    return g711.ULAW_ENCODE[samples.view(np.uint16)].tobytes()


def ours(mode: str, source: int, target: int, codec: str, quality: str = "speech"):
    call = CallIngest(source, MODES[mode], target, encoding=codec, quality=quality,
                      ring_capacity=1 << 16)
    rings = call.rings
    out = np.empty(1 << 16, np.int16)

    def one_frame(frame: bytes) -> None:
        call.ingest(frame)
        if rings[0].available > 60000:
            for ring in rings:
                ring.read_into(out)

    return one_frame


def hand_rolled(mode: str, source: int, target: int, codec: str, resampler: str):
    channels = MODES[mode]
    if source == target:
        def resample_channel_factory():
            return lambda x: x
    elif resampler.startswith("soxr"):
        quality = resampler.removeprefix("soxr-").upper()

        def resample_channel_factory():
            return soxr.ResampleStream(source, target, 1, dtype="int16",
                                       quality=quality).resample_chunk
    else:
        g = gcd(source, target)
        up, down = target // g, source // g

        def resample_channel_factory():
            return lambda x: resample_poly(x, up, down).astype(np.int16)

    resamplers = [resample_channel_factory() for _ in range(channels)]
    table = g711.ULAW_DECODE

    def decode(frame: bytes) -> np.ndarray:
        if codec == "l16":
            return np.frombuffer(frame, dtype="<i2")
        return table[np.frombuffer(frame, dtype=np.uint8)]

    if channels == 1:
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


def pipeline(mode: str, source: int, target: int, codec: str, contender: str):
    if contender == "ours":
        return ours(mode, source, target, codec)
    if contender == "ours-strict":
        return ours(mode, source, target, codec, quality="strict")
    return hand_rolled(mode, source, target, codec, contender)


CASES = [(m, s, t, c) for c in CODECS for m in MODES for s in SOURCES for t in TARGETS]


def case_id(mode: str, source: int, target: int, codec: str) -> str:
    return f"{mode}-{source // 1000}k-{target // 1000}k-{codec}"


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("mode,source,target,codec", CASES,
                         ids=[case_id(*c) for c in CASES])
def test_per_frame(benchmark, results, mode_name, mode, source, target, codec, contender):
    benchmark.group = f"per frame: {case_id(mode, source, target, codec)}"
    one_frame = pipeline(mode, source, target, codec, contender)
    frame = frame_bytes(mode, source, codec)
    seconds = per_call(benchmark, lambda: one_frame(frame), BUDGET[mode_name])
    key = f"frame/{case_id(mode, source, target, codec)}"
    results.put(f"{key}/{contender}", seconds, "s")
    results.add("per_frame", {"mode": mode, "source": source, "target": target,
                              "codec": codec, "contender": contender, "seconds": seconds})


def test_per_frame_strict(benchmark, results, mode_name):
    """The headline pipeline with the ``strict`` preset (about twice the filter work)."""
    benchmark.group = "per frame: both-8k-16k-l16"
    one_frame = pipeline("both", 8000, 16000, "l16", "ours-strict")
    frame = frame_bytes("both", 8000, "l16")
    seconds = per_call(benchmark, lambda: one_frame(frame), BUDGET[mode_name])
    results.put("frame/both-8k-16k-l16/ours-strict", seconds, "s")


@pytest.mark.parametrize("contender", ["ours", "soxr-hq"])
def test_per_frame_beside_a_busy_thread(benchmark, results, mode_name, busy_python_thread,
                                        contender):
    """A receiver shares the GIL with the application's threads. Handing the GIL over
    on every frame can cost a whole switch interval; the core keeps it for frame-sized
    work (soxr releases it on every call)."""
    benchmark.group = "per frame: both-8k-16k-l16 beside a busy Python thread"
    one_frame = pipeline("both", 8000, 16000, "l16", contender)
    frame = frame_bytes("both", 8000, "l16")
    seconds = per_call(benchmark, lambda: one_frame(frame), 4 * BUDGET[mode_name])
    results.put(f"frame-busy/{contender}", seconds, "s")
