"""The kinds of verdict row and the tables drawn from them.

A row pairs our figure with a baseline's from the same run and judges the ratio (or the
figure itself) against its target. Every row names the keys it reads (``needs``), so a
run can tell which rows it left without figures; such a row is shown as not measured,
with the reason a benchmark declared when it left the figure out on purpose.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .results import Figure, Results

WIDTH = 120
NOT_MEASURED = "not measured"

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


def table(columns: Sequence[str], floors: Sequence[int],
          body: list[tuple[str, list[str]]], write: Callable[[str], None]) -> None:
    """Write ``body`` ((section, cells) in order) under ``columns``, at most WIDTH wide:
    the column furthest above its floor is squeezed until the table fits, and cells cut
    short end in "~"."""
    widths = [max(len(c), *(len(r[i]) for _, r in body)) for i, c in enumerate(columns)]
    while sum(widths) + 3 * (len(widths) - 1) > WIDTH:
        i = max(range(len(widths)), key=lambda j: widths[j] - floors[j])
        if widths[i] <= floors[i]:
            break
        widths[i] -= 1

    def line(cells: Sequence[str]) -> str:
        fitted = [c if len(c) <= w else c[:w - 1] + "~" for c, w in zip(cells, widths, strict=True)]
        return " | ".join(c.ljust(w) for c, w in zip(fitted, widths, strict=True)).rstrip()

    write(line(columns))
    write("-+-".join("-" * w for w in widths))
    current = None
    for section, cells in body:
        if section != current:
            write(f"{section}:")
            current = section
        write(line(cells))


# -- what a row reads ------------------------------------------------------------------------

@dataclass(frozen=True)
class Worst:
    """The worst of one measure over several figures: ``pick`` is min (the lowest
    rejection over the rate pairs) or max (the largest ripple)."""

    keys: tuple[str, ...]
    pick: Callable[..., Figure]

    def figure(self, results: Results) -> Figure | None:
        found = [results.figures[k] for k in self.keys if k in results.figures]
        if not found:
            return None
        worst = self.pick(found, key=lambda f: f.value)
        return Figure(worst.value, worst.unit, {"of": len(found)})


Ref = str | Worst


def figure_of(results: Results, ref: Ref | None) -> Figure | None:
    if ref is None:
        return None
    return ref.figure(results) if isinstance(ref, Worst) else results.figures.get(ref)


def keys_of(*refs: Ref | float | None) -> tuple[str, ...]:
    out: list[str] = []
    for ref in refs:
        if isinstance(ref, Worst):
            out.extend(ref.keys)
        elif isinstance(ref, str):
            out.append(ref)
    return tuple(out)


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

    def needs(self) -> tuple[str, ...]:
        return keys_of(self.ours, self.base)

    @property
    def better(self) -> str:
        return "higher" if self.op == ">=" else "lower"

    def cells(self, results: Results) -> Cells | None:
        ours, base = results.figures.get(self.ours), results.figures.get(self.base)
        if ours is None or base is None:
            return None
        base_cell = f"{self.base_name} {quantity(base.value, base.unit)}"
        if not base.value:
            return quantity(ours.value, ours.unit), base_cell, "-", "-", "baseline is 0"
        ratio = ours.value / base.value
        target = judged = "-"
        if self.op is not None and self.target is not None:
            target = f"{self.op} {self.target:g}"
            judged = verdict(ratio, self.op, self.target)
            if self.moonshot is not None:
                met = ratio <= self.moonshot if self.op == "<=" else ratio >= self.moonshot
                judged += f"; {self.moonshot:g} {'met' if met else 'not'}"
        return quantity(ours.value, ours.unit), base_cell, f"{ratio:.2f}", target, judged

    def headline(self, results: Results) -> tuple[float, str, str] | None:
        """The figure two runs are compared by: (value, unit, as shown)."""
        ours, base = results.figures.get(self.ours), results.figures.get(self.base)
        if ours is None or base is None or not base.value:
            return None
        ratio = ours.value / base.value
        return ratio, "", f"{ratio:.2f} ({quantity(ours.value, ours.unit)})"


@dataclass
class Limit:
    """A figure of ours against a limit (fixed, taken from another figure of the run, or
    none), a baseline's figure beside it."""

    label: str
    ours: Ref
    op: str | None
    target: float | str | None  # a number, or the key of the figure that is the limit
    base: Ref | None = None
    base_name: str = ""
    show_ratio: bool = True

    def needs(self) -> tuple[str, ...]:
        return keys_of(self.ours, self.base, self.target)

    @property
    def better(self) -> str | None:
        return {"<=": "lower", ">=": "higher"}.get(self.op or "")

    def cells(self, results: Results) -> Cells | None:
        ours = figure_of(results, self.ours)
        if ours is None:
            return None
        base = figure_of(results, self.base)
        base_cell = f"{self.base_name} {quantity(base.value, base.unit)}" if base else "-"
        ratio = f"{ours.value / base.value:.2f}" if base and base.value and self.show_ratio \
            else "-"
        target = results.value(self.target) if isinstance(self.target, str) else self.target
        if self.op is None or target is None:
            return quantity(ours.value, ours.unit), base_cell, ratio, "-", "-"
        return (quantity(ours.value, ours.unit), base_cell, ratio,
                f"{self.op} {quantity(target, ours.unit)}",
                verdict(ours.value, self.op, target, ours.unit))

    def headline(self, results: Results) -> tuple[float, str, str] | None:
        ours = figure_of(results, self.ours)
        if ours is None:
            return None
        return ours.value, ours.unit, quantity(ours.value, ours.unit)


