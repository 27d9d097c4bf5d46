"""Lint: ruff over the source, tests, benchmarks and examples (rules in pyproject.toml)."""
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("ruff")
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_ruff_finds_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "piopiy_fast", "tests", "benchmarks", "examples"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
