"""How the stream itself decides its layout and rate: the byte rate of paced frames, and
the content statistic where the rate leaves two candidates. Bytes and numbers only.

The content statistic's right-decision rates are measured here on four kinds of audio
(speech-like, fricative-like, tonal, noise), each as one signal at 16 kHz (native, and
8 kHz content upsampled as a telephone call's is) against two signals interleaved at
8 kHz, over 0.5 s windows: the figures the documentation quotes are these.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from piopiy_fast.simulator.synthetic import speech_like
from piopiy_fast.stream.layout import StreamProbe, interleaving, settle_format
from piopiy_fast.stream.wire import StreamFormat

WINDOW = 0.5


def fricative(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Noise in 2-3.8 kHz, in bursts: the hiss of /s/ and /f/."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    b, a = sps.butter(4, [2000 / (rate / 2), min(3800, 0.45 * rate) / (rate / 2)], "band")
    hiss = sps.lfilter(b, a, rng.standard_normal(n))
    bursts = np.sin(np.linspace(0, 8 * np.pi, n)) > 0.3
    return np.clip(np.round(hiss * bursts * 4000), -32768, 32767).astype(np.int16)


def tone(seconds: float, rate: int, seed: int) -> np.ndarray:
    freq = np.random.default_rng(seed).uniform(200, 3000)
    return np.round(8000 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)
                    ).astype(np.int16)


def noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    return np.round(np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 3000
                    ).astype(np.int16)


def speech(seconds: float, rate: int, seed: int) -> np.ndarray:
    return speech_like(seconds, rate, seed)


KINDS = {"speech": speech, "fricative": fricative, "tonal": tone, "noise": noise}


def upsampled(x: np.ndarray) -> np.ndarray:
    """8 kHz content at 16 kHz, as a telephone call streamed at 16 kHz carries."""
    return np.clip(np.round(sps.resample_poly(x.astype(float), 2, 1)), -32768, 32767
                   ).astype(np.int16)


def interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a, b], axis=1).ravel()


def cases(kind):
    make = KINDS[kind]
    return {
        "one signal at 16 kHz": (1, lambda s: make(WINDOW, 16000, s)),
        "8 kHz content at 16 kHz": (1, lambda s: upsampled(make(WINDOW, 8000, s))),
        "two signals at 8 kHz": (2, lambda s: interleave(make(WINDOW, 8000, s),
                                                         make(WINDOW, 8000, s + 1000))),
    }


def rates(kind, seeds=range(40)):
    """(right, wrong) shares of the content statistic's decisions per case."""
    found = {}
    for name, (truth, make) in cases(kind).items():
        votes = [interleaving(make(seed)) for seed in seeds]
        found[name] = (votes.count(truth) / len(votes), votes.count(3 - truth) / len(votes))
    return found


@pytest.mark.parametrize("kind", ["speech", "fricative", "tonal"])
def test_content_is_right_on_half_a_second_of_voice_or_tone(kind):
    for name, (right, wrong) in rates(kind).items():
        assert (right, wrong) == (1.0, 0.0), name


def test_content_never_guesses_on_white_noise():
    # Full-band noise is neither one band-limited signal nor two: no decision, never a
    # wrong one. Noise limited to the telephone band is decided like speech.
    found = rates("noise")
    assert found["one signal at 16 kHz"] == (0.0, 0.0)
    assert found["two signals at 8 kHz"] == (0.0, 0.0)
    assert found["8 kHz content at 16 kHz"] == (1.0, 0.0)


def test_silence_and_one_silent_party():
    assert interleaving(np.zeros(8000, np.int16)) is None
    talker = speech_like(WINDOW, 8000, 3)
    silent = np.zeros_like(talker)
    # Stereo with one party silent: still two channels, whichever party talks.
    assert interleaving(interleave(talker, silent)) == 2
    assert interleaving(interleave(silent, talker)) == 2


