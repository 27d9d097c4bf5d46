"""The figures a benchmark run produces, the verdict table drawn from them, and the file
they are saved to (``.benchmarks/piopiy_fast-<time>.json``, which plot.py reads).

Benchmarks put named figures (``Results.put``) and series for the plots
(``Results.add``); the verdict rows below pair our figure with a baseline's from the
same run and judge the ratio (or the figure itself) against its target. A row whose
figures were not measured in this run (``-k``, a skipped case) is left out.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WIDTH = 120


@dataclass
class Figure:
    value: float
    unit: str
    info: dict[str, Any] = field(default_factory=dict)


class Results:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.started = time.time()
        self.figures: dict[str, Figure] = {}
        self.series: dict[str, list[dict[str, Any]]] = {}
        self.notes: list[str] = []  # printed under the verdict table

    def put(self, key: str, value: float | None, unit: str, **info: Any) -> None:
        if value is not None and math.isfinite(value):
            self.figures[key] = Figure(float(value), unit, info)

    def add(self, series: str, item: dict[str, Any]) -> None:
        self.series.setdefault(series, []).append(item)

    def value(self, key: str) -> float | None:
        figure = self.figures.get(key)
        return None if figure is None else figure.value

    def matching(self, prefix: str) -> dict[str, Figure]:
        return {k: v for k, v in self.figures.items() if k.startswith(prefix)}

    def save(self, directory: Path, rows: list[list[str]], machine: dict[str, Any]) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = directory / f"piopiy_fast-{stamp}.json"
        data = {
            "mode": self.mode,
            "started": self.started,
            "seconds": time.time() - self.started,
            "machine": machine,
            "figures": {k: {"value": f.value, "unit": f.unit, **f.info}
                        for k, f in self.figures.items()},
            "series": self.series,
            "notes": self.notes,
            "verdict": [dict(zip(COLUMNS, row, strict=True)) for row in rows],
        }
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "scipy", "soxr", "websockets", "picows", "uvloop"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            versions[name] = None
    from piopiy_fast.audio import simd_kernel

    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": platform.platform(), "kernel": simd_kernel(), **versions}


# -- formatting ------------------------------------------------------------------------------

def quantity(value: float, unit: str) -> str:
    """A figure in the unit that reads best: times scale, the rest keep their unit."""
    if unit == "s":
        for factor, name in ((1e9, "ns"), (1e6, "µs"), (1e3, "ms"), (1.0, "s")):
            shown = value * factor
            if abs(shown) < 999.5 or name == "s":
                return f"{shown:.3g} {name}"
    if unit == "calls":
        return f"{value:.0f} calls"
    if unit == "dB" and abs(value) < 10:
        return f"{value:.2f} dB"
    if unit in ("KiB", "dB", "ms"):
        return f"{value:.1f} {unit}" if abs(value) < 1000 else f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}"


def verdict(value: float, op: str, target: float, absolute_unit: str | None = None) -> str:
    """met/missed and by how much: a relative margin for ratios, the unit's for figures."""
    met = value <= target if op == "<=" else value >= target
    if absolute_unit == "dB":
        gap = abs(value - target)
        gap = f"{gap:.2f} dB" if gap < 1 else f"{gap:.1f} dB"
    else:
        gap = f"{abs(value - target) / abs(target):.0%}" if target else "-"
    return f"{'met' if met else 'MISSED'} by {gap}"


# -- the rows --------------------------------------------------------------------------------

Cells = tuple[str, str, str, str, str]
COLUMNS = ("benchmark", "ours", "baseline", "ratio", "target", "verdict")


