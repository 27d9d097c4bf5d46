"""The benchmark suite: fixtures, the report header, and the verdict at the end.

Every benchmark runs its named baselines in the same session and records its figures in
``results``; the session ends with the verdict table (ours | baseline | ratio | target |
met or missed) and saves everything to ``.benchmarks/piopiy_fast-<time>.json``, from
which ``benchmarks/plot.py`` draws the figures. Ratios within one run are the figures
to quote: absolute times move with the machine and whatever else runs on it.
"""
from __future__ import annotations

import textwrap
import threading
import time

import pytest
import results as results_module
from verdict import LEGEND, ROWS, derive

_RESULTS = pytest.StashKey[results_module.Results]()


def mode_of(config: pytest.Config) -> str:
    return "short" if config.getoption("benchmark_short", False) else "full"


def pytest_report_header(config: pytest.Config) -> list[str]:
    m = results_module.machine()
    return [
        f"benchmarks ({mode_of(config)} mode): {m['cpu']}, {m['cores']} cores, "
        f"python {m['python']}, resampler kernel {m['kernel']}",
        ", ".join(f"{name} {m[name] or 'missing'}"
                  for name in ("numpy", "scipy", "soxr", "websockets", "picows", "uvloop")),
    ]


@pytest.fixture(scope="session")
def mode_name(pytestconfig: pytest.Config) -> str:
    """``full``, or ``short`` (``--benchmark-short`` or PIOPIY_FAST_BENCH_SHORT=1)."""
    return mode_of(pytestconfig)


@pytest.fixture(scope="session")
def results(pytestconfig: pytest.Config) -> results_module.Results:
    stash = pytestconfig.stash
    if _RESULTS not in stash:
        stash[_RESULTS] = results_module.Results(mode_of(pytestconfig))
    return stash[_RESULTS]


def noise(found: results_module.Results) -> list[str]:
    """How much of the server's and the client's cores other processes took during the
    end-to-end holds."""
    holds = [h for series in ("paced", "capacity") for h in found.series.get(series, [])]

    def shares(key: str) -> list[float]:
        return sorted(h[key] for h in holds if h.get(key) is not None)

    server, client = shares("foreign_share"), shares("client_foreign_share")
    if not server:
        return []
    median = server[len(server) // 2]
    line = (f"Noise: other processes took {median:.0%} of the server's core in the median "
            f"end-to-end hold (max {server[-1]:.0%})")
    if client:
        line += f", {client[len(client) // 2]:.0%} of the client's (max {client[-1]:.0%})"
    return [line + ("; end-to-end figures unreliable." if median > 0.05 else ".")]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    found = config.stash.get(_RESULTS, None)
    if found is None or not found.figures:
        return
    derive(found)
    write = terminalreporter.write_line
    terminalreporter.section(
        f"piopiy_fast against its baselines ({found.mode} mode, "
        f"{time.time() - found.started:.0f} s)", sep="=")
    rows = results_module.render(ROWS, found, write)
    path = found.save(config.rootpath / ".benchmarks", rows, results_module.machine())
    write("")
    for paragraph in found.notes + LEGEND + noise(found):
        for line in textwrap.wrap(paragraph, results_module.WIDTH, subsequent_indent="  "):
            write(line)
    write("Ratios are ours / baseline from this run (costs: lower is better; capacity: "
          "higher). Quote ratios, not times,")
    write(f"on a shared machine. Saved {path.relative_to(config.rootpath)}; "
          "plots: python benchmarks/plot.py")


@pytest.fixture
def busy_python_thread():
    """The application's own Python work, competing for the GIL."""
    stop = threading.Event()

    def application_work() -> None:
        while not stop.is_set():
            sum(range(100))

    worker = threading.Thread(target=application_work, daemon=True)
    worker.start()
    yield
    stop.set()
    worker.join()
