"""The figures a benchmark run produces, and the file they are saved to
(``.benchmarks/piopiy_fast-<time>.json``, which the plots and the comparison of two runs
read back).

Benchmarks put named figures (``Results.put``, keys from keys.py) and series for the
plots (``Results.add``). A benchmark that leaves a figure out on purpose (a contender
this Python or machine lacks) says so with ``Results.not_measured``: in a full run every
figure a verdict row reads must be either measured or declared not measured.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import keys

ROOT = Path(__file__).resolve().parents[2]  # the repository
SAVED = ROOT / ".benchmarks"
PREFIX = "piopiy_fast-"


@dataclass
class Figure:
    value: float
    unit: str
    info: dict[str, Any] = field(default_factory=dict)


class Results:
    def __init__(self, mode: str, started: float | None = None) -> None:
        self.mode = mode
        self.started = time.time() if started is None else started
        self.figures: dict[str, Figure] = {}
        self.skipped: dict[str, str] = {}  # key -> why it was not measured
        self.series: dict[str, list[dict[str, Any]]] = {}
        self.notes: list[str] = []  # printed under the verdict table
        self.machine: dict[str, Any] = {}

    def put(self, key: str, value: float | None, unit: str, **info: Any) -> None:
        """Record a figure; None (timing disabled) and non-finite values are not figures."""
        if value is not None and math.isfinite(value):
            self.figures[key] = Figure(float(value), unit, info)

    def not_measured(self, reason: str, *names: str) -> None:
        """Declare figures left out on purpose, and why (shown in the verdict table)."""
        for key in names:
            self.skipped[key] = reason

    def add(self, series: str, item: dict[str, Any]) -> None:
        self.series.setdefault(series, []).append(item)

    def value(self, key: str) -> float | None:
        figure = self.figures.get(key)
        return None if figure is None else figure.value

    def save(self, directory: Path, verdict: list[dict[str, str]]) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = directory / f"{PREFIX}{stamp}.json"
        data = {
            "mode": self.mode,
            "started": self.started,
            "seconds": time.time() - self.started,
            "machine": self.machine,
            "figures": {k: {"value": f.value, "unit": f.unit, **f.info}
                        for k, f in self.figures.items()},
            "not_measured": self.skipped,
            "series": self.series,
            "notes": self.notes,
            "verdict": verdict,
        }
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Results:
        """A saved run, as it was recorded."""
        data = json.loads(path.read_text())
        found = cls(data["mode"], data["started"])
        for key, saved in data["figures"].items():
            info = {k: v for k, v in saved.items() if k not in ("value", "unit")}
            found.figures[key] = Figure(float(saved["value"]), saved["unit"], info)
        found.skipped = dict(data.get("not_measured", {}))
        found.series = data.get("series", {})
        found.notes = data.get("notes", [])
        found.machine = data.get("machine", {})
        return found


def saved_runs(directory: Path = SAVED) -> list[Path]:
    """The saved runs, oldest first."""
    return sorted(directory.glob(f"{PREFIX}*.json"), key=lambda p: p.stat().st_mtime)


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


def noise(found: Results) -> str | None:
    """How much of the server's and the client's cores other processes took during the
    end-to-end holds; None when the run had none."""
    holds = [h for series in (keys.SERIES_PACED, keys.SERIES_CAPACITY)
             for h in found.series.get(series, [])]

    def shares(name: str) -> list[float]:
        return sorted(h[name] for h in holds if h.get(name) is not None)

    server, client = shares("foreign_share"), shares("client_foreign_share")
    if not server:
        return None
    median = server[len(server) // 2]
    line = (f"Noise: other processes took {median:.0%} of the server's core in the median "
            f"end-to-end hold (max {server[-1]:.0%})")
    if client:
        line += f", {client[len(client) // 2]:.0%} of the client's (max {client[-1]:.0%})"
    return line + ("; end-to-end figures unreliable." if median > 0.05 else ".")
