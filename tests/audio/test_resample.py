"""The streaming resampler against scipy and against the ideal signal, and its
streaming properties."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from scipy import signal

from piopiy_fast._core.resample import Resampler, resample, simd_kernel
from piopiy_fast.audio import QUALITIES, RATES
from piopiy_fast.audio.filters import filter_for
from piopiy_fast.errors import PiopiyValidationError

PAIRS = [(a, b) for a, b in itertools.permutations(RATES, 2)]
FAST_PAIRS = [(8000, 16000), (16000, 8000), (8000, 12000), (48000, 16000), (12000, 32000),
              (16000, 12000)]
EDGE_LENGTHS = [0, 1, 2, 99, 100, 101]


def speechlike(n, rate, seed=0, amplitude=8000.0, channels=1):
    """Noise shaped like speech: most energy below 1 kHz, some up to Nyquist."""
    rng = np.random.default_rng(seed)
    b, a = signal.butter(2, 0.25)
    x = signal.lfilter(b, a, rng.standard_normal((n, channels)), axis=0)
    x *= amplitude / max(1e-9, np.abs(x).max())
    return x[:, 0] if channels == 1 else x


def expected_length(n, in_rate, out_rate):
    """round(n * out_rate / in_rate), halves rounded up: soxr's one-shot length."""
    return int(np.floor(n * out_rate / in_rate + 0.5))


def reference(x, spec):
    """The aligned stream computed by scipy in float64: resample_poly with the same
    filter (it removes the filter's delay itself and zero-pads both ends), cut to
    the rounded length."""
    if len(x) == 0:
        return np.zeros(x.shape, np.float64)
    y = signal.resample_poly(x, spec.up, spec.down, axis=0, window=spec.taps / spec.up)
    return y[:expected_length(len(x), spec.in_rate, spec.out_rate)]