def test_one_signal_summed_from_two_parties_is_one_channel():
    mixed = np.clip(speech_like(WINDOW, 8000, 1).astype(np.int32)
                    + speech_like(WINDOW, 8000, 2), -32768, 32767).astype(np.int16)
    assert interleaving(mixed) == 1


# -- the decision: byte rate, then content, then hints ----------------------------------

FRAME = 0.02


def probe_of(samples: np.ndarray, channels: int, rate: int, *, paced=True) -> StreamProbe:
    """Frames of 20 ms fed as mod_audio_stream sends them: one every 20 ms, or all at
    once (the connect burst)."""
    per_frame = int(rate * FRAME) * channels
    probe = StreamProbe()
    for i, start in enumerate(range(0, samples.size - per_frame + 1, per_frame)):
        probe.add(samples[start:start + per_frame].astype("<i2").tobytes(),
                  i * FRAME if paced else 0.0)
    return probe


def stream(layout: str, rate: int, seconds: float = WINDOW) -> tuple[np.ndarray, int]:
    caller, callee = speech_like(seconds, rate, 11), speech_like(seconds, rate, 12)
    if layout == "stereo":
        return interleave(caller, callee), 2
    if layout == "mixed":
        return np.clip(caller.astype(np.int32) + callee, -32768, 32767).astype(np.int16), 1
    return caller, 1


HINTS = {"caller": StreamFormat("caller", 8000), "both": StreamFormat("both", 8000),
         "none": StreamFormat("caller", 8000)}


@pytest.mark.parametrize("layout", ["mono", "mixed", "stereo"])
@pytest.mark.parametrize("url", ["caller", "both", "none"])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_stream_settles_every_layout_url_and_rate(layout, url, rate):
    samples, channels = stream(layout, rate)
    probe = probe_of(samples, channels, rate)
    hinted = StreamFormat(HINTS[url].listen_mode, rate if url != "none" else 8000)
    decision = settle_format(hinted, probe, rate_named=url != "none")
    fmt = decision.format
    assert fmt.sample_rate == rate
    assert fmt.channels == channels
    if layout == "stereo":
        assert (fmt.listen_mode, fmt.layout) == ("both", "stereo")
    elif url == "both":
        assert (fmt.listen_mode, fmt.layout) == ("both", "mixed")
    else:
        # One channel under a one-party URL (or none) is that party; a mixed stream
        # there cannot be told from one party, and is delivered as the URL says.
        assert (fmt.listen_mode, fmt.layout) == ("caller", "mono")
    # Without a rate, only 16 kB/s has one reading (8 kHz mono); 32 and 64 kB/s have
    # two (16 kHz mono or 8 kHz stereo; 32 kHz mono or 16 kHz stereo).
    expected_how = "byte rate" if url != "none" or (rate, channels) == (8000, 1) else "content"
    assert decision.how == expected_how
    overruled = [o.split()[0] for o in decision.overruled]
    if url == "caller" and layout == "stereo":
        assert overruled == ["listen_mode"]
    if url == "none" and rate == 16000:
        assert "rate" in overruled


def test_without_pacing_it_waits_and_then_trusts_the_content():
    samples, channels = stream("mixed", 16000, 0.3)
    probe = probe_of(samples, channels, 16000, paced=False)
    hinted = StreamFormat("both", 8000)
    assert settle_format(hinted, probe, rate_named=False, final=False) is None
    decision = settle_format(hinted, probe, rate_named=False, final=True)
    # No pacing: 640-byte frames of 20 ms would be 32 kB/s, 16 kHz mono or 8 kHz stereo;
    # the content shows one channel.
    assert (decision.format, decision.how) == (StreamFormat("both", 16000, "mixed"), "content")


def test_an_explicit_layout_with_a_named_rate_needs_no_audio():
    decision = settle_format(StreamFormat("both", 8000, "mixed"), StreamProbe(),
                             rate_named=True, explicit="setting", final=False)
    assert (decision.format, decision.how) == (StreamFormat("both", 8000, "mixed"), "setting")


