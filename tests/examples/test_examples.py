"""Every program in examples/ runs as a user would run it: a subprocess, fed by the
simulator playing Piopiy (or, for the SDK example, a recording HTTP server standing in
for the REST API), stopped with Ctrl-C. What each prints is checked to the sample."""
import json
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import wave

import numpy as np
import pytest
from http_recorder import HttpRecorder, Reply
from stream_testing import UNIT, offline, run

from piopiy_fast import Simulator

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
if not EXAMPLES.is_dir():
    pytest.skip("needs the source tree (examples/)", allow_module_level=True)

CALLS = 2
SECONDS = 1.3


class Program:
    """An example running in a subprocess, its output read line by line."""

    def __init__(self, name: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self) -> str:
        return self.lines.get(timeout=20 * UNIT)

    def url(self) -> str:
        line = self.next_line()
        assert line.startswith("listening on ws://127.0.0.1:"), line
        return line.split()[2].rstrip(",")

    def lines_until(self, count: int, match: str) -> list[str]:
        found = []
        while len(found) < count:
            line = self.next_line()
            if match in line:
                found.append(line)
        return found

    def interrupt(self) -> str:
        """Ctrl-C; the program must end by itself with status 0 and no traceback."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20 * UNIT)
        assert self.proc.returncode == 0, err
        assert "Traceback" not in err, err
        return err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def program():
    started = []

    def start(name: str, *args: str) -> Program:
        started.append(Program(name, *args))
        return started[-1]

    yield start
    for p in started:
        p.kill()


def simulate(url: str):
    report = run(Simulator(url + "/stream", calls=CALLS, listen_mode="both",
                           sample_rate=8000, seconds=SECONDS).run())
    assert not report.failed
    return {call.call_id: call for call in report.calls}


def expected_16k(sent, channel: str) -> np.ndarray:
    return offline(sent.sent(channel), 8000, 16000)


def test_receive(program):
    p = program("receive.py", "--port", "0")
    sent = simulate(p.url())
    lines = sorted(p.lines_until(CALLS, "samples"))
    assert lines == sorted(
        f"{cid}: both stereo at 8000 Hz, caller {expected_16k(call, 'caller').size} samples, "
        f"callee {expected_16k(call, 'callee').size} samples, 0 overruns"
        for cid, call in sent.items())
    p.interrupt()


def test_transcribe_chunks(program):
    p = program("transcribe_chunks.py", "--port", "0")
    sent = simulate(p.url())
    seen: dict[str, list[str]] = {}
    ends = 0
    while ends < CALLS:
        line = p.next_line()
        if line.endswith(": ended"):
            ends += 1
            continue
        call_channel, rest = line.split(": ")
        seen.setdefault(call_channel, []).append(rest.split(",")[0])
    p.interrupt()
    for cid, call in sent.items():
        for channel in ("caller", "callee"):
            n = expected_16k(call, channel).size
            rest = [f"{n % 16000 / 16000:.2f} s"] if n % 16000 else []
            sizes = ["1.00 s"] * (n // 16000) + rest
            assert seen[f"{cid} {channel}"] == sizes


def test_thread_reader(program):
    p = program("thread_reader.py", "--port", "0")
    sent = simulate(p.url())
    lines = sorted(line.split(", loudest")[0] for line in p.lines_until(CALLS, "samples"))
    assert lines == sorted(
        f"{cid}: caller {expected_16k(call, 'caller').size} samples, "
        f"callee {expected_16k(call, 'callee').size} samples" for cid, call in sent.items())
    p.interrupt()


def test_record(program, tmp_path):
    p = program("record.py", str(tmp_path), "--port", "0")
    sent = simulate(p.url())
    p.lines_until(CALLS, ".wav")
    p.interrupt()
    for cid, call in sent.items():
        for channel in ("caller", "callee"):
            with wave.open(str(tmp_path / f"{cid}.{channel}.wav"), "rb") as wav:
                assert wav.getframerate() == 16000
                got = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
            assert np.array_equal(got, expected_16k(call, channel))


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="SO_REUSEPORT spreads connections over processes on Linux only")
def test_workers(program):
    p = program("workers.py", "--port", "0", "--workers", "2")
    while not (line := p.next_line()).startswith("listening on "):
        assert "ready, pid" in line, line
    url = line.split()[2]
    report = run(Simulator(url + "/stream", calls=20, listen_mode="both", sample_rate=8000,
                           seconds=SECONDS).run())
    assert not report.failed
    lines = p.lines_until(20, "samples")
    by_call = {line.split()[1].rstrip(":"): line for line in lines}
    for call in report.calls:
        assert by_call[call.call_id].split(" ", 1)[1] == (
            f"{call.call_id}: caller {expected_16k(call, 'caller').size} samples, "
            f"callee {expected_16k(call, 'callee').size} samples")
    # Connections are spread by a hash: all 20 on one worker has odds of 2**-19.
    assert {line.split()[0] for line in lines} == {"[w0]", "[w1]"}
    p.interrupt()


def test_place_call():
    with HttpRecorder(default=Reply(200, {"code": 200, "msg": "Call initiated"})) as api:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "place_call.py"), "919999999999", "918888888888",
             "wss://example.com/stream", "--api", api.url],
            env={"PIOPIY_APP_ID": "2222222", "PIOPIY_APP_TOKEN": "tok", "PATH": "/usr/bin"},
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"code": 200, "msg": "Call initiated"}
        request = api.requests[0]
    assert request.path == "/v2/ind_pcmo_make_call"  # the caller ID is an Indian mobile
    assert request.json == {
        "appid": 2222222, "secret": "tok", "extra_params": {}, "from": 918888888888,
        "duration": 300,
        "pcmo": [{"action": "stream",
                  "ws_url": "wss://example.com/stream?listen_mode=both&voice_quality=8000",
                  "listen_mode": "both", "voice_quality": 8000, "stream_on_answer": True}],
        "to": 919999999999}


def test_place_call_help_names_every_option():
    result = subprocess.run([sys.executable, str(EXAMPLES / "place_call.py"), "--help"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "--api URL" in result.stdout and "default https://rest.telecmi.com" in result.stdout


def bus_lines(sent, name):
    """What bus_worker.py prints for every channel of the calls ``sent`` (reports), read
    from sample ``start`` on."""
    import hashlib
    want = expected_16k(sent, name)
    return want, lambda start=0: (f"{sent.call_id} {name}: 16000 Hz, samples {start}-"
                                  f"{want.size}, 0 gaps (0 samples), sha256 "
                                  f"{hashlib.sha256(want[start:].tobytes()).hexdigest()[:16]}")


@pytest.fixture
def nats_url(tmp_path):
    from nats_testing import NatsServer
    pytest.importorskip("nats", reason="needs nats-py (the nats extra)")
    server = NatsServer(tmp_path / "jetstream")
    yield server.url
    server.stop()


def test_bus_workers_share_the_calls_of_serve_publish(program, nats_url, tmp_path):
    """simulate -> serve --publish -> two worker processes: each call read by exactly one,
    every sample in place."""
    from running import Running
    serve = Running("serve", "--port", "0", "--publish", nats_url, "--stats-interval", "0")
    try:
        url = serve.wait_for(r"listening on (ws://\S+)")[1]
        serve.wait_for(r"publishing to nats://127\.0\.0\.1:\d+, stream PIOPIY, subjects "
                       r"piopiy\.calls\.>")
        workers = [program("bus_worker.py", nats_url, "--group", "e2e") for _ in range(2)]
        for worker in workers:
            assert worker.next_line() == "worker ready, group e2e"
        calls = 8
        report = run(Simulator(url + "/stream", calls=calls, listen_mode="both",
                               sample_rate=8000, seconds=SECONDS, realtime=True).run(),
                     timeout=60)
        assert not report.failed
        per_worker: list[list[str]] = [[], []]
        lines: dict[str, list[str]] = {}
        got = 0
        while got < 2 * calls:  # a line per channel, from whichever worker had the call
            for index, worker in enumerate(workers):
                try:
                    line = worker.lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line.startswith("+ call "):
                    per_worker[index].append(line.split()[2])
                else:
                    lines.setdefault(line.split()[0], []).append(line)
                    got += 1
        for sent in report.calls:
            want = [bus_lines(sent, name)[1]() for name in ("caller", "callee")]
            assert sorted(lines[sent.call_id]) == sorted(want)
        taken = per_worker[0] + per_worker[1]
        assert sorted(taken) == sorted(c.call_id for c in report.calls)  # once each
        assert per_worker[0] and per_worker[1], per_worker  # the pulls alternate
        for worker in workers:
            worker.interrupt()
    finally:
        assert serve.finish(signal.SIGINT) == 0


def test_a_killed_bus_worker_hands_its_call_to_another(program, nats_url):
    """The worker reading a call dies mid-call; another of its pool takes the call over
    and reads the rest of its audio, from where the dead one stopped."""
    import time

    from piopiy_fast import StreamServer
    sent_box = {}

    def receiver():
        async def main():
            async with StreamServer("127.0.0.1", 0, publish=nats_url) as server:
                report = await Simulator(server.url + "/stream", calls=1, listen_mode="both",
                                         sample_rate=8000, seconds=8.0, realtime=True,
                                         seed=11).run()
                sent_box["report"] = report
        run(main(), timeout=60)

    first = program("bus_worker.py", nats_url, "--group", "fo", "--handoff", "3")
    assert first.next_line() == "worker ready, group fo"
    thread = threading.Thread(target=receiver)
    thread.start()
    try:
        assert first.next_line().startswith("+ call sim-001 stereo at 8000 Hz")
        second = program("bus_worker.py", nats_url, "--group", "fo", "--handoff", "3")
        assert second.next_line() == "worker ready, group fo"
        time.sleep(2.0)
        first.proc.kill()
        assert second.next_line() == ("+ call sim-001 stereo at 8000 Hz, read at 16000 Hz, "
                                      "taken over")
        lines = sorted(second.next_line() for _ in range(2))
    finally:
        thread.join(60)
    sent = sent_box["report"].calls[0]
    for line, name in zip(lines, ("callee", "caller"), strict=True):
        want, text = bus_lines(sent, name)
        start = int(line.split("samples ")[1].split("-")[0])
        # It took over mid-call: not from the start, well before the end.
        assert 16000 < start < want.size - 3 * 16000, line
        assert line == text(start) + ", taken over"
    second.interrupt()


def test_analytics(program, tmp_path):
    """The per-call report equals the same analytics run over the audio sent."""
    from piopiy_fast.analytics import analyze
    from piopiy_fast.simulator.simulator import Simulator as Sim

    p = program("analytics.py", "--port", "0", "--reports", str(tmp_path))
    report = run(Sim(p.url() + "/stream", calls=CALLS, listen_mode="both", sample_rate=8000,
                     seconds=12.0).run())
    assert not report.failed
    lines = sorted(p.lines_until(CALLS, "silences over"))
    p.interrupt()
    import importlib.util
    spec = importlib.util.spec_from_file_location("analytics_example", EXAMPLES / "analytics.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    report_line = example.report_line
    expected = {}
    for call in report.calls:
        summary = analyze(call.sent("caller"), call.sent("callee"), 8000).summary()
        expected[call.call_id] = summary
    assert lines == sorted(report_line(cid, s) for cid, s in expected.items())
    for cid, summary in expected.items():
        saved = json.loads((tmp_path / f"{cid}.analytics.json").read_text())
        assert saved["parties"].keys() == summary["parties"].keys()
        assert saved["interruptions"] == summary["interruptions"]


@pytest.mark.parametrize(("name", "needs"), [("fastapi_app.py", ("fastapi", "uvicorn")),
                                              ("aiohttp_app.py", ("aiohttp",))])
def test_receiver_inside_a_web_app(program, name, needs):
    for module in needs:
        pytest.importorskip(module, reason=f"{name} needs {module}")
    import urllib.request

    p = program(name, "--port", "0")
    url = p.url()
    sent = simulate(url)
    lines = sorted(p.lines_until(CALLS, "samples"))
    assert lines == sorted(
        f"{cid}: both stereo at 8000 Hz, caller {expected_16k(call, 'caller').size} samples, "
        f"callee {expected_16k(call, 'callee').size} samples" for cid, call in sent.items())
    # The application's own routes answer on the same port.
    with urllib.request.urlopen(url.replace("ws://", "http://") + "/calls", timeout=10) as r:
        assert json.loads(r.read()) == []
    p.interrupt()
