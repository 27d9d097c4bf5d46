"""A real ``nats-server -js`` for the bus tests: on 127.0.0.1, a free port, its store in
a temporary directory; stopped and started again on the same port and store to play an
outage. A test that needs it skips when nats-server is not installed (or fails, where
``PIOPIY_FAST_REQUIRE`` names it)."""

from __future__ import annotations

import socket
import subprocess
import time

from services import program
from stream_testing import UNIT

INSTALL = "apt-get install nats-server, or a release from the NATS project"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One nats-server with JetStream, started by the test and ended by it."""

    def __init__(self, store_dir) -> None:
        self.binary = program("nats-server", INSTALL)
        self.store_dir = store_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd",
             str(self.store_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10 * UNIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.proc.stderr.read()!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    if s.recv(7) == b"INFO {\"":
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10 * UNIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
