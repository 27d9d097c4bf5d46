"""The benchmark suite: fixtures, the report header, and the verdict at the end.

Every benchmark runs its named baselines in the same session and records its figures in
``results`` (keys from harness/keys.py); the session ends with the verdict table (ours |
baseline | ratio | target | met or missed) and saves everything to
``.benchmarks/piopiy_fast-<time>.json``, from which ``benchmarks/plot.py`` draws the
figures and ``benchmarks/compare.py`` sets two runs side by side. Ratios within one run
are the figures to quote: absolute times move with the machine and whatever else runs on
it.

A full run (the whole of benchmarks/ collected, nothing deselected, timing on; short
mode included) must give every verdict row its figures: a figure neither measured nor
declared not measured by its benchmark (``results.not_measured``) fails the session,
naming the rows and keys. In a run of a subset such rows are shown as not measured.
"""
from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import pytest
from harness import rows as rows_module
from harness.results import Results, machine, noise
from harness.verdict import LEGEND, ROWS

HERE = Path(__file__).resolve().parent
_RESULTS = pytest.StashKey[Results]()
_MISSING = pytest.StashKey[list[tuple[str, list[str]]]]()
_DESELECTED = pytest.StashKey[int]()


def mode_of(config: pytest.Config) -> str:
    return "short" if config.getoption("benchmark_short", False) else "full"


def pytest_report_header(config: pytest.Config) -> list[str]:
    m = machine()
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
def results(pytestconfig: pytest.Config) -> Results:
    stash = pytestconfig.stash
    if _RESULTS not in stash:
        stash[_RESULTS] = Results(mode_of(pytestconfig))
    return stash[_RESULTS]


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_DESELECTED] = config.stash.get(_DESELECTED, 0) + len(items)


def subset(session: pytest.Session) -> str | None:
    """Why this run is not the full suite, or None when it is: every benchmark under
    benchmarks/ collected (no path inside it named, nothing ignored), none deselected
    (``-k``, ``-m``, ``--deselect``, ``--lf``), and timing on (no ``--benchmark-disable``
    or ``--benchmark-skip``). The short mode is a full run of its own."""
    config = session.config
    named = {Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
             for arg in config.args}
    if named != {HERE}:
        return "paths named"
    if config.getoption("ignore") or config.getoption("ignore_glob"):
        return "paths ignored"
    if config.stash.get(_DESELECTED, 0):
        return f"{config.stash[_DESELECTED]} deselected"
    for option in ("benchmark_disable", "benchmark_skip"):
        if config.getoption(option, False):
            return f"--{option.replace('_', '-')}"
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    found = session.config.stash.get(_RESULTS, None)
    if found is None or subset(session) is not None:
        return
    missing = rows_module.unmeasured(ROWS, found)
    session.config.stash[_MISSING] = missing
    if missing and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    found = config.stash.get(_RESULTS, None)
    if found is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section(
        f"piopiy_fast against its baselines ({found.mode} mode, "
        f"{time.time() - found.started:.0f} s)", sep="=")
    verdict = rows_module.render(ROWS, found, write)
    found.machine = machine()
    path = found.save(config.rootpath / ".benchmarks", verdict)
    write("")
    for paragraph in found.notes + LEGEND + list(filter(None, [noise(found)])):
        for line in textwrap.wrap(paragraph, rows_module.WIDTH, subsequent_indent="  "):
            write(line)
    write("Ratios are ours / baseline from this run (costs: lower is better; capacity: "
          "higher). Quote ratios, not times,")
    write(f"on a shared machine. Saved {path.relative_to(config.rootpath)}; "
          "plots: python benchmarks/plot.py;")
    write("against an earlier run: python benchmarks/compare.py [BEFORE.json AFTER.json]")
    missing = config.stash.get(_MISSING, [])
    if missing:
        terminalreporter.section("verdict rows without figures in a full run", sep="!",
                                 red=True)
        for row, keys in missing:
            more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
            write(f"{row}: {', '.join(keys[:4])}{more}", red=True)
        write("Each benchmark must record these figures, or declare them not measured "
              "(results.not_measured) with the reason.", red=True)


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
