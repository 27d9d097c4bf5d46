"""Design of the resampler's filters, and their rendering as the C table the core ships.

The build runs this module (setup.py loads it by path, with scipy from the build
requirements) and compiles the taps into the resampler: at run time nothing designs
and nothing imports scipy. The tests run the design again and compare it with what
the core carries, value for value. It imports nothing of the package, so it can run
before the package is built.

One linear-phase FIR per (rate pair, quality preset). The resampler runs it as a
polyphase bank: upsample by ``up``, filter at ``up * in_rate``, keep every
``down``-th sample.

Both presets pass up to 0.45 x the lower rate with under 0.1 dB of ripple and
reject at least 90 dB from the stop edge: 0.50 x the lower rate for ``strict``,
0.55 x for ``speech``.

Two designs serve them:
- ``speech`` at exactly 2x up or down centres its transition on the lower
  Nyquist, so a Kaiser-windowed sinc is half-band there: every other tap is
  exactly zero and one polyphase branch is a plain delay, about half the work.
- Everything else is equiripple (Parks-McClellan, ``scipy.signal.remez``)
  weighted towards the stopband, since the passband may ripple 0.1 dB while
  the stopband must stay 90 dB down: about a third fewer taps than a Kaiser
  window, which spends the same tiny ripple in both bands. Its length starts
  from the usual estimate and grows until the measured response meets the
  spec with a margin; the result is checked, not assumed.
"""
from __future__ import annotations

import itertools
from math import gcd

import numpy as np
import numpy.typing as npt

# The rates the core converts between (the stream protocol's rates) and its presets.
RATES = (8000, 12000, 16000, 24000, 32000, 48000)
QUALITIES = ("speech", "strict")

PASS_EDGE = 0.45
STOP_EDGE = {"speech": 0.55, "strict": 0.50}
# Designed past the promises (90 dB, 0.1 dB) so that float32 taps and
# measurement resolution never eat the whole margin.
DESIGN_ATTENUATION_DB = 96.0
DESIGN_REJECTION_DB = 93.0
DESIGN_RIPPLE_DB = 0.05
# Stopband weight for remez, about the ratio of the allowed passband error
# (0.05 dB is 0.0058) to the allowed stopband error (-93 dB is 0.000022).
STOPBAND_WEIGHT = 300.0

Taps = npt.NDArray[np.float64]


def ratio(in_rate: int, out_rate: int) -> tuple[int, int]:
    """(up, down): the conversion as a reduced fraction out_rate / in_rate."""
    g = gcd(in_rate, out_rate)
    return out_rate // g, in_rate // g


def design_taps(in_rate: int, out_rate: int, quality: str = "speech") -> Taps:
    """The prototype filter for ``in_rate`` -> ``out_rate``: float64, gain ``up``,
    linear phase, odd length.

    Raises:
        ValueError: a rate outside RATES, equal rates or an unknown preset.
    """
    if in_rate not in RATES or out_rate not in RATES or in_rate == out_rate:
        raise ValueError(f"no filter for {in_rate} -> {out_rate} Hz")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
    up, down = ratio(in_rate, out_rate)
    fs = up * in_rate
    lower = min(in_rate, out_rate)
    pass_hz, stop_hz = PASS_EDGE * lower, STOP_EDGE[quality] * lower
    if quality == "speech" and (up, down) in ((2, 1), (1, 2)):
        taps = _half_band(fs, pass_hz, stop_hz)
    else:
        taps = _equiripple(fs, pass_hz, stop_hz)
    return np.asarray(taps * up, dtype=np.float64)


def measure(taps: Taps, fs: float, pass_hz: float, stop_hz: float) -> tuple[float, float]:
    """(worst passband deviation in dB, least stopband rejection in dB) of a
    unity-gain filter, from its response on a fine grid."""
    from scipy import signal

    freqs, response = signal.freqz(np.asarray(taps, dtype=np.float64), worN=1 << 15, fs=fs)
    level = 20 * np.log10(np.abs(response) + 1e-300)
    return float(np.abs(level[freqs <= pass_hz]).max()), float(-level[freqs >= stop_hz].max())


def _half_band(fs: int, pass_hz: float, stop_hz: float) -> Taps:
    from scipy import signal

    numtaps, beta = signal.kaiserord(DESIGN_ATTENUATION_DB, (stop_hz - pass_hz) / (fs / 2))
    numtaps |= 1  # odd: a centre tap, integer group delay at fs
    taps = signal.firwin(numtaps, (pass_hz + stop_hz) / 2, window=("kaiser", beta), fs=fs)
    # Taps that are zero in exact arithmetic come out of the design as
    # rounding noise; make them exactly zero so they cost nothing.
    taps[np.abs(taps) < 1e-10 * np.abs(taps).max()] = 0.0
    return np.asarray(taps, dtype=np.float64)


def _equiripple(fs: int, pass_hz: float, stop_hz: float) -> Taps:
    from scipy import signal

    estimate, _ = signal.kaiserord(DESIGN_ATTENUATION_DB, (stop_hz - pass_hz) / (fs / 2))
    numtaps = int(estimate * 0.6) | 1
    while True:
        taps = signal.remez(numtaps, [0, pass_hz, stop_hz, fs / 2], [1, 0],
                            weight=[1, STOPBAND_WEIGHT], fs=fs, maxiter=100)
        ripple, rejection = measure(taps.astype(np.float32), fs, pass_hz, stop_hz)
        if ripple <= DESIGN_RIPPLE_DB and rejection >= DESIGN_REJECTION_DB:
            return np.asarray(taps, dtype=np.float64)
        numtaps = (numtaps + max(4, numtaps // 25)) | 1


def every_filter() -> list[tuple[int, int, str]]:
    """(in_rate, out_rate, quality) of every filter the core carries, in table order."""
    return [(a, b, q) for q in QUALITIES for a, b in itertools.permutations(RATES, 2)]


def c_header(note: str) -> str:
    """Every filter's taps as C source: exact (hexadecimal) doubles, one table.

    Args:
        note: says what produced the table (the scipy release); written at the top.
    """
    lines = [
        f"/* The resampler's filters, written at build time by {note}.",
        " * Generated: do not edit. Every value is the design's float64, exactly. */",
        "#ifndef PF_FILTER_TAPS_H",
        "#define PF_FILTER_TAPS_H",
        "",
        "#include <stddef.h>",
        "",
        "typedef struct {",
        "    int in_rate, out_rate;",
        "    const char *quality;",
        "    size_t ntaps;",
        "    const double *taps;",
        "} pf_filter_taps;",
        "",
    ]
    entries = []
    for in_rate, out_rate, quality in every_filter():
        taps = design_taps(in_rate, out_rate, quality)
        name = f"pf_taps_{in_rate}_{out_rate}_{quality}"
        values = [float(t).hex() for t in taps]
        lines.append(f"static const double {name}[{len(values)}] = {{")
        lines.extend("    " + ", ".join(values[i:i + 4]) + ","
                     for i in range(0, len(values), 4))
        lines.append("};")
        entries.append(f'    {{{in_rate}, {out_rate}, "{quality}", {len(values)}, {name}}},')
    lines += ["", f"#define PF_FILTER_COUNT {len(entries)}",
              "static const pf_filter_taps PF_FILTERS[PF_FILTER_COUNT] = {", *entries, "};",
              "", "#endif", ""]
    return "\n".join(lines)