def test_an_explicit_layout_takes_the_rate_from_the_byte_rate():
    samples, _ = stream("stereo", 16000)
    probe = probe_of(samples, 2, 16000)
    decision = settle_format(StreamFormat("both", 8000), probe, rate_named=False,
                             explicit="setting", final=False)
    assert decision.format == StreamFormat("both", 16000)
    assert decision.how == "setting and byte rate"
    assert decision.overruled == ("rate 8000 -> 16000",)


def test_the_connect_burst_does_not_skew_the_byte_rate():
    samples, _ = stream("stereo", 8000, 1.0)
    probe = StreamProbe()
    per_frame = 320
    frames = [samples[i:i + per_frame].astype("<i2").tobytes()
              for i in range(0, samples.size, per_frame)]
    for frame in frames[:30]:     # queued while connecting: all at once
        probe.add(frame, 0.0)
    for i, frame in enumerate(frames[30:]):
        probe.add(frame, 0.001 + i * FRAME)
    assert probe.byte_rate() == pytest.approx(32000)


def test_a_busy_receiver_reading_in_batches_still_sees_the_byte_rate():
    # A loaded event loop reads frames in pairs: gaps of 0 then 40 ms, 20 ms on average.
    samples, _ = stream("stereo", 8000, 1.0)
    probe = StreamProbe()
    frames = [samples[i:i + 320].astype("<i2").tobytes() for i in range(0, samples.size, 320)]
    for i, frame in enumerate(frames):
        probe.add(frame, (i // 2) * 2 * FRAME)
    assert probe.byte_rate() == pytest.approx(32000, rel=0.1)


def test_frames_mostly_back_to_back_are_no_pacing():
    # A sender faster than real time whose frames now and then arrive apart (a loaded
    # machine) must not read as a byte rate: batches of three, 60 ms apart, are not.
    samples, _ = stream("stereo", 8000, 1.0)
    probe = StreamProbe()
    frames = [samples[i:i + 320].astype("<i2").tobytes() for i in range(0, samples.size, 320)]
    for i, frame in enumerate(frames):
        probe.add(frame, (i // 3) * 3 * FRAME)
    assert probe.byte_rate() is None
    decision = settle_format(StreamFormat("both", 8000), probe, rate_named=True)
    assert (decision.format, decision.how) == (StreamFormat("both", 8000), "frame size")


def test_a_byte_rate_no_module_rate_has_falls_back_to_the_frame_size():
    # 24 kB/s would be 12 kHz mono, which the module never sends: the steady 640-byte
    # frames (20 ms at 32 kB/s) decide instead, and the hints choose between readings.
    probe = StreamProbe()
    frame = np.zeros(320, "<i2").tobytes()
    for i in range(20):
        probe.add(frame, i * 640 / 24000)
    decision = settle_format(StreamFormat("both", 8000), probe, rate_named=False)
    assert (decision.format, decision.how) == (StreamFormat("both", 8000), "hints")


def test_frames_slower_than_real_time_under_load_do_not_halve_the_channels():
    # 640-byte frames arriving every 40 ms (a receiver and client swamped at call start)
    # read as 16 kB/s, 8 kHz mono; the steady 20 ms frame size says 32 kB/s, which agrees
    # with the hinted two-party stream at 8 kHz: that reading wins, the noise cannot
    # tell the layout, and the hints choose.
    probe = StreamProbe()
    noise = np.random.default_rng(5).integers(-3000, 3000, 320 * 20, dtype=np.int16)
    for i in range(20):
        probe.add(noise[i * 320:(i + 1) * 320].astype("<i2").tobytes(), i * 0.04)
    decision = settle_format(StreamFormat("both", 8000), probe, rate_named=False)
    assert decision.format == StreamFormat("both", 8000)
