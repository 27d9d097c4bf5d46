"""Codecs: G.711 mu-law and A-law, encode and decode of one second at 8 kHz, against
the standard library's ``audioop`` (removed in Python 3.13; skipped there) and a numpy
lookup table; L16 de-interleave of a `both` stream (one second, and one 20 ms frame)
against numpy slicing. Every contender's output is checked equal to ours first.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from harness import g711
from harness import keys as k
from harness.timing import per_call

from piopiy_fast.audio import alaw_decode, alaw_encode, deinterleave, ulaw_decode, ulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python 3.13 and later
        audioop = None
NO_AUDIOOP = "audioop is not in this Python"

BUDGET = {"full": 0.1, "short": 0.01}
RATE = 8000


def speech(n: int) -> np.ndarray:
    return (np.random.default_rng(1).standard_normal(n) * 3000).astype(np.int16)


SAMPLES = speech(RATE)
ULAW = g711.ULAW_ENCODE[SAMPLES.view(np.uint16)].tobytes()
ALAW = g711.ALAW_ENCODE[SAMPLES.view(np.uint16)].tobytes()
PCM = SAMPLES.tobytes()

CONTENDERS = (k.OURS, k.AUDIOOP, k.NUMPY_LUT)
ULAW_DECODE, ULAW_ENCODE, ALAW_DECODE, ALAW_ENCODE = k.G711_OPS
OPS = {
    # op: (ours, audioop, numpy lookup table)
    ULAW_DECODE: (lambda: ulaw_decode(ULAW),
                    lambda: audioop.ulaw2lin(ULAW, 2),
                    lambda: g711.ULAW_DECODE[np.frombuffer(ULAW, np.uint8)]),
    ULAW_ENCODE: (lambda: ulaw_encode(SAMPLES),
                    lambda: audioop.lin2ulaw(PCM, 2),
                    lambda: g711.ULAW_ENCODE[SAMPLES.view(np.uint16)].tobytes()),
    ALAW_DECODE: (lambda: alaw_decode(ALAW),
                    lambda: audioop.alaw2lin(ALAW, 2),
                    lambda: g711.ALAW_DECODE[np.frombuffer(ALAW, np.uint8)]),
    ALAW_ENCODE: (lambda: alaw_encode(SAMPLES),
                    lambda: audioop.lin2alaw(PCM, 2),
                    lambda: g711.ALAW_ENCODE[SAMPLES.view(np.uint16)].tobytes()),
}


def as_bytes(out: object) -> bytes:
    return out.tobytes() if isinstance(out, np.ndarray) else bytes(out)


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("op", k.G711_OPS)
def test_g711(benchmark, results, mode_name, op, contender):
    benchmark.group = f"G.711 {op}, 1 s at 8 kHz"
    if contender == k.AUDIOOP and audioop is None:
        results.not_measured(NO_AUDIOOP, k.codec(op, contender))
        pytest.skip(NO_AUDIOOP)
    fn = OPS[op][CONTENDERS.index(contender)]
    assert as_bytes(fn()) == as_bytes(OPS[op][0]())
    results.put(k.codec(op, contender), per_call(benchmark, fn, BUDGET[mode_name]), "s")


@pytest.mark.parametrize("contender", [k.OURS, k.NUMPY_SLICING])
@pytest.mark.parametrize("op, seconds", [(k.DEINTERLEAVE_1S, 1.0), (k.DEINTERLEAVE_20MS, 0.02)],
                         ids=["1s", "20ms"])
def test_l16_deinterleave(benchmark, results, mode_name, op, seconds, contender):
    benchmark.group = f"L16 de-interleave, `both` at 8 kHz, {seconds:g} s"
    data = speech(int(2 * RATE * seconds)).tobytes()
    if contender == k.OURS:
        def fn():
            return deinterleave(np.frombuffer(data, "<i2"))
    else:
        def fn():
            pairs = np.frombuffer(data, "<i2")
            return pairs[0::2].copy(), pairs[1::2].copy()
    left, right = fn()
    expected = np.frombuffer(data, "<i2").reshape(-1, 2)
    assert np.array_equal(left, expected[:, 0]) and np.array_equal(right, expected[:, 1])
    results.put(k.codec(op, contender), per_call(benchmark, fn, BUDGET[mode_name]), "s")
