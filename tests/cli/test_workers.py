"""``serve --workers N``: N receiver processes on one port under a supervisor, run as a
user would run it. Every recording is checked to the sample, every total exactly.
Linux only: elsewhere the command refuses --workers."""

import collections
import json
import os
import re
import signal
import socket
import sys
import urllib.request

import numpy as np
import pytest
from running import Running, read_wav, run_command
from stream_testing import UNIT, offline

from piopiy_fast.cli import build_parser

FRAME = 160  # samples per channel in a 20 ms frame at 8 kHz

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="SO_REUSEPORT spreads connections on Linux only")


def start_workers(directory, count=2):
    """``record DIR --workers count``; its URL and each worker's pid by index."""
    server = Running("record", str(directory), "--port", "0", "--workers", str(count),
                     "--stats-interval", "0.2")
    pids = {}
    while len(pids) < count:
        ready = server.wait_for(r"\[w(\d+)\] ready, pid (\d+)", timeout=30)
        pids[int(ready.group(1))] = int(ready.group(2))
    url = server.wait_for(rf"listening on (ws://\S+) with {count} workers").group(1)
    return server, url, pids


def call_ends(server, prefix, count):
    """The end lines of ``count`` calls named ``prefix-NNN``: {call id: (worker, frames,
    close code)}. Late frames are allowed: a loaded machine can delay a real-time frame."""
    ends = server.wait_for_count(rf"\[w(\d+)\] - call ({prefix}-\d+) [\d.]+ s, (\d+) "
                                 r"frames, 0 decode errors, 0 overruns, \d+ late, close (\d+), "
                                 r"2 file", count)
    return {m[2]: (int(m[1]), int(m[3]), int(m[4])) for m in ends}


def assert_recorded(directory, sent_dir, call_id, frames):
    """The call's recordings are the offline resampling of its first ``frames`` frames."""
    for name in ("caller", "callee"):
        _, sent = read_wav(sent_dir / f"{call_id}.{name}.wav")
        rate, recorded = read_wav(directory / f"{call_id}.{name}.wav")
        assert rate == 16000 and frames * FRAME <= sent.size
        assert np.array_equal(recorded, offline(sent[:frames * FRAME], 8000, 16000)), call_id


def test_worker_count_option():
    parser = build_parser()
    assert parser.parse_args(["serve", "--workers", "3"]).workers == 3
    assert parser.parse_args(["record", "d", "--workers", "auto"]).workers == len(
        os.sched_getaffinity(0))
    assert parser.parse_args(["serve"]).workers is None
    for bad, complaint in (("0", "must be at least 1, not 0"), ("many", "not a number")):
        result = run_command("serve", "--workers", bad)
        assert result.returncode == 2 and complaint in result.stderr


def test_calls_spread_over_workers_totals_add_up_and_sigterm_drains(tmp_path):
    rec, sent = tmp_path / "rec", tmp_path / "sent"
    server, url, pids = start_workers(rec)
    live = None
    try:
        fast = run_command("simulate", url, "--calls", "20", "--mode", "both", "--seconds",
                           "0.5", "--fast", "--sent-dir", str(sent))
        assert fast.returncode == 0, fast.stdout + fast.stderr
        ends = call_ends(server, "sim", 20)
        assert all((frames, code) == (25, 1000) for _, frames, code in ends.values())
        for call_id in ends:
            assert_recorded(rec, sent, call_id, 25)
        # The kernel spreads connections by a hash: 20 calls all on one worker has odds
        # of one in 2**19.
        per_worker = collections.Counter(worker for worker, _, _ in ends.values())
        assert sorted(per_worker) == [0, 1], per_worker
        # One totals line for both processes, exact: 20 calls of 25 frames.
        server.wait_for(r"totals: 0 live, 20 calls, 0 refused, 0 failed, 500 frames")

        # Calls in progress when SIGTERM comes: every worker stops accepting and lets
        # them finish (they outlive the signal), finishes their recordings, then the
        # supervisor exits 0.
        live = Running("simulate", url, "--calls", "6", "--mode", "both", "--seconds", "3",
                       "--sent-dir", str(sent), "--call-id-prefix", "live")
        server.wait_for(r"totals: 6 live, 26 calls", timeout=20)
    finally:
        code = server.finish(signal.SIGTERM, timeout=30)
    assert code == 0, server.lines
    # The calls ran to their end: the simulator says so.
    assert live.proc.wait(15 * UNIT) == 0
    drained = {}
    for line in server.lines:
        m = re.search(r"\[w\d\] - call (live-\d+) [\d.]+ s, (\d+) frames, .* close 1000, 2 f",
                      line)
        if m:
            drained[m.group(1)] = int(m.group(2))
    assert len(drained) == 6, [line for line in server.lines if "live-" in line]
    assert all(frames == 150 for frames in drained.values())
    for call_id, frames in drained.items():
        assert_recorded(rec, sent, call_id, frames)
    assert "shutting down" in server.lines
    assert server.lines[-1].startswith(
        f"totals: 0 live, 26 calls, 0 refused, 0 failed, {500 + sum(drained.values()):,} "
        "frames, ")


