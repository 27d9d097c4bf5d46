"""Two saved runs' verdict tables side by side: before | after | change.

    python benchmarks/compare.py [BEFORE.json AFTER.json] [-k WORDS]...

Without paths, the two newest runs saved in .benchmarks/ (older first). Both runs are
judged by this tree's verdict rows (harness/verdict.py), from the figures each one saved.
A row shows the figure it is judged by: the ratio to its baseline (our own figure in
brackets), the geometric mean of a spread, or our figure itself for a limit. The change
is after against before (relative; in dB for quality), called better or worse by the
row's direction: costs, latency and memory lower, capacity and rejection higher.
``-k`` keeps the rows whose section or label contains WORDS (case ignored; repeat it
for several). Rows that neither run measured are left out, and counted.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .results import Results, noise, saved_runs
from .rows import NOT_MEASURED, Entry, Ratio, Row, sections, table
from .verdict import ROWS

COLUMNS = ("benchmark", "before", "after", "change")


def change(before: float, after: float, unit: str, better: str | None) -> str:
    """After against before, and whether that is better or worse for this row."""
    if unit == "dB":
        delta = after - before
        text, moved = f"{delta:+.2f} dB", abs(delta) >= 0.005
    elif before:
        delta = after / before - 1
        text, moved = f"{delta:+.0%}", abs(delta) >= 0.005
    else:
        return "-"
    if better is None or not moved:
        return text
    return f"{text}, {'better' if (delta < 0) == (better == 'lower') else 'worse'}"


def describe(label: str, path: Path, run: Results) -> list[str]:
    m = run.machine
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started))
    lines = [f"{label}: {path} ({run.mode} mode, {started})",
             f"  {m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python "
             f"{m.get('python', '?')}, resampler kernel {m.get('kernel', '?')}"]
    line = noise(run)
    if line:
        lines.append(f"  {line}")
    return lines


def compare(before: Results, after: Results, entries: list[Entry],
            write: Callable[[str], None], words: list[str] | None = None) -> int:
    """Write the side-by-side table of the rows (matching any of ``words``, when given);
    return how many rows neither run measured."""
    body: list[tuple[str, list[str]]] = []
    unmeasured = 0
    for section, row in sections(entries):
        name = f"{section}: {row.label}".lower()
        if words and not any(w.lower() in name for w in words):
            continue
        cells = pair(row, before, after)
        if cells is None:
            unmeasured += 1
        else:
            # Two rows may share a label and differ in their baseline.
            label = f"{row.label} [{row.base_name}]" if isinstance(row, Ratio) else row.label
            body.append((section, [label, *cells]))
    if body:
        table(COLUMNS, (30, 14, 14, 12), body, write)
    return unmeasured


def pair(row: Row, before: Results, after: Results) -> tuple[str, str, str] | None:
    old, new = row.headline(before), row.headline(after)
    if old is None and new is None:
        return None
    moved = "-"
    if old is not None and new is not None:
        moved = change(old[0], new[0], new[1], row.better)
    return (old[2] if old else NOT_MEASURED), (new[2] if new else NOT_MEASURED), moved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="compare.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path,
                        help="BEFORE.json AFTER.json (default: the two newest saved runs)")
    parser.add_argument("-k", dest="words", action="append", metavar="WORDS",
                        help="only the rows whose section or label contains WORDS")
    args = parser.parse_args(argv)
    if len(args.runs) not in (0, 2):
        parser.error("give two saved runs, or none for the two newest")
    paths = args.runs or saved_runs()[-2:]
    if len(paths) < 2:
        sys.exit("fewer than two saved runs in .benchmarks/: run `pytest --benchmark` twice")
    before, after = (Results.load(p) for p in paths)
    for label, path, run in (("before", paths[0], before), ("after", paths[1], after)):
        for line in describe(label, path, run):
            print(line)
    if before.mode != after.mode:
        print(f"The runs differ in mode ({before.mode}, {after.mode}): their figures are "
              "not comparable.")
    if before.machine.get("cpu") != after.machine.get("cpu"):
        print("The runs are from different machines: compare ratios, never times.")
    print()
    left_out = compare(before, after, ROWS, print, args.words)
    if left_out:
        print(f"({left_out} rows measured in neither run left out.)")
