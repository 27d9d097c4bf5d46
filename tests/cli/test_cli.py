"""The ``piopiy-fast`` command, run as a subprocess."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from running import COMMAND, Running, read_wav, run_command
from stream_testing import UNIT, offline

from piopiy_fast.cli import build_parser


def test_help():
    result = run_command("--help")
    assert result.returncode == 0
    for command in ("serve", "record", "simulate", "demo"):
        assert command in result.stdout


def test_arguments():
    parser = build_parser()
    demo = parser.parse_args(["demo"])
    assert (demo.calls, demo.mode, demo.rate, demo.seconds, demo.target_rate, demo.fast,
            demo.record) == (20, "both", 8000, 10.0, 16000, False, None)
    serve = parser.parse_args(["serve", "--port", "0", "--record", "out", "--listen-mode",
                               "both", "--source-rate", "16000"])
    assert (serve.host, serve.port, serve.record, serve.listen_mode, serve.source_rate,
            serve.target_rate, serve.transport) == (
        "127.0.0.1", 0, Path("out"), "both", 16000, 16000, "auto")
    record = parser.parse_args(["record", "dir", "--port", "9000"])
    assert (record.command, record.record, record.port) == ("record", Path("dir"), 9000)
    sim = parser.parse_args(["simulate", "ws://h:1/x", "--calls", "5", "--fast"])
    assert (sim.url, sim.calls, sim.mode, sim.seconds, sim.fast, sim.start_event) == (
        "ws://h:1/x", 5, "caller", None, True, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "ws://h", "--rate", "11025"])


def test_serve_and_simulate(tmp_path, transport):
    env = dict(os.environ, PIOPIY_FAST_TOKEN="cli-token")
    server = Running("serve", "--port", "0", "--record", str(tmp_path / "rec"),
                     "--stats-interval", "0.2", "--transport", transport, env=env)
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        server.wait_for(r"recording to ")
        refused = run_command("simulate", url, "--seconds", "0.2", "--fast",
                              env=dict(os.environ, PIOPIY_FAST_TOKEN=""))
        assert refused.returncode == 1 and "HTTP 401" in refused.stdout
        result = run_command("simulate", url, "--client", "plain", "--calls", "3", "--mode",
                             "both", "--seconds", "0.5", "--fast", "--report",
                             str(tmp_path / "report.json"), "--sent-dir",
                             str(tmp_path / "sent"), env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "sent 1.5 s of audio" in result.stdout and "0 failed" in result.stdout
        for _ in range(3):
            server.wait_for(r"- call sim-00\d 0.50 s, 25 frames, 0 decode errors, "
                            r"0 overruns, 0 late, close 1000, 2 file\(s\)")
        server.wait_for(r"totals: 0 live, 3 calls, 1 refused, 0 failed, 75 frames")
    finally:
        code = server.finish(signal.SIGINT)
    assert code == 0
    assert "shutting down" in server.lines
    assert sum(line.startswith("+ call sim-") for line in server.lines) == 3

    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["frames"] for c in report["calls"]] == [25, 25, 25]
    for name in ("caller", "callee"):
        for n in (1, 2, 3):
            _, sent = read_wav(tmp_path / "sent" / f"sim-00{n}.{name}.wav")
            rate, recorded = read_wav(tmp_path / "rec" / f"sim-00{n}.{name}.wav")
            assert rate == 16000
            assert np.array_equal(recorded, offline(sent, 8000, 16000))


def test_sigterm_mid_call_finalises_recordings(tmp_path):
    server = Running("record", str(tmp_path), "--port", "0", "--stats-interval", "0",
                     "--drain-seconds", "0")
    sim = None
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        sim = Running("simulate", url, "--client", "plain", "--seconds", "20", "--mode", "callee")
        server.wait_for(r"\+ call sim-001 callee 8000 Hz")
        time.sleep(0.3)
    finally:
        code = server.finish(signal.SIGTERM)
    assert code == 0
    assert any(re.search(r"- call sim-001 \d+\.\d+ s, .* close 1001, 1 file", line)
               for line in server.lines), server.lines
    # The calls were cut short by the server going away: the simulator says so.
    assert sim.proc.wait(15 * UNIT) == 1
    rate, recorded = read_wav(tmp_path / "sim-001.callee.wav")
    assert rate == 16000 and 0 < recorded.size < 20 * 16000


def test_sigterm_drains_calls_that_outlive_it(tmp_path):
    server = Running("serve", "--port", "0", "--stats-interval", "0", "--drain-seconds", "20",
                     "--metrics-port", "0")
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        health = server.wait_for(r"metrics on (http://\S+)/metrics").group(1) + "/healthz"
        sim = Running("simulate", url, "--seconds", "3", "--calls", "2", "--mode", "both")
        server.wait_for_count(r"\+ call sim-00\d", 2)
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for(r"draining: 2 live call\(s\), up to 20 s")
        # Draining: no new calls (the port is closed), and the balancer is told.
        time.sleep(0.3 * UNIT)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(health, timeout=5 * UNIT)
        assert answer.value.code == 503
        refused = run_command("simulate", url, "--seconds", "0.2", "--calls", "1")
        assert refused.returncode != 0
        # The live calls end on their own, whole, and then the server does.
        assert sim.proc.wait(20 * UNIT) == 0
        code = server.proc.wait(20 * UNIT)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    server.read_waiting()
    assert code == 0
    ended = [line for line in server.lines if line.startswith("- call ")]
    assert len(ended) == 2 and all("3.00 s" in line and "close 1000" in line
                                   for line in ended), server.lines


def test_a_second_signal_ends_the_drain(tmp_path):
    server = Running("serve", "--port", "0", "--stats-interval", "0", "--drain-seconds", "20")
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        sim = Running("simulate", url, "--seconds", "20", "--calls", "1")
        server.wait_for(r"\+ call sim-001")
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for(r"draining: 1 live call")
        code = server.finish(signal.SIGINT)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert code == 0
    assert any("second signal: closing the live calls now" in line for line in server.lines)
    assert any(re.search(r"- call sim-001 .* close 1001", line) for line in server.lines)
    assert sim.proc.wait(15 * UNIT) == 1


def test_serve_reports_each_conversation(tmp_path):
    server = Running("record", str(tmp_path), "--port", "0", "--stats-interval", "0",
                     "--drain-seconds", "0")
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        sim = run_command("simulate", url + "/s?listen_mode=both&voice_quality=8000",
                          "--mode", "both", "--seconds", "6", "--fast")
        assert sim.returncode == 0, sim.stdout + sim.stderr
        line = server.wait_for(r"  sim-001: talk caller ([\d.]+) s \(\d+%\), callee ([\d.]+) s")
    finally:
        server.finish(signal.SIGINT)
    assert float(line.group(1)) > 0.5 and float(line.group(2)) > 0.5
    summary = json.loads((tmp_path / "sim-001.analytics.json").read_text())
    assert set(summary["parties"]) == {"caller", "callee"}
    assert summary["duration_seconds"] == pytest.approx(6.0, abs=0.1)
    assert round(summary["parties"]["caller"]["talk_seconds"], 1) == float(line.group(1))


def test_demo(tmp_path):
    result = run_command("demo", "--calls", "20", "--seconds", "2", "--fast", "--record",
                         str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("sim-")]
    assert len(rows) == 20
    for row in rows:
        assert row.split() == [row.split()[0], "both", "2.00", "2.00", "100", "0", "0", "0",
                               "2", "x", "2.00", "s", "yes"]
    assert "received 40.0 s of call audio from 20 calls" in result.stdout
    assert "every recording equals the offline resampling" in result.stdout
    assert len(list(tmp_path.glob("*.wav"))) == 40


@pytest.mark.skipif(not shutil.which("piopiy-fast", path=str(Path(sys.executable).parent)),
                    reason="console script not installed (the package is not pip-installed)")
def test_console_script(tmp_path):
    script = shutil.which("piopiy-fast", path=str(Path(sys.executable).parent))
    result = subprocess.run([script, "demo", "--calls", "2", "--seconds", "0.5", "--fast",
                             "--record", str(tmp_path)], capture_output=True, text=True,
                            timeout=40 * UNIT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 2 calls received complete" in result.stdout


def test_demo_stops_cleanly_on_sigint(tmp_path):
    demo = Running("demo", "--calls", "3", "--seconds", "30", "--record", str(tmp_path))
    demo.wait_for(r"receiver listening on ")
    time.sleep(1.0)
    assert demo.finish(signal.SIGINT) == 0
    assert "stopped early: checking what was sent so far" in demo.lines
    rows = [line.split() for line in demo.lines if line.startswith("sim-")]
    assert len(rows) == 3 and all(row[-1] == "yes" for row in rows)
    assert all(0 < float(row[2]) < 30 and row[2] == row[3] for row in rows)


def _busy_port():
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.fixture
def mistakes(tmp_path):
    """Each mistake a user can make, with the one line the command must answer."""
    busy = _busy_port()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    not_wav = tmp_path / "notes.txt"
    not_wav.write_text("hello")
    port = busy.getsockname()[1]
    yield [
        (["serve", "--port", str(port), "--duration", "1"],
         f"cannot listen on 127.0.0.1 port {port}: Address already in use"),
        (["serve", "--host", "no-such-host.invalid", "--duration", "1"],
         "cannot listen on no-such-host.invalid port 8765: Name or service not known"),
        (["serve", "--certfile", str(tmp_path / "missing.pem"), "--duration", "1"],
         f"certificate file not found: {tmp_path / 'missing.pem'}"),
        (["serve", "--certfile", str(not_wav), "--duration", "1"],
         f"cannot load a PEM certificate and private key from {not_wav}"),
        (["serve", "--record", str(a_file), "--duration", "1"],
         f"record directory is not a directory: {a_file}"),
        (["record", str(a_file / "sub"), "--duration", "1"],
         f"cannot create the record directory {a_file / 'sub'}: Not a directory"),
        (["serve", "--latency", "5", "--duration", "1"],
         "latency must be from 0 to 1 second, not 5.0"),
        (["serve", "--coalesce-reads", "0.5", "--duration", "1"],
         "coalesce_reads must be 'auto' or from 0 to 0.1 seconds, not 0.5"),
        (["simulate", "ws://127.0.0.1:9/x", "--wav", str(tmp_path / "none.wav")],
         f"No such file or directory: {tmp_path / 'none.wav'}"),
        (["simulate", "ws://127.0.0.1:9/x", "--wav", str(not_wav)],
         f"{not_wav} is not a WAV file"),
    ]
    busy.close()


def test_mistakes_give_one_line_and_status_2(mistakes):
    for args, message in mistakes:
        result = subprocess.run([*COMMAND, *args], capture_output=True, text=True,
                                timeout=30 * UNIT)
        assert (result.returncode, result.stderr) == (2, f"piopiy-fast: error: {message}\n"), args


@pytest.mark.parametrize("args, complaint", [
    (["serve", "--port", "70000"], "argument --port: must be from 0 to 65535, not 70000"),
    (["serve", "--max-calls", "0"], "argument --max-calls: must be greater than 0, not 0"),
    (["simulate", "ws://x", "--calls", "0"], "argument --calls: must be greater than 0, not 0"),
    (["simulate", "ws://x", "--seconds=-3"], "argument --seconds: must be greater than 0, not -3"),
    (["simulate", "ws://x", "--frame-ms", "0"],
     "argument --frame-ms: must be greater than 0, not 0"),
    (["serve", "--coalesce-reads", "soon"],
     "argument --coalesce-reads: not 'auto' or a number: 'soon'"),
])
def test_bad_values_are_refused_by_the_parser(args, complaint):
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(complaint)
    assert "Traceback" not in result.stderr


def test_a_traceback_only_with_vv(tmp_path):
    args = ["serve", "--certfile", str(tmp_path / "missing.pem"), "--duration", "1"]
    quiet = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30)
    loud = subprocess.run([*COMMAND, *args, "-vv"], capture_output=True, text=True, timeout=30)
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and loud.returncode != 0


def test_version_and_global_options_after_the_command():
    from piopiy_fast import __version__
    result = subprocess.run([*COMMAND, "--version"], capture_output=True, text=True)
    assert result.stdout == f"piopiy-fast {__version__}\n"
    assert build_parser().parse_args(["serve", "-vv"]).verbose == 2
    assert build_parser().parse_args(["-v", "simulate", "ws://x"]).verbose == 1
    assert build_parser().parse_args(["demo"]).verbose == 0


def test_demo_leaves_nothing_behind_without_record(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run([*COMMAND, "demo", "--calls", "2", "--seconds", "0.3", "--fast"],
                            capture_output=True, text=True, env=env, timeout=40 * UNIT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 WAV files (mono, 16-bit, 16000 Hz) checked, then removed" in result.stdout
    assert list(tmp_path.iterdir()) == []


def _file_size_limit(limit):
    """For a child process: writes past ``limit`` bytes fail as on a full disk (EFBIG
    instead of ENOSPC, with the signal that would kill it ignored)."""
    def apply():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_is_a_failed_recording_with_valid_files(tmp_path):
    from stream_testing import run

    from piopiy_fast.simulator.simulator import simulate

    limit = 20_000  # bytes per file: about 0.6 s of 16 kHz audio of the 2 s sent
    proc = subprocess.Popen([*COMMAND, "record", str(tmp_path), "--port", "0",
                             "--listen-mode", "both", "--stats-interval", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_file_size_limit(limit))
    try:
        url = re.search(r"listening on (ws://\S+)", proc.stdout.readline()).group(1)
        report = run(simulate(url, listen_mode="both", seconds=2.0, call_id_prefix="full"))
        line = ""
        while not line.startswith("- call"):
            line = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20 * UNIT)
    finally:
        proc.kill()
    assert "2 file(s), recording failed (caller: File too large" in line, line
    assert "callee: File too large" in line
    assert "1 call(s) not recorded in full" in rest
    assert proc.returncode == 1, err
    sent = report.calls[0]
    for channel in ("caller", "callee"):
        rate, samples = read_wav(tmp_path / f"full-001.{channel}.wav")
        expected = offline(sent.sent(channel), 8000, 16000)
        # A valid WAV of a whole number of writes: the start of what was received.
        assert rate == 16000 and 0 < samples.size <= (limit - 44) // 2
        assert samples.size % 1600 == 0
        assert np.array_equal(samples, expected[:samples.size])
        assert (tmp_path / f"full-001.{channel}.wav").stat().st_size == 44 + 2 * samples.size


def test_serve_metrics_json_logs_and_no_audio_in_debug_logs():
    import urllib.request

    from stream_testing import run

    from piopiy_fast.simulator.simulator import simulate

    # websockets: the library that traces every frame at debug level.
    proc = subprocess.Popen([*COMMAND, "serve", "--port", "0", "--metrics-port", "0", "-vv",
                             "--log-format", "json", "--stats-interval", "0",
                             "--transport", "websockets"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def message():
            return json.loads(proc.stdout.readline())["message"]
        url = re.search(r"listening on (ws://\S+)", message()).group(1)
        metrics = re.search(r"metrics on (http://\S+/metrics)", message()).group(1)
        report = run(simulate(url, seconds=0.2, call_id_prefix="m"))
        while True:
            line = json.loads(proc.stdout.readline())
            if line.get("event") == "call_ended":
                break
        with urllib.request.urlopen(metrics, timeout=5) as answer:
            text = answer.read().decode()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20 * UNIT)
    finally:
        proc.kill()
    assert f"piopiy_fast_frames_total {float(report.frames)}" in text
    # Every line printed is one JSON object, the per-call and totals lines included.
    assert line["call_id"] == "m-001" and line["message"].startswith("- call m-001 0.20 s, ")
    printed = [json.loads(entry) for entry in rest.splitlines()]
    assert [p["message"] for p in printed][:1] == ["shutting down"]
    totals = printed[-1]
    assert (totals["event"], totals["total_calls"], totals["frames"]) == (
        "totals", 1, report.frames)
    assert totals["message"].startswith("totals: 0 live, 1 calls, 0 refused, 0 failed, ")
    logs = [json.loads(entry) for entry in err.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(logs[0])
    frames = [e["message"] for e in logs if "BINARY" in e["message"]]
    # Every frame traced with its size, none with its bytes.
    assert frames and all(m.endswith("BINARY [320 bytes]") for m in frames), frames[:3]


def test_the_fast_transport_notes_no_connection_at_the_default_level():
    from stream_testing import run

    from piopiy_fast.simulator.simulator import simulate

    proc = subprocess.Popen([*COMMAND, "serve", "--port", "0", "--stats-interval", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"listening on (ws://\S+)", proc.stdout.readline()).group(1)
        run(simulate(url, seconds=0.2))
        while not proc.stdout.readline().startswith("- call"):
            pass
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20 * UNIT)
    finally:
        proc.kill()
    assert err == ""


def test_a_busy_metrics_port_is_named_as_the_metrics_port():
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_command("serve", "--port", "0", "--metrics-port", str(port),
                             "--duration", "1")
    assert (result.returncode, result.stderr, result.stdout) == (
        2, f"piopiy-fast: error: cannot listen on 127.0.0.1 port {port} for /metrics: "
           "Address already in use\n", "")


def test_metrics_listen_on_loopback_whatever_the_host_and_ipv6_is_bracketed():
    pytest.importorskip("prometheus_client")
    assert build_parser().parse_args(["serve", "--host", "0.0.0.0"]).metrics_host == "127.0.0.1"
    server = Running("serve", "--host", "0.0.0.0", "--port", "0", "--metrics-port", "0",
                     "--stats-interval", "0")
    try:
        port = int(server.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")[1])
    finally:
        assert server.finish(signal.SIGTERM) == 0
    assert port > 0
    import socket
    if not socket.has_ipv6:
        return
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return  # no IPv6 loopback here
    server = Running("serve", "--port", "0", "--metrics-port", "0", "--metrics-host", "::1",
                     "--stats-interval", "0")
    try:
        server.wait_for(r"metrics on http://\[::1\]:\d+/metrics, health on /healthz")
    finally:
        assert server.finish(signal.SIGTERM) == 0


def test_json_mode_errors_are_json_too(tmp_path):
    result = run_command("--log-format", "json", "serve", "--certfile",
                         str(tmp_path / "none.pem"))
    assert result.returncode == 2
    line = json.loads(result.stderr)
    assert (line["level"], line["message"]) == (
        "ERROR", f"piopiy-fast: error: certificate file not found: {tmp_path / 'none.pem'}")


def test_a_console_nobody_reads_never_stops_the_server():
    # stdout is a pipe nobody reads: it fills after some hundreds of lines. Every call
    # still goes through, and so does the next one; the lines that did not fit are
    # dropped, counted, and said at the end.
    proc = subprocess.Popen([*COMMAND, "serve", "--port", "0", "--stats-interval", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"listening on (ws://\S+)", proc.stdout.readline()).group(1)
        for round in range(4):
            result = run_command("simulate", url, "--calls", "200", "--seconds", "0.04",
                                 "--fast", "--call-id-prefix", f"r{round}", timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "0 failed" in result.stdout
        # The pipe is full (64 KiB, of 1,600 call lines and the totals lines), and it is
        # still not read: the lines waiting are given up on a few seconds after SIGTERM.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30 * UNIT) == 0
        err = proc.stderr.read()
    finally:
        proc.kill()
    assert re.search(r"piopiy-fast: \d+ output line\(s\) dropped so far: the output was not "
                     r"read as fast as it was written", err), err[-500:]
