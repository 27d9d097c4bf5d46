"""What a plain ``pytest`` runs (tests/) and what ``pytest --benchmark`` runs (benchmarks/).

pytest-benchmark has options named ``--benchmark-*`` but no ``--benchmark`` itself; this
file adds it. Plain ``pytest`` collects ``testpaths`` (tests/) and never touches
benchmarks/, so it imports neither soxr nor anything else of the bench extra.
``pytest --benchmark`` collects benchmarks/ instead (or the paths given, as usual; naming
a path inside benchmarks/ implies the flag); ``-k`` and the ``--benchmark-*`` options
work as usual.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"
INSTALL = 'pip install -e ".[test,bench]"'


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("piopiy_fast benchmarks")
    group.addoption("--benchmark", action="store_true", default=False,
                    help="run the benchmark suite (benchmarks/) instead of the tests, "
                         "ending with a verdict table; needs the bench extra")
    group.addoption("--benchmark-short", action="store_true", default=False,
                    help="with --benchmark: the short mode CI runs (also "
                         "PIOPIY_FAST_BENCH_SHORT=1): every benchmark, smaller and shorter")


def _names_benchmarks(config: pytest.Config) -> bool:
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
        if path == BENCHMARKS or BENCHMARKS in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not (config.getoption("benchmark") or _names_benchmarks(config)):
        return
    config.option.benchmark = True
    missing = [name for name in ("pytest_benchmark", "soxr")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"the benchmarks need the bench extra ({', '.join(missing)} missing): {INSTALL}")
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [str(BENCHMARKS)]
    if os.environ.get("PIOPIY_FAST_BENCH_SHORT", "") not in ("", "0"):
        config.option.benchmark_short = True
    # pytest-benchmark's own tables: the columns that matter here, unless asked otherwise.
    if config.getoption("benchmark_columns", None) is None:
        config.option.benchmark_columns = ["median", "iqr", "rounds", "iterations"]