@dataclass
class Spread:
    """Many cases at once: the geometric mean of ours / baseline over ``pairs`` (our key,
    the baseline's), and the worst ratio (which case it is shows in pytest-benchmark's
    tables and the saved results)."""

    label: str
    pairs: tuple[tuple[str, str], ...]
    base_name: str

    better = "lower"

    def needs(self) -> tuple[str, ...]:
        return tuple(key for pair in self.pairs for key in pair)

    def ratios(self, results: Results) -> list[float]:
        found = [(results.value(ours), results.value(base)) for ours, base in self.pairs]
        return [o / b for o, b in found if o is not None and b]

    def cells(self, results: Results) -> Cells | None:
        ratios = self.ratios(results)
        if not ratios:
            return None
        cases = f"{len(ratios)} cases" if len(ratios) == len(self.pairs) \
            else f"{len(ratios)} of {len(self.pairs)} cases"
        return cases, self.base_name, f"{geomean(ratios):.2f}", "-", f"worst {max(ratios):.2f}"

    def headline(self, results: Results) -> tuple[float, str, str] | None:
        ratios = self.ratios(results)
        if not ratios:
            return None
        return geomean(ratios), "", f"{geomean(ratios):.2f} (geomean of {len(ratios)})"


@dataclass
class Section:
    label: str


Row = Ratio | Limit | Spread
Entry = Row | Section


def geomean(values: Iterable[float]) -> float:
    logs = [math.log(v) for v in values]
    return math.exp(sum(logs) / len(logs))


def sections(entries: list[Entry]) -> list[tuple[str, Row]]:
    """Every row with the label of the section it is in."""
    out: list[tuple[str, Row]] = []
    section = ""
    for entry in entries:
        if isinstance(entry, Section):
            section = entry.label
        else:
            out.append((section, entry))
    return out


def why_not_measured(row: Row, results: Results) -> str:
    reasons = sorted({results.skipped[k] for k in row.needs() if k in results.skipped})
    return "; ".join(reasons) if reasons else "not in this run"


def unmeasured(entries: list[Entry], results: Results) -> list[tuple[str, list[str]]]:
    """The rows that read a figure this run neither measured nor declared not measured:
    ("section: label", the keys missing)."""
    out = []
    for section, row in sections(entries):
        missing = [k for k in row.needs() if k not in results.figures and k not in results.skipped]
        if missing:
            out.append((f"{section}: {row.label}", missing))
    return out


def render(entries: list[Entry], results: Results,
           write: Callable[[str], None]) -> list[dict[str, str]]:
    """Write the verdict table; return its rows for saving. A row without its figures is
    shown as not measured, with the reason its benchmark gave when there was one."""
    body: list[tuple[str, list[str]]] = []
    for section, row in sections(entries):
        cells = row.cells(results)
        if cells is None:
            cells = (NOT_MEASURED, "-", "-", "-", why_not_measured(row, results))
        body.append((section, [row.label, *cells]))
    if body:
        table(COLUMNS, (30, 8, 18, 5, 8, 18), body, write)
    return [{"section": section, **dict(zip(COLUMNS, cells, strict=True))}
            for section, cells in body]
