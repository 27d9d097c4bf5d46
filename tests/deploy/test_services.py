"""tests/services.py: a missing program skips its test with the reason, or fails it where
PIOPIY_FAST_REQUIRE names the program (as CI does). Run as pytest runs it, in a
subprocess, on a test file that needs a program no machine has."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
MISSING = "piopiy-fast-no-such-program"


@pytest.fixture
def needs_missing(tmp_path):
    test = tmp_path / "test_needs.py"
    test.write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        "from services import program\n\n\n"
        f"def test_needs():\n    program({MISSING!r}, 'apt-get install it')\n")
    return test


def pytest_on(test, require):
    env = {k: v for k, v in os.environ.items() if k != "PIOPIY_FAST_REQUIRE"}
    if require is not None:
        env["PIOPIY_FAST_REQUIRE"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p",
                           "no:cacheprovider", str(test)], capture_output=True, text=True,
                          cwd=test.parent, env=env, timeout=120)


def test_missing_program_skips_with_the_reason(needs_missing):
    result = pytest_on(needs_missing, None)
    assert result.returncode == 0, result.stdout
    assert re.search(rf"SKIPPED \[1\] \S+: {MISSING} is not installed \(apt-get install "
                     r"it\)\n", result.stdout), result.stdout
    assert "1 skipped" in result.stdout
    # Naming other programs changes nothing.
    assert "1 skipped" in pytest_on(needs_missing, "nginx,nats-server").stdout


@pytest.mark.parametrize("require", [f"nginx,{MISSING}", f" {MISSING} ", "all"])
def test_a_required_program_missing_fails(needs_missing, require):
    result = pytest_on(needs_missing, require)
    assert result.returncode == 1, result.stdout
    assert (f"{MISSING} is not installed (apt-get install it), and PIOPIY_FAST_REQUIRE "
            "requires it") in result.stdout
    assert "1 failed" in result.stdout


def test_ci_requires_what_it_installs():
    ci = (TESTS.parent / ".ci" / "run")
    if not ci.is_file():
        pytest.skip("needs the source tree (.ci/run)")
    text = ci.read_text()
    assert "export PIOPIY_FAST_REQUIRE=nginx" in text
    assert "apt-get install -y nginx openssl" in text
