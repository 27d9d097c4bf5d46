"""Received audio into a Pipecat pipeline: PiopiyFrameSerializer.deserialize against
Pipecat's own path for a provider that also sends binary L16 (VonageFrameSerializer,
which resamples with Pipecat's SOXRStreamAudioResampler, soxr VHQ), each producing
InputAudioRawFrames at the pipeline's rate.

One round is one second of a call: 50 frames of 20 ms, so the time per frame is the
round's time / 50. A whole second per round because soxr's stream hands its output
over in blocks (how long, see docs/benchmarks.md): most of the baseline's frames give
nothing and a few give several frames' audio at once; a round of 50 frames holds whole
cycles of that, so its median is the steady per-frame cost.

Neither coroutine suspends (no I/O inside), so each is driven to its end with one
``send`` rather than through an event loop, whose own cost would hide the difference.
"""
import numpy as np
import pytest

pytest.importorskip("pipecat")

from pipecat.processors.frame_processor import FrameProcessorSetup  # noqa: E402
from pipecat.serializers.vonage import VonageFrameSerializer  # noqa: E402

from piopiy_fast.integrations.pipecat import PiopiyFrameSerializer  # noqa: E402

FRAMES = 50  # one second of 20 ms frames per round


def finish(coro):
    """The value of a coroutine that never suspends."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


def one_second(rate, channels=1):
    """50 different 20 ms frames of L16."""
    rng = np.random.default_rng(0)
    step = rate // 50 * channels
    audio = (rng.standard_normal(step * FRAMES) * 3000).astype("<i2").tobytes()
    return [audio[2 * i:2 * (i + step)] for i in range(0, step * FRAMES, step)]


def set_up(serializer, pipeline_rate):
    """What a Pipecat transport does before the pipeline runs (the rates are all it uses)."""
    finish(serializer.setup(FrameProcessorSetup(
        clock=None, task_manager=None, pipeline_worker=None,
        audio_in_sample_rate=pipeline_rate, audio_out_sample_rate=pipeline_rate)))
    return serializer


def past_the_hold(serializer, frames):
    """Feed ``frames`` until the call core has settled the format: what is measured is
    the steady cost of a frame, not the first half second's hold (these frames come
    unpaced, so the hold ends when it is full)."""
    while serializer.format_decision is None:
        for frame in frames:
            finish(serializer.deserialize(frame))
    return serializer


def second_of_call(serializer, frames):
    """Deserialize one second of frames; returns the output bytes, for checking."""
    def run():
        out = 0
        for frame in frames:
            result = finish(serializer.deserialize(frame))
            if result is not None:
                out += len(result.audio)
        return out
    return run


PAIRS = [(8000, 16000), (16000, 8000)]


@pytest.mark.parametrize("source, target", PAIRS)
def test_piopiy_serializer(benchmark, source, target):
    benchmark.group = f"pipecat deserialize, 50 x 20 ms frames: {source} -> {target} Hz"
    frames = one_second(source)
    serializer = past_the_hold(set_up(PiopiyFrameSerializer(
        params=PiopiyFrameSerializer.InputParams(piopiy_sample_rate=source)), target), frames)
    out = benchmark(second_of_call(serializer, frames))
    assert out == 2 * target  # every frame's audio, at once


@pytest.mark.parametrize("source, target", PAIRS)
def test_baseline_pipecat_vonage_serializer_soxr_stream(benchmark, source, target):
    benchmark.group = f"pipecat deserialize, 50 x 20 ms frames: {source} -> {target} Hz"
    serializer = set_up(VonageFrameSerializer(params=VonageFrameSerializer.InputParams(
        vonage_sample_rate=source)), target)
    out = benchmark(second_of_call(serializer, one_second(source)))
    assert abs(out - 2 * target) < 2 * target // 5  # a second, give or take soxr's blocks


def test_piopiy_serializer_both_mode_to_two_channels(benchmark):
    """No Pipecat serializer handles a two-channel stream; the figure is for scale."""
    benchmark.group = "pipecat deserialize, 50 x 20 ms both frames: 8000 -> 2 x 16000 Hz"
    frames = one_second(8000, channels=2)
    serializer = past_the_hold(set_up(PiopiyFrameSerializer(
        params=PiopiyFrameSerializer.InputParams(
            piopiy_sample_rate=8000, listen_mode="both", channel="both")),
        16000), frames)
    out = benchmark(second_of_call(serializer, frames))
    assert out == 2 * 2 * 16000


def test_scale_pipecat_frame_objects_alone(benchmark):
    """For scale: making the 50 InputAudioRawFrames themselves, which the serializer
    under test does once per received frame (the baseline once per block of soxr's)."""
    from pipecat.frames.frames import InputAudioRawFrame

    benchmark.group = "pipecat deserialize, 50 x 20 ms frames: 8000 -> 16000 Hz"
    audio = bytes(640)
    benchmark(lambda: [InputAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1)
                       for _ in range(FRAMES)])