def plain_reference(x, spec):
    """The unaligned stream (aligned=False), process + flush, by scipy in float64."""
    y = signal.upfirdn(spec.taps, x, spec.up, spec.down, axis=0)
    total = -(-(len(x) * spec.up + spec.center) // spec.down)
    return y[:total]


def random_splits(n, rng):
    cuts, at = [0], 0
    while at < n:
        at = min(n, at + int(rng.choice([0, 1, 2, 17, 160, 509, 1000, 2000])))
        cuts.append(at)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_float32_matches_scipy_resample_poly(in_rate, out_rate, quality):
    x = speechlike(3000, in_rate, seed=in_rate + out_rate) / 32768.0
    r = Resampler(in_rate, out_rate, dtype="float32", quality=quality, aligned=True)
    got = np.concatenate([r.process(x.astype(np.float32)), r.flush()])
    want = reference(x.astype(np.float32).astype(np.float64),
                     filter_for(in_rate, out_rate, quality))
    assert got.shape == want.shape == (expected_length(3000, in_rate, out_rate),)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
def test_unaligned_float32_matches_scipy_upfirdn(in_rate, out_rate):
    """The default: the filter's own output, ``delay`` samples late."""
    x = speechlike(3000, in_rate, seed=in_rate + out_rate) / 32768.0
    r = Resampler(in_rate, out_rate, dtype="float32")
    got = np.concatenate([r.process(x.astype(np.float32)), r.flush()])
    spec = filter_for(in_rate, out_rate)
    want = plain_reference(x.astype(np.float32).astype(np.float64), spec)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    assert r.delay == spec.center / spec.down and not r.aligned


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
def test_output_k_is_the_input_at_time_k_over_out_rate(in_rate, out_rate):
    """A tone in the passband comes out as the same tone sampled at k / out_rate:
    no library in between, and one sample of misalignment would be 50 times the
    error allowed."""
    freq = 0.2 * min(in_rate, out_rate)
    x = (0.5 * np.sin(2 * np.pi * freq * np.arange(in_rate) / in_rate)).astype(np.float32)
    y = resample(x, in_rate, out_rate).astype(np.float64)
    ideal = 0.5 * np.sin(2 * np.pi * freq * np.arange(len(y)) / out_rate)
    middle = slice(out_rate // 10, len(y) - out_rate // 10)  # away from the cut ends
    # 0.1 dB of passband ripple is 1.2 % of the amplitude
    assert np.abs(y[middle] - ideal[middle]).max() <= 0.5 * 0.012


@pytest.mark.parametrize("in_rate,out_rate", FAST_PAIRS)
def test_int16_stereo_matches_scipy_within_rounding(in_rate, out_rate):
    x = speechlike(4000, in_rate, channels=2, seed=3).astype(np.int16)
    got = resample(x, in_rate, out_rate)
    want = np.clip(np.rint(reference(x.astype(np.float64), filter_for(in_rate, out_rate))),
                   -32768, 32767)
    assert got.shape == want.shape == (expected_length(4000, in_rate, out_rate), 2)
    assert got.dtype == np.int16
    # float32 arithmetic may land on the other side of a rounding boundary
    assert np.abs(got.astype(np.int64) - want).max() <= 1


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
@pytest.mark.parametrize("channels,dtype", [(1, "int16"), (2, "int16"), (2, "float32")])
@pytest.mark.parametrize("aligned", [True, False])
def test_streaming_equals_one_shot_for_any_split(in_rate, out_rate, channels, dtype, aligned):
    rng = np.random.default_rng(in_rate * 7 + out_rate)
    x = speechlike(5000, in_rate, channels=channels, seed=1)
    x = x.astype(np.int16) if dtype == "int16" else (x / 32768).astype(np.float32)
    whole = Resampler(in_rate, out_rate, channels, dtype, aligned=aligned)
    want = np.concatenate([whole.process(x), whole.flush()])
    if aligned:
        assert np.array_equal(want, resample(x, in_rate, out_rate))
    for _ in range(3):
        r = Resampler(in_rate, out_rate, channels, dtype, aligned=aligned)
        pieces = [r.process(x[a:b]) for a, b in random_splits(len(x), rng)]
        got = np.concatenate(pieces + [r.flush()])
        assert np.array_equal(got, want)


@seed(20261206)
@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PAIRS), st.sampled_from(EDGE_LENGTHS + [509, 1000]),
       st.lists(st.sampled_from([0, 1, 2, 17, 99, 100, 101, 509]), min_size=1, max_size=30)
       .filter(any))
def test_any_split_of_any_length_gives_the_one_shot_samples(pair, n, sizes):
    in_rate, out_rate = pair
    x = speechlike(n, in_rate, seed=n).astype(np.int16) if n else np.zeros(0, np.int16)
    want = resample(x, in_rate, out_rate)
    assert len(want) == expected_length(n, in_rate, out_rate)
    r = Resampler(in_rate, out_rate, aligned=True)
    pieces, at, i = [], 0, 0
    while at < n:
        step = sizes[i % len(sizes)]
        pieces.append(r.process(x[at:at + step]))
        at += step
        i += 1
    assert np.array_equal(np.concatenate(pieces + [r.flush()]), want)