@dataclass
class Ratio:
    """Ours against a baseline measured in the same run; ratio = ours / baseline."""

    label: str
    ours: str
    base: str
    base_name: str
    op: str | None = None  # "<=" (a cost) or ">=" (a capacity)
    target: float | None = None
    moonshot: float | None = None

    def cells(self, results: Results) -> Cells | None:
        ours, base = results.figures.get(self.ours), results.figures.get(self.base)
        if ours is None or base is None or not base.value:
            return None
        ratio = ours.value / base.value
        target = judged = "-"
        if self.op is not None and self.target is not None:
            target = f"{self.op} {self.target:g}"
            judged = verdict(ratio, self.op, self.target)
            if self.moonshot is not None:
                met = ratio <= self.moonshot if self.op == "<=" else ratio >= self.moonshot
                judged += f"; {self.moonshot:g} {'met' if met else 'not'}"
        return (quantity(ours.value, ours.unit),
                f"{self.base_name} {quantity(base.value, base.unit)}",
                f"{ratio:.2f}", target, judged)


@dataclass
class Limit:
    """A figure of ours against a limit (fixed, taken from another figure of the run, or
    none), a baseline's figure beside it."""

    label: str
    ours: str
    op: str | None
    target: float | str | None  # a number, or the key of the figure that is the limit
    base: str | None = None
    base_name: str = ""
    show_ratio: bool = True

    def cells(self, results: Results) -> Cells | None:
        ours = results.figures.get(self.ours)
        if ours is None:
            return None
        base = results.figures.get(self.base) if self.base else None
        base_cell = f"{self.base_name} {quantity(base.value, base.unit)}" if base else "-"
        ratio = f"{ours.value / base.value:.2f}" if base and base.value and self.show_ratio \
            else "-"
        target = results.value(self.target) if isinstance(self.target, str) else self.target
        if self.op is None or target is None:
            return quantity(ours.value, ours.unit), base_cell, ratio, "-", "-"
        return (quantity(ours.value, ours.unit), base_cell, ratio,
                f"{self.op} {quantity(target, ours.unit)}",
                verdict(ours.value, self.op, target, ours.unit))


@dataclass
class Spread:
    """Many cases at once: the geometric mean of ours / baseline, and the worst ratio
    (which case it is shows in pytest-benchmark's tables and the saved results)."""

    label: str
    prefix: str
    ours_suffix: str
    base_suffix: str
    base_name: str

    def cells(self, results: Results) -> Cells | None:
        ratios = []
        for key, figure in results.matching(self.prefix).items():
            if key.endswith(self.ours_suffix):
                base = results.value(key.removesuffix(self.ours_suffix) + self.base_suffix)
                if base:
                    ratios.append((figure.value / base, key))
        if not ratios:
            return None
        mean = math.exp(sum(math.log(r) for r, _ in ratios) / len(ratios))
        worst = max(r for r, _ in ratios)
        return (f"{len(ratios)} cases", self.base_name, f"{mean:.2f}", "-",
                f"worst {worst:.2f}")


@dataclass
class Section:
    label: str

    def cells(self, results: Results) -> Cells | None:
        return None


Row = Ratio | Limit | Spread | Section


def render(rows: list[Row], results: Results, write: Callable[[str], None]) -> list[list[str]]:
    """Write the verdict table (at most WIDTH columns); return its rows for saving."""
    body: list[tuple[str, list[str]]] = []
    section = ""
    for row in rows:
        if isinstance(row, Section):
            section = row.label
            continue
        cells = row.cells(results)
        if cells is not None:
            body.append((section, [row.label, *cells]))
    if not body:
        return []
    widths = [max(len(c), *(len(r[i]) for _, r in body)) for i, c in enumerate(COLUMNS)]
    # Squeeze the column furthest above its floor until the table fits; cells cut
    # short end in "~".
    floors = (30, 8, 18, 5, 8, 18)
    while sum(widths) + 3 * (len(widths) - 1) > WIDTH:
        i = max(range(len(widths)), key=lambda j: widths[j] - floors[j])
        widths[i] -= 1

    def line(cells: list[str]) -> str:
        fitted = [c if len(c) <= w else c[:w - 1] + "~" for c, w in zip(cells, widths, strict=True)]
        return " | ".join(c.ljust(w) for c, w in zip(fitted, widths, strict=True)).rstrip()

    write(line(list(COLUMNS)))
    write("-+-".join("-" * w for w in widths))
    current = None
    for section, cells in body:
        if section != current:
            write(f"{section}:")
            current = section
        write(line(cells))
    return [cells for _, cells in body]
