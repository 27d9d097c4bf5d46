"""The harness itself: which rows a run left without figures, the verdict table, the
saved file read back, and two runs side by side (no timing; runs with the benchmarks)."""
from __future__ import annotations

from pathlib import Path

from . import keys as k
from .compare import compare
from .results import Results
from .rows import Limit, Ratio, Section, Spread, Worst, render, unmeasured
from .verdict import ROWS

PAIRS = k.RATE_PAIRS[:2]
ENTRIES = [
    Section("ring"),
    Ratio("one thread", k.ring(k.RING_ONE_THREAD, k.OURS), k.ring(k.RING_ONE_THREAD, k.DEQUE),
          "deque", "<=", 1.0),
    Spread("codecs", tuple((k.codec(op, k.OURS), k.codec(op, k.AUDIOOP))
                           for op in k.G711_OPS[:2]), "audioop"),
    Section("quality"),
    Limit("ripple", Worst(tuple(k.quality(p, k.SPEECH, k.RIPPLE) for p in PAIRS), max),
          "<=", 0.1),
]


def measured(ring_ours: float) -> Results:
    run = Results("short", started=0.0)
    run.put(k.ring(k.RING_ONE_THREAD, k.OURS), ring_ours, "s")
    run.put(k.ring(k.RING_ONE_THREAD, k.DEQUE), 2e-7, "s")
    run.put(k.codec(k.G711_OPS[0], k.OURS), 1e-6, "s")
    run.put(k.quality(PAIRS[0], k.SPEECH, k.RIPPLE), 0.04, "dB")
    run.put(k.quality(PAIRS[1], k.SPEECH, k.RIPPLE), 0.07, "dB")
    run.not_measured("audioop is not in this Python",
                     *(k.codec(op, k.AUDIOOP) for op in k.G711_OPS))
    return run


def test_unmeasured_names_the_rows_and_the_keys_neither_measured_nor_declared():
    assert unmeasured(ENTRIES, measured(1e-7)) == [
        ("ring: codecs", [k.codec(k.G711_OPS[1], k.OURS)])]


def test_a_row_without_figures_is_shown_as_not_measured_with_the_declared_reason():
    run = Results("short")
    run.not_measured("audioop is not in this Python", k.codec(k.G711_OPS[0], k.AUDIOOP))
    lines: list[str] = []
    saved = render(ENTRIES, run, lines.append)
    assert lines[2:] == [
        "ring:",
        "one thread | not measured | -        | -     | -      | not in this run",
        "codecs     | not measured | -        | -     | -      | audioop is not in this Python",
        "quality:",
        "ripple     | not measured | -        | -     | -      | not in this run",
    ]
    assert saved[1] == {"section": "ring", "benchmark": "codecs", "ours": "not measured",
                        "baseline": "-", "ratio": "-", "target": "-",
                        "verdict": "audioop is not in this Python"}


def test_the_verdict_judges_ratios_and_the_worst_of_a_measure():
    """The largest ripple of the two pairs; the spread of no audioop is not measured."""
    lines: list[str] = []
    render(ENTRIES, measured(1e-7), lines.append)
    assert lines[3] == ("one thread | 100 ns       | deque 200 ns | 0.50  | <= 1       "
                        "| met by 50%")
    assert lines[6] == ("ripple     | 0.07 dB      | -            | -     | <= 0.10 dB "
                        "| met by 0.03 dB")


def test_a_saved_run_reads_back_as_it_was(tmp_path: Path):
    run = measured(1e-7)
    run.add(k.SERIES_PACED, {"foreign_share": 0.01})
    path = run.save(tmp_path, [])
    back = Results.load(path)
    assert (back.mode, back.started, back.figures, back.skipped, back.series) == \
        (run.mode, run.started, run.figures, run.skipped, run.series)


def test_two_runs_side_by_side():
    lines: list[str] = []
    left_out = compare(measured(1e-7), measured(1.5e-7), ENTRIES, lines.append)
    assert left_out == 1  # codecs: no audioop in either
    assert lines == [
        "benchmark          | before        | after         | change",
        "-------------------+---------------+---------------+------------",
        "ring:",
        "one thread [deque] | 0.50 (100 ns) | 0.75 (150 ns) | +50%, worse",
        "quality:",
        "ripple             | 0.07 dB       | 0.07 dB       | +0.00 dB",
    ]


def test_every_verdict_row_reads_distinct_keys_of_its_own():
    for entry in ROWS:
        if not isinstance(entry, Section):
            needs = entry.needs()
            assert needs and len(set(needs)) == len(needs), entry.label
