"""Per-frame cost of voice activity and call analytics, against the fused ingest of the
same frame and against the detectors people reach for.

One headline frame (20 ms, both channels, 8 kHz L16 of speech-like audio). Ours: the
compiled detector (``VoiceActivity``) over both channels, as the frame sink runs it;
the same feeding a call's analytics (``CallAnalytics``: segments, metrics, levels),
averaged over a stream of turns so its changes of state are paid for. The fused
ingest (decode, de-interleave, resample, ring write) of the same frame is the yardstick.
References per frame of both channels: webrtcvad (two 10 ms frames per channel) and
Silero VAD on onnxruntime (its 256-sample windows, scaled to 160 samples per channel).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from harness import keys as k
from harness.timing import per_call

from piopiy_fast.analytics import AnalyticsSettings, CallAnalytics
from piopiy_fast.audio import CallIngest
from piopiy_fast.simulator.conversation import default_script, scripted

BUDGET = {"full": 0.08, "short": 0.015}
CASE = k.HEADLINE
FRAME = CASE.source // 50  # samples per channel


@pytest.fixture(scope="module")
def frames():
    """A 60 s two-party conversation as headline frames."""
    conv = scripted(default_script(60.0, seed=3), CASE.source, 60.0, seed=3)
    both = np.empty(2 * conv.samples, dtype="<i2")
    both[0::2], both[1::2] = conv.caller, conv.callee
    data = both.tobytes()
    step = 4 * FRAME
    return conv, [data[i:i + step] for i in range(0, len(data) - step + 1, step)]


def cycling(items):
    state = {"i": 0}

    def next_item():
        i = state["i"]
        state["i"] = (i + 1) % len(items)
        return items[i]

    return next_item


def record(results, contender, seconds):
    results.put(k.analytics(contender), seconds, "s")


def test_fused_ingest(benchmark, results, mode_name, frames):
    benchmark.group = "analytics per frame"
    ingest = CallIngest(CASE.source, 2, CASE.target, ring_capacity=1 << 16)
    rings = ingest.rings
    out = np.empty(1 << 16, np.int16)
    frame = cycling(frames[1])

    def one():
        ingest.ingest(frame())
        if rings[0].available > 60000:
            for ring in rings:
                ring.read_into(out)

    record(results, k.OURS, per_call(benchmark, one, BUDGET[mode_name]))


def test_native_vad(benchmark, results, mode_name, frames):
    benchmark.group = "analytics per frame"
    vad = AnalyticsSettings().vad.detector(CASE.source, 2, CASE.target)
    frame = cycling(frames[1])
    record(results, k.VAD, per_call(benchmark, lambda: vad.feed(frame()), BUDGET[mode_name]))


def test_native_vad_with_metrics(benchmark, results, mode_name, frames):
    benchmark.group = "analytics per frame"
    analytics = CallAnalytics(CASE.target, AnalyticsSettings())
    vad = analytics.detector(CASE.source, ("caller", "callee"), 0)
    frame = cycling(frames[1])
    seconds = per_call(benchmark, lambda: vad.feed(frame()), BUDGET[mode_name])
    assert analytics.turns > 0
    record(results, k.VAD_METRICS, seconds)


@pytest.mark.skipif(importlib.util.find_spec("webrtcvad") is None,
                    reason="webrtcvad is not installed")
def test_webrtcvad(benchmark, results, mode_name, frames):
    import webrtcvad
    benchmark.group = "analytics per frame"
    vad = webrtcvad.Vad(2)
    conv = frames[0]
    tens = [(conv.caller[i:i + 80].tobytes(), conv.callee[i:i + 80].tobytes())
            for i in range(0, conv.samples - 160, 160)]
    tens2 = [(conv.caller[i + 80:i + 160].tobytes(), conv.callee[i + 80:i + 160].tobytes())
             for i in range(0, conv.samples - 160, 160)]
    first, second = cycling(tens), cycling(tens2)

    def one():
        a, b = first()
        c, d = second()
        vad.is_speech(a, 8000)
        vad.is_speech(b, 8000)
        vad.is_speech(c, 8000)
        vad.is_speech(d, 8000)

    record(results, k.WEBRTC, per_call(benchmark, one, BUDGET[mode_name]))


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None
                    or importlib.util.find_spec("silero_vad") is None,
                    reason="onnxruntime and silero-vad are not installed")
def test_silero(benchmark, results, mode_name, frames):
    from piopiy_fast.analytics.references import SileroVad
    benchmark.group = "analytics per frame (Silero: per window)"
    silero = SileroVad(8000)
    conv = frames[0]
    windows = [conv.caller[i:i + 256] for i in range(0, conv.samples - 256, 256)]
    window = cycling(windows)
    per_window = per_call(benchmark, lambda: silero.probability(window()), BUDGET[mode_name])
    # Per headline frame: two channels of 160 samples, in 256-sample windows.
    record(results, k.SILERO, per_window * 2 * FRAME / 256)