@pytest.mark.parametrize("n", EDGE_LENGTHS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_edge_lengths_give_the_promised_output_count(n, quality):
    for in_rate, out_rate in PAIRS:
        spec = filter_for(in_rate, out_rate, quality)
        aligned = Resampler(in_rate, out_rate, quality=quality, aligned=True)
        head = aligned.process(np.ones(n, np.int16))
        assert len(head) + len(aligned.flush()) == expected_length(n, in_rate, out_rate)
        assert len(resample(np.ones(n, np.int16), in_rate, out_rate, quality)) == (
            expected_length(n, in_rate, out_rate))
        plain = Resampler(in_rate, out_rate, quality=quality)  # the default
        head = plain.process(np.ones(n, np.int16))
        assert len(head) + len(plain.flush()) == -(-(n * spec.up + spec.center) // spec.down)


@pytest.mark.parametrize("in_rate,out_rate", [(8000, 16000), (16000, 8000), (32000, 12000)])
def test_one_shot_length_and_timing_agree_with_soxr(in_rate, out_rate):
    soxr = pytest.importorskip("soxr")
    for n in [*EDGE_LENGTHS, 3, 5, 7, 4001]:
        x = speechlike(n, in_rate, seed=n).astype(np.float32) / 32768 if n else (
            np.zeros(0, np.float32))
        assert len(resample(x, in_rate, out_rate)) == len(soxr.resample(x, in_rate, out_rate))
    # Both aligned: a passband tone lines up sample for sample.
    t = np.arange(in_rate) / in_rate
    x = (0.5 * np.sin(2 * np.pi * 0.1 * min(in_rate, out_rate) * t)).astype(np.float32)
    ours = resample(x, in_rate, out_rate)
    theirs = soxr.resample(x, in_rate, out_rate, quality="HQ")
    middle = slice(out_rate // 10, len(ours) - out_rate // 10)
    assert np.abs(ours[middle] - theirs[middle]).max() <= 0.01


def test_flush_resets_to_a_fresh_state():
    x = speechlike(1000, 8000).astype(np.int16)
    r = Resampler(8000, 16000, aligned=True)
    first = np.concatenate([r.process(x), r.flush()])
    second = np.concatenate([r.process(x), r.flush()])
    assert np.array_equal(first, second)


def test_clear_forgets_history():
    x = speechlike(1000, 8000).astype(np.int16)
    r = Resampler(8000, 16000, aligned=True)
    r.process(x[::-1].copy())
    r.clear()
    assert np.array_equal(np.concatenate([r.process(x), r.flush()]), resample(x, 8000, 16000))


@pytest.mark.parametrize("in_rate,out_rate", [(8000, 16000), (16000, 8000), (12000, 32000)])
@pytest.mark.parametrize("aligned", [True, False])
def test_delay_places_an_impulse(in_rate, out_rate, aligned):
    r = Resampler(in_rate, out_rate, dtype="float32", aligned=aligned)
    x = np.zeros(2000, np.float32)
    at = 1000
    x[at] = 1.0
    y = np.concatenate([r.process(x), r.flush()])
    # the impulse's centre of mass sits `delay` output samples late: none when aligned
    centre = np.sum(np.arange(len(y)) * y) / np.sum(y)
    assert centre == pytest.approx(at * out_rate / in_rate + r.delay, abs=1e-3)
    assert (r.delay == 0.0) == aligned


def test_int16_output_saturates_instead_of_wrapping():
    # A full-scale square wave overshoots (Gibbs) once band-limited.
    x = np.tile(np.r_[np.full(20, 32767), np.full(20, -32768)], 50).astype(np.int16)
    y = resample(x, 8000, 16000)
    assert y.max() == 32767 and y.min() == -32768
    want = np.clip(np.rint(reference(x.astype(np.float64), filter_for(8000, 16000))),
                   -32768, 32767)
    assert np.abs(y.astype(np.int64) - want).max() <= 1


def test_equal_rates_pass_through():
    x = speechlike(500, 16000, channels=2).astype(np.int16)
    r = Resampler(16000, 16000, 2)
    assert r.delay == 0
    assert np.array_equal(r.process(x), x)
    assert r.flush().shape == (0, 2)


def tone_level_db(y, rate, freq):
    """Level of one frequency in y relative to full scale 1.0, windowed."""
    w = signal.windows.blackmanharris(len(y))
    spectrum = np.fft.rfft(y * w) / (w.sum() / 2)
    freqs = np.fft.rfftfreq(len(y), 1 / rate)
    k = np.argmin(np.abs(freqs - freq))
    return 20 * np.log10(np.abs(spectrum[k - 3:k + 4]).max() + 1e-30)


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_filter_meets_the_quality_promise(in_rate, out_rate, quality):
    """Ripple <= 0.1 dB to 0.45 x the lower rate; >= 90 dB rejection from the
    stop edge; measured on the float32 taps the core runs."""
    spec = filter_for(in_rate, out_rate, quality)
    taps = spec.taps.astype(np.float32).astype(np.float64) / spec.up
    freqs, response = signal.freqz(taps, worN=1 << 15, fs=spec.up * in_rate)
    level = 20 * np.log10(np.abs(response) + 1e-300)
    assert np.abs(level[freqs <= spec.pass_edge_hz]).max() <= 0.1
    assert level[freqs >= spec.stop_edge_hz].max() <= -90.0


@pytest.mark.parametrize("in_rate,out_rate", [(16000, 8000), (48000, 16000), (32000, 12000)])
def test_streaming_path_rejects_aliases(in_rate, out_rate):
    """A tone above the stop edge, through the real streaming path, leaves
    nothing at its alias frequency."""
    spec = filter_for(in_rate, out_rate, "strict")
    freq = spec.stop_edge_hz + 300.0
    alias = abs(out_rate - freq)
    t = np.arange(in_rate) / in_rate
    x = (0.9 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    r = Resampler(in_rate, out_rate, dtype="float32", quality="strict")
    y = np.concatenate([r.process(x[i:i + 160]) for i in range(0, len(x), 160)]).astype(np.float64)
    steady = y[len(y) // 4: len(y) // 4 + out_rate // 2]
    assert tone_level_db(steady, out_rate, alias) - 20 * np.log10(0.9) <= -90.0


def test_passband_tone_keeps_its_level_through_the_stream():
    t = np.arange(8000) / 8000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = resample(x, 8000, 16000).astype(np.float64)
    assert len(y) == 16000
    steady = y[2000:2000 + 8000]
    assert tone_level_db(steady, 16000, 1000) == pytest.approx(20 * np.log10(0.5), abs=0.1)


def test_a_kernel_is_picked_and_the_generic_one_agrees():
    assert simd_kernel() in ("avx2", "neon", "generic")
    code = ("import numpy as np, sys; from piopiy_fast._core.resample import resample, simd_kernel;"
            "x = np.frombuffer(sys.stdin.buffer.read(), np.int16);"
            "y = resample(x, 8000, 16000);"
            "sys.stdout.buffer.write(simd_kernel().encode() + b'|' + y.tobytes())")
    x = speechlike(4000, 8000).astype(np.int16)
    env = dict(os.environ, PIOPIY_FAST_SIMD="generic")
    out = subprocess.run([sys.executable, "-c", code], input=x.tobytes(), env=env,
                         capture_output=True, check=True).stdout
    name, _, data = out.partition(b"|")
    assert name == b"generic"
    generic = np.frombuffer(data, np.int16)
    # different instruction sequences may round differently, by one step at most
    assert np.abs(generic.astype(np.int64) - resample(x, 8000, 16000)).max() <= 1


@pytest.mark.parametrize("args,message", [
    ((8000, 11025), "out_rate must be one of"),
    ((44100, 8000), "in_rate must be one of"),
    ((8000, 16000, 3), "channels must be 1 or 2"),
    ((8000, 16000, 1, "int32"), "dtype must be one of"),
    ((8000, 16000, 1, "int16", "best"), "quality must be one of"),
])
def test_bad_arguments_name_what_is_allowed(args, message):
    with pytest.raises(PiopiyValidationError, match=message):
        Resampler(*args)


def test_bad_samples_are_refused_clearly():
    r = Resampler(8000, 16000, 2)
    with pytest.raises(TypeError, match="numpy array"):
        r.process(b"\x00\x00\x00\x00")
    with pytest.raises(TypeError, match="int16"):
        r.process(np.zeros((4, 2), np.float32))
    with pytest.raises(PiopiyValidationError, match=r"shape \(n, 2\)"):
        r.process(np.zeros(8, np.int16))
    with pytest.raises(PiopiyValidationError, match="C-contiguous"):
        r.process(np.zeros((8, 4), np.int16)[:, :2])
