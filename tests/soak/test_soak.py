"""The soak script, short: 200 real-time `both` calls for 30 s against a receiver in its
own process; every sample checked, RSS flat after the warm-up, descriptors returned.
The full run (5 minutes) is ``python tests/soak/soak.py``."""
import json
import pathlib
import subprocess
import sys

SOAK = pathlib.Path(__file__).with_name("soak.py")


def test_200_calls_for_30_seconds():
    run = subprocess.run([sys.executable, str(SOAK), "--calls", "200", "--seconds", "30"],
                         capture_output=True, text=True, timeout=180)
    figures = json.loads(run.stdout.splitlines()[-1])
    assert (figures["client_errors"], figures["calls_reported"], figures["calls_not_exact"],
            figures["overruns"]) == (0, 200, 0, 0), figures
    assert figures["fds_after"] == figures["fds_before"], figures
    assert figures["rss_growth"] < 0.05, figures
    assert run.returncode == 0, run.stderr[-2000:]