def test_a_killed_worker_is_restarted_and_only_its_calls_end(tmp_path):
    rec, sent, report = tmp_path / "rec", tmp_path / "sent", tmp_path / "report.json"
    server, url, pids = start_workers(rec)
    try:
        sim = Running("simulate", url, "--calls", "12", "--mode", "both", "--seconds", "3",
                      "--report", str(report), "--sent-dir", str(sent))
        started = {}
        for _ in range(12):
            m = server.wait_for(r"\[w(\d)\] \+ call (sim-\d+) both")
            started[m.group(2)] = int(m.group(1))
        # Every live call is in the supervisor's totals before the kill: the dead
        # worker's last report names them.
        server.wait_for(r"totals: 12 live, 12 calls")
        victim = collections.Counter(started.values()).most_common(1)[0][0]
        os.kill(pids[victim], signal.SIGKILL)
        server.wait_for(rf"\[w{victim}\] pid {pids[victim]} killed by SIGKILL: its calls "
                        r"ended; restarting \(1 in the last 60 s\)")
        restarted = int(server.wait_for(rf"\[w{victim}\] ready, pid (\d+)", timeout=30)[1])
        assert restarted != pids[victim]

        # The other worker's calls went on to the end, sample for sample.
        survivors = {c for c, w in started.items() if w != victim}
        ends = call_ends(server, "sim", len(survivors))
        assert set(ends) == survivors
        assert sim.proc.wait(15 * UNIT) == 1
        calls = {c["call_id"]: c for c in json.loads(report.read_text())["calls"]}
        assert {c for c, call in calls.items() if call["error"]} == set(started) - survivors
        for call_id in survivors:
            assert ends[call_id][1:] == (150, 1000)
            assert_recorded(rec, sent, call_id, 150)

        # Serving goes on, over both workers again.
        more = run_command("simulate", url, "--calls", "20", "--mode", "both", "--seconds",
                           "0.2", "--fast", "--call-id-prefix", "more")
        assert more.returncode == 0, more.stdout
        again = call_ends(server, "more", 20)
        assert sorted({worker for worker, _, _ in again.values()}) == [0, 1]
    finally:
        code = server.finish(signal.SIGTERM, timeout=30)
    assert code == 0
    lost = len(started) - len(survivors)
    assert server.lines[-1].startswith(f"totals: 0 live, 32 calls, 0 refused, {lost} failed, ")


