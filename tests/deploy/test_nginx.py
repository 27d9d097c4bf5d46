"""deploy/nginx.conf, run by a real nginx on 127.0.0.1 in front of three recording
receivers (``piopiy-fast record``), with simulated Piopiy calls through it.

Checked: every recording sample for sample; each receiver's share of the calls; a
receiver killed mid-call ends its own calls only, and new calls go to the others; wss://
through nginx's TLS listener. The recipe is only shown to work by running it: without
nginx the test skips, saying so, except where ``PIOPIY_FAST_REQUIRE`` names nginx (CI
installs it and does), where it fails.
"""

import asyncio
import os
import re
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from certificates import self_signed, trusting
from running import Running, read_wav
from services import program
from stream_testing import UNIT, offline, run

from piopiy_fast.simulator.simulator import Simulator

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
if not TEMPLATE.is_file():
    pytest.skip("needs the source tree (deploy/)", allow_module_level=True)

RECEIVERS = 3


def nginx_binary():
    return program("nginx", "apt-get install nginx, as .ci/run does")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(template, *, receivers, http_port, https_port, cert, key, prefix):
    """The template with this test's addresses, certificate and paths (no root paths,
    no user switch). Each directive must be found as often as the template has it: a
    template that changes shape fails here, not later."""
    text = template.read_text()

    def sub(pattern, replacement, count=1):
        nonlocal text
        text, found = re.subn(pattern, replacement, text, flags=re.M)
        assert found == count, f"{pattern!r} found {found} times in {template}"

    servers = iter([f"server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;"
                    for port in receivers] + [""] * 3)
    sub(r"^user \S+;", "")
    # No more descriptors than this machine lets a process have (nginx would say so).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    sub(r"^worker_rlimit_nofile (\d+);",
        lambda m: f"worker_rlimit_nofile {min(int(m[1]), hard)};")
    sub(r"^pid \S+;", f"pid {prefix}/nginx.pid;")
    sub(r"^error_log \S+", f"error_log {prefix}/error.log")
    sub(r"access_log \S+", f"access_log {prefix}/access.log")
    sub(r"(\w+_temp_path) \S+;", lambda m: f"{m[1]} {prefix}/{m[1]};", count=5)
    sub(r"server 10\.0\.0\.\d+:8765 .*;", lambda m: next(servers), count=3)
    sub(r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    sub(r"listen 80;", f"listen 127.0.0.1:{http_port};")
    sub(r"ssl_certificate \S+;", f"ssl_certificate {cert};")
    sub(r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};")
    return text


class Nginx:
    def __init__(self, binary, prefix, conf):
        self.prefix = prefix
        self.proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e",
             str(prefix / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_listening(self, port):
        deadline = time.monotonic() + 15 * UNIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.proc.stdout.read()}{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx not listening on {port}: {self.log()}")

    def log(self):
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)  # graceful: the calls are over
        try:
            self.proc.wait(10 * UNIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def deployment(tmp_path):
    """Three receivers recording into rec0..rec2, nginx in front; yields (urls, receivers
    with their directories, cert, nginx)."""
    binary = nginx_binary()  # before anything starts: skipped (or failed) without nginx
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = self_signed(tmp_path)
    receivers = []
    nginx = None
    try:
        for i in range(RECEIVERS):
            directory = tmp_path / f"rec{i}"
            receivers.append((Running("record", str(directory), "--port", "0",
                                      "--stats-interval", "0"), directory))
        ports = [int(r.wait_for(r"listening on ws://127\.0\.0\.1:(\d+)", timeout=30)[1])
                 for r, _ in receivers]
        http_port, https_port = free_port(), free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(render(TEMPLATE, receivers=ports, http_port=http_port,
                               https_port=https_port, cert=cert, key=key, prefix=prefix))
        nginx = Nginx(binary, prefix, conf)
        nginx.wait_listening(http_port)
        nginx.wait_listening(https_port)
        yield (f"ws://127.0.0.1:{http_port}/stream", f"wss://127.0.0.1:{https_port}/stream",
               receivers, cert, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        for receiver, _ in receivers:
            if receiver.proc.poll() is None:
                receiver.finish(signal.SIGTERM)


def calls_on(receiver, prefix, kind="-"):
    """The ids of the calls named ``prefix-NNN`` a receiver has printed a ``kind`` line
    for (``+`` at the first audio, ``-`` at the end, recordings written)."""
    pattern = re.compile(rf"^{re.escape(kind)} call ({prefix}-\d+) ")
    return {m[1] for line in receiver.read_waiting() if (m := pattern.match(line))}


def wait_until(predicate, timeout=20):
    deadline = time.monotonic() + timeout * UNIT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_recorded(directory, call):
    for name in ("caller", "callee"):
        rate, recorded = read_wav(directory / f"{call.call_id}.{name}.wav")
        assert rate == 16000
        assert np.array_equal(recorded, offline(call.sent(name), 8000, 16000)), call.call_id


def test_nginx_recipe(deployment):
    ws_url, wss_url, receivers, cert, nginx = deployment

    # 60 calls in real time: spread over the three receivers, every sample recorded.
    report = run(Simulator(ws_url, calls=60, listen_mode="both", seconds=2.0, realtime=True,
                           call_id_prefix="first").run(), timeout=40)
    assert report.failed == []
    wait_until(lambda: sum(len(calls_on(r, "first")) for r, _ in receivers) == 60)
    shares = [calls_on(r, "first") for r, _ in receivers]
    assert set().union(*shares) == {c.call_id for c in report.calls}
    mean = 60 / RECEIVERS
    assert all(abs(len(share) - mean) <= 0.3 * mean for share in shares), [
        len(share) for share in shares]
    recorded_in = {call_id: directory for (_, directory), share
                   in zip(receivers, shares, strict=True) for call_id in share}
    for call in report.calls:
        assert_recorded(recorded_in[call.call_id], call)

    # A receiver dies mid-call: its calls fail, the others' go on to the end, exactly.
    victim, _ = receivers[1]

    async def kill_mid_call():
        sim = Simulator(ws_url, calls=30, listen_mode="both", seconds=4.0, realtime=True,
                        call_id_prefix="second")
        task = asyncio.ensure_future(sim.run())
        while sum(len(calls_on(r, "second", "+")) for r, _ in receivers) < 30:
            await asyncio.sleep(0.02)
        os.kill(victim.proc.pid, signal.SIGKILL)
        return await task

    report = run(kill_mid_call(), timeout=40)
    lost = calls_on(victim, "second", "+")
    assert lost and {c.call_id for c in report.failed} == lost
    assert all(0 < c.seconds < 4.0 for c in report.failed)
    survivors = [(r, d) for r, d in receivers if r is not victim]
    wait_until(lambda: sum(len(calls_on(r, "second")) for r, _ in survivors) == 30 - len(lost))
    for call in report.calls:
        if call.call_id not in lost:
            assert call.error is None and call.frames == 200
            directory = next(d for r, d in survivors if call.call_id in calls_on(r, "second"))
            assert_recorded(directory, call)

    # New calls: none fails, all go to the two receivers left.
    report = run(Simulator(ws_url, calls=12, listen_mode="both", seconds=0.5,
                           call_id_prefix="third").run())
    assert report.failed == []
    wait_until(lambda: sum(len(calls_on(r, "third")) for r, _ in survivors) == 12)
    assert all(calls_on(r, "third") for r, _ in survivors)

    # wss:// through nginx's TLS listener: refused without trusting the certificate.
    untrusted = run(Simulator(wss_url, seconds=0.2, call_id_prefix="untrusted").run())
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.calls[0].error
    report = run(Simulator(wss_url, calls=4, listen_mode="both", seconds=0.5,
                           call_id_prefix="tls", ssl=trusting(cert)).run())
    assert report.failed == []
    wait_until(lambda: sum(len(calls_on(r, "tls")) for r, _ in survivors) == 4)
    for call in report.calls:
        directory = next(d for r, d in survivors if call.call_id in calls_on(r, "tls"))
        assert_recorded(directory, call)
    assert "[emerg]" not in nginx.log() and "[alert]" not in nginx.log()
