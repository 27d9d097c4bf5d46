"""Draw the benchmark figures from a saved run.

    python benchmarks/plot.py [RESULTS.json] [--out DIR]

RESULTS.json defaults to the newest ``.benchmarks/piopiy_fast-*.json`` (written by
``pytest --benchmark``); DIR to ``docs/benchmarks``. Writes:

- ``per_frame.png``: the cost of one 20 ms frame for every pipeline (listen mode, rates,
  codec), ours against numpy + soxr (HQ, QQ) and numpy + scipy;
- ``capacity.png``: server CPU per frame and p99 frame latency against the number of
  concurrent real-time calls, ours and the hand-rolled receiver, from every hold of
  the paced and capacity runs.

Needs matplotlib (in the bench extra).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import median
from typing import Any

from . import keys as k
from .results import ROOT, saved_runs

CONTENDERS = {  # contender -> (label, colour)
    k.OURS: ("piopiy_fast CallIngest", "#1f77b4"),
    k.SOXR_HQ: ("numpy + soxr HQ", "#d62728"),
    k.SOXR_QQ: ("numpy + soxr QQ", "#ff7f0e"),
    k.SCIPY: ("numpy + scipy resample_poly", "#7f7f7f"),
}
SERVERS = {
    k.BASELINE: ("hand-rolled: websockets + numpy + 2 soxr HQ", "#d62728", "s"),
    k.DEFAULT: ("StreamServer, default transport", "#2ca02c", "^"),
    k.PICOWS: ("StreamServer, picows on uvloop", "#1f77b4", "o"),
    k.WEBSOCKETS: ("StreamServer, websockets transport", "#9467bd", "v"),
}
LATENCY_LIMIT_MS = 20.0  # when a saved hold does not say its own limit


def newest() -> Path:
    runs = saved_runs()
    if not runs:
        sys.exit("no saved run in .benchmarks/: run `pytest --benchmark` first")
    return runs[-1]


def subtitle(data: dict[str, Any]) -> str:
    m = data["machine"]
    return f"{m['cpu']}, {m['cores']} cores, Python {m['python']}; {data['mode']} run"


def per_frame(data: dict[str, Any], out: Path, plt: Any) -> Path | None:
    rows = [r for r in data["series"].get(k.SERIES_PER_FRAME, []) if r["seconds"] is not None]
    if not rows:
        return None
    codecs = sorted({r["codec"] for r in rows}, key=["l16", "pcmu"].index)
    fig, axes = plt.subplots(1, len(codecs), figsize=(6.5 * len(codecs), 9), sharex=True,
                             squeeze=False)
    for ax, codec in zip(axes[0], codecs, strict=False):
        cost: dict[str, dict[str, float]] = defaultdict(dict)
        for r in rows:
            if r["codec"] == codec:
                name = f"{r['mode']} {r['source'] // 1000}k -> {r['target'] // 1000}k"
                cost[name][r["contender"]] = r["seconds"] * 1e6
        names = list(cost)
        present = [c for c in CONTENDERS if any(c in v for v in cost.values())]
        height = 0.8 / len(present)
        for i, contender in enumerate(present):
            label, colour = CONTENDERS[contender]
            ys = [n + (i - (len(present) - 1) / 2) * height for n in range(len(names))]
            xs = [cost[name].get(contender, 0) for name in names]
            ax.barh(ys, xs, height=height, color=colour, label=label)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("µs per 20 ms frame (log scale)")
        ax.set_title(f"{codec.upper()} frames")
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Per-frame cost: decode + de-interleave + resample\n" + subtitle(data),
                 fontsize=11)
    fig.tight_layout()
    path = out / "per_frame.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def capacity(data: dict[str, Any], out: Path, plt: Any) -> Path | None:
    holds = data["series"].get(k.SERIES_CAPACITY, []) + data["series"].get(k.SERIES_PACED, [])
    if not holds:
        return None
    found = {server: data["figures"][k.capacity(server)]["value"] for server in SERVERS
             if k.capacity(server) in data["figures"]}
    fig, (cpu_ax, lat_ax) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    for server, (label, colour, marker) in SERVERS.items():
        by_calls: dict[int, list[tuple[float, float]]] = defaultdict(list)
        for h in holds:
            if h["server"] == server and h["cpu_us_per_frame"] is not None \
                    and h["p99_ms"] is not None:
                by_calls[h["calls"]].append((h["cpu_us_per_frame"], h["p99_ms"]))
        if not by_calls:
            continue
        # Several holds at one number of calls (rounds, the long hold): their median.
        calls = sorted(by_calls)
        cpu = [median(c for c, _ in by_calls[n]) for n in calls]
        p99 = [median(p for _, p in by_calls[n]) for n in calls]
        cpu_ax.plot(calls, cpu, marker=marker, color=colour, label=label)
        lat_ax.plot(calls, p99, marker=marker, color=colour, label=label)
        if server in found:
            for ax in (cpu_ax, lat_ax):
                ax.axvline(found[server], color=colour, linestyle=":", alpha=0.8)
        limits = {h.get("latency_limit_ms", LATENCY_LIMIT_MS) for h in holds
                  if h["server"] == server}
        for limit in limits:
            lat_ax.axhline(limit, color=colour, linestyle="--", linewidth=1, alpha=0.7)
    cpu_ax.set_ylabel("server CPU per received frame (µs)")
    cpu_ax.set_ylim(bottom=0)
    lat_ax.set_ylabel("p99 frame latency, due -> readable (ms, log);\n"
                      "dashed: each server's limit")
    lat_ax.set_yscale("log")
    from matplotlib import ticker  # only with matplotlib, which main() checked for

    lat_ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    lat_ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    lat_ax.set_xlabel("concurrent real-time calls (`both`, 8 kHz, one frame / 20 ms each);"
                      " dotted: capacity found")
    for ax in (cpu_ax, lat_ax):
        ax.grid(alpha=0.3)
    cpu_ax.legend(fontsize=8)

    fig.suptitle("One server core under real-time calls\n" + subtitle(data), fontsize=11)
    fig.tight_layout()
    path = out / "capacity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(prog="plot.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="a saved run (default: newest)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    try:
        import matplotlib
    except ImportError:
        sys.exit('plot.py needs matplotlib: pip install -e ".[test,bench]"')
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = args.results or newest()
    data = json.loads(source.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for draw in (per_frame, capacity):
        path = draw(data, args.out, plt)
        print(f"{draw.__name__}: {path if path else 'no data in ' + str(source)}")