def consecutive_free_ports(count):
    """A port such that it and the ``count - 1`` after it are free now."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no run of free ports")


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return answer.read().decode()


def test_each_worker_is_its_own_scrape_target(tmp_path):
    pytest.importorskip("prometheus_client")
    base = consecutive_free_ports(2)
    server = Running("serve", "--port", "0", "--workers", "2", "--metrics-port", str(base),
                     "--stats-interval", "0.2")
    try:
        url = server.wait_for(r"listening on (ws://\S+) with 2 workers", timeout=30)[1]
        for index in (0, 1):
            assert server.wait_for_count(
                rf"\[w{index}\] metrics on http://127\.0\.0\.1:(\d+)/metrics", 1)[0][1] == str(
                base + index)
        sim = run_command("simulate", url, "--calls", "20", "--mode", "both", "--seconds",
                          "0.2", "--fast")
        assert sim.returncode == 0, sim.stdout
        server.wait_for(r"totals: 0 live, 20 calls")
        calls = [re.search(r"^piopiy_fast_calls_total (\S+)$", scrape(base + i), re.M)[1]
                 for i in (0, 1)]
        # Each worker counts its own calls; together, every call once.
        assert all(float(c) > 0 for c in calls) and sum(float(c) for c in calls) == 20
        assert scrape(base, "/healthz") == scrape(base + 1, "/healthz") == "serving\n"
    finally:
        assert server.finish(signal.SIGTERM, timeout=30) == 0


def test_mistakes_are_found_once_before_any_worker_starts(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, message in [
            (["serve", "--certfile", "/no/such.pem"], "certificate file not found: /no/such.pem"),
            (["serve", "--port", str(port)],
             f"cannot listen on 127.0.0.1 port {port}: Address already in use"),
            (["record", str(a_file)], f"record directory is not a directory: {a_file}"),
        ]:
            result = run_command(*args, "--workers", "2", "--duration", "1")
            assert (result.returncode, result.stderr) == (
                2, f"piopiy-fast: error: {message}\n"), args
            assert result.stdout == ""


def test_a_busy_metrics_port_is_found_before_any_worker_starts():
    base = consecutive_free_ports(2)
    with socket.socket() as busy:  # the second worker's (base + 1)
        busy.bind(("127.0.0.1", base + 1))
        busy.listen()
        result = run_command("serve", "--port", "0", "--workers", "2", "--metrics-port",
                             str(base), "--duration", "1")
    assert (result.returncode, result.stderr, result.stdout) == (
        2, f"piopiy-fast: error: cannot listen on 127.0.0.1 port {base + 1} for worker 1's "
           "/metrics: Address already in use\n", "")


def test_duration_stops_every_worker():
    result = run_command("serve", "--port", "0", "--workers", "2", "--duration", "1",
                         "--stats-interval", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split(",")[0] for line in lines[:2]) == ["[w0] ready", "[w1] ready"]
    assert lines[2].startswith("listening on ws://127.0.0.1:") and " with 2 workers " in lines[2]
    assert lines[3:] == ["shutting down", "totals: 0 live, 0 calls, 0 refused, 0 failed, "
                         "0 frames, 0.0 s of audio, 0 decode errors, 0 overruns"]


def test_a_worker_whose_metrics_port_is_taken_is_said_once_and_the_other_serves_on():
    pytest.importorskip("prometheus_client")
    base = consecutive_free_ports(2)
    server = Running("serve", "--port", "0", "--workers", "2", "--metrics-port", str(base),
                     "--stats-interval", "0")
    thief = socket.socket()
    try:
        pids = {}
        while len(pids) < 2:
            ready = server.wait_for(r"\[w(\d+)\] ready, pid (\d+)", timeout=30)
            pids[int(ready[1])] = int(ready[2])
        url = server.wait_for(r"listening on (ws://\S+) with 2 workers")[1]
        # Worker 1 dies; before its replacement is up, something else takes its port.
        os.kill(pids[1], signal.SIGKILL)
        while True:
            try:
                thief.bind(("127.0.0.1", base + 1))
                break
            except OSError:  # still the dying worker's
                pass
        thief.listen()
        server.wait_for(r"\[w1\] pid \d+ exited with status 2 before it was ready: a "
                        r"configuration error \(it has said which\); not restarting it",
                        timeout=30)
        # Worker 0 serves on, alone.
        sim = run_command("simulate", url, "--calls", "6", "--seconds", "0.2", "--fast")
        assert sim.returncode == 0, sim.stdout
        assert len(server.wait_for_count(r"\[w0\] - call sim-", 6)) == 6
    finally:
        code = server.finish(signal.SIGTERM, timeout=30)
        thief.close()
    assert code == 1  # a worker was given up on
    assert sum("not restarting" in line for line in server.lines) == 1
    assert sum("[w1] ready" in line for line in server.lines) == 1
    err = server.proc.stderr.read()
    assert err.count(f"cannot listen on 127.0.0.1 port {base + 1} for /metrics: Address "
                     "already in use") == 1, err
