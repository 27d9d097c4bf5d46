"""Piopiy's side of the end-to-end benchmarks: many calls from one process, raw sockets.

    python -m harness.e2e_client [--core N]   (from benchmarks/)

Each call is one WebSocket connection sending 20 ms `both` frames at 8 kHz (160 sample
pairs of L16, 640 bytes), each frame in its own write, as a media server does. Frames
are built and masked once, up front; the loop only reads the clock and writes, so
the client stays far cheaper per frame than any server it drives.

Commands (one JSON object per line in, one per line out):
  connect {port, calls}   open the connections (handshakes in waves)
  paced {t0, end}         real time: call c's frame k is due at
                          t0 + c * 20 ms / calls + k * 20 ms, for every due time
                          before ``end``; first a start event with the call's due0
  burst {frames}          every connection sends ``frames`` frames as fast as it can,
                          one frame per write, connections in turn
  close                   close every connection cleanly and wait for the server's end
Each reply says how many frames were sent; ``paced`` also how late the client was.
"""
from __future__ import annotations

import argparse
import base64
import errno
import json
import os
import resource
import select
import socket
import struct
import sys
import time
from array import array
from bisect import bisect_left, bisect_right
from typing import Any

import numpy as np

from .cores import core_times, foreign_share

FRAME_SECONDS = 0.02
PATH = "/stream?listen_mode=both&voice_quality=8000&call_id=bench-{}"
MASK = b"\x37\xfa\x21\x3d"
DISTINCT_FRAMES = 50  # one second of random audio, sent over and over
WAVE = 64  # connections opened at a time: the server's listen backlog is ~100
monotonic = time.monotonic


def masked(opcode: int, payload: bytes) -> bytes:
    """One client-to-server frame (FIN set, masked with MASK)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    data = np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(MASK, np.uint8), n)
    return head + MASK + data.tobytes()


def both_frames(count: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((count, 320)) * 3000).astype("<i2")
    return [masked(0x2, row.tobytes()) for row in audio]


class Connection:
    """One call's socket, what could not be written yet, and what came back."""

    __slots__ = ("sock", "backlog", "inbox", "closed")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.backlog = b""
        self.inbox = bytearray()
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.backlog:
            self.backlog += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            self.backlog = data[n:]

    def flush(self) -> None:
        if self.backlog:
            backlog, self.backlog = self.backlog, b""
            self.send(backlog)

    def receive(self) -> None:
        """Read what the server sent; answer pings (the server's keepalive)."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            self.closed = True
            return
        inbox = self.inbox
        inbox += data
        while len(inbox) >= 2:
            opcode, n = inbox[0] & 0x0F, inbox[1] & 0x7F
            start = 2
            if n == 126:
                if len(inbox) < 4:
                    return
                n, start = struct.unpack_from("!H", inbox, 2)[0], 4
            elif n == 127:
                if len(inbox) < 10:
                    return
                n, start = struct.unpack_from("!Q", inbox, 2)[0], 10
            if len(inbox) < start + n:
                return
            payload = bytes(inbox[start:start + n])
            del inbox[:start + n]
            if opcode == 0x9:
                self.send(masked(0xA, payload))
            elif opcode == 0x8:
                self.closed = True


class Client:
    def __init__(self, core: int | None) -> None:
        self.core = core
        self.connections: list[Connection] = []
        self.frames = both_frames(DISTINCT_FRAMES)
        self.poller = select.epoll()
        self.by_fd: dict[int, Connection] = {}

    def connect(self, port: int, calls: int) -> dict[str, Any]:
        started = monotonic()
        already = len(self.connections)
        for first in range(already, already + calls, WAVE):
            wave = []
            for number in range(first, min(already + calls, first + WAVE)):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                key = base64.b64encode(os.urandom(16)).decode()
                sock.sendall(
                    f"GET {PATH.format(number)} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
                wave.append(sock)
            for sock in wave:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("server closed during the handshake")
                    head += chunk
                status = head.split(b"\r\n", 1)[0].split()[1]
                if status != b"101":
                    raise ConnectionError(f"handshake answered {status!r}")
                sock.setblocking(False)
                connection = Connection(sock)
                connection.inbox += head.split(b"\r\n\r\n", 1)[1]
                self.connections.append(connection)
                self.by_fd[sock.fileno()] = connection
                self.poller.register(sock.fileno(), select.EPOLLIN)
        return {"calls": len(self.connections), "seconds": monotonic() - started}

    def service(self) -> None:
        """Answer what the servers sent and retry what did not fit in a socket."""
        for fd, _ in self.poller.poll(0):
            self.by_fd[fd].receive()
        for connection in self.connections:
            if connection.backlog:
                connection.flush()

    def paced(self, t0: float, end: float) -> dict[str, Any]:
        connections = self.connections
        calls = len(connections)
        offsets = [c * FRAME_SECONDS / calls for c in range(calls)]
        for c, connection in enumerate(connections):
            start = {"event": "start", "due0": t0 + offsets[c]}
            connection.send(masked(0x1, json.dumps(start).encode()))
        frames = self.frames
        distinct = len(frames)
        cpu, wall, core = time.process_time(), monotonic(), core_times(self.core)
        # Each wake-up sends every frame due by then, in one tight loop; the lateness of
        # the batch's first (most overdue) frame stands for all of its frames.
        batch_late, batch_size = array("d"), array("q")
        sleep = time.sleep
        next_service = t0
        k = c = sent = 0
        while True:
            base = t0 + k * FRAME_SECONDS
            due = base + offsets[c]
            if due >= end:
                break
            now = monotonic()
            if now < due:
                if now >= next_service:
                    self.service()
                    next_service = now + 0.05
                else:
                    # Sleep, never spin: a spinning client can slow the server down
                    # (cores that share a physical one, or the hypervisor's own
                    # scheduling), and waking some tens of µs late costs nothing here.
                    sleep(due - now)
                continue
            last = min(bisect_right(offsets, now - base, lo=c),
                       bisect_left(offsets, end - base, lo=c))
            frame = frames[k % distinct]
            for connection in connections[c:last]:
                connection.send(frame)
            batch_late.append(now - due)
            batch_size.append(last - c)
            sent += last - c
            c = last
            if c == calls:
                c, k = 0, k + 1
        self.service()
        late = np.frombuffer(batch_late, dtype=np.float64)
        order = np.argsort(late)
        weight = np.cumsum(np.frombuffer(batch_size, dtype=np.int64)[order])

        def percentile(q: float) -> float:
            if not sent:
                return 0.0
            return 1e3 * float(late[order][np.searchsorted(weight, q / 100 * sent)])

        cpu, wall = time.process_time() - cpu, monotonic() - wall
        return {
            "sent": sent,
            "cpu_us_per_frame": 1e6 * cpu / max(1, sent),
            "foreign_share": foreign_share(core, core_times(self.core), cpu, wall)
            if self.core is not None else None,
            "late_p50_ms": percentile(50),
            "late_p99_ms": percentile(99),
            "late_max_ms": 1e3 * float(late.max()) if sent else 0.0,
            "backlogged": sum(1 for c in connections if c.backlog),
            "closed_by_server": sum(1 for c in connections if c.closed),
        }

    def burst(self, frames: int) -> dict[str, Any]:
        pool = self.frames
        connections = self.connections
        started = monotonic()
        for k in range(frames):
            frame = pool[k % len(pool)]
            for connection in connections:
                connection.send(frame)
            if not k % 64:
                self.service()
        while any(c.backlog for c in connections):
            self.service()
            select.select([], [], [], 0.0005)
        return {"sent": frames * len(connections),
                "seconds": monotonic() - started}

    def close(self) -> dict[str, Any]:
        goodbye = masked(0x8, struct.pack("!H", 1000))
        for connection in self.connections:
            connection.send(goodbye)
        deadline = monotonic() + 30
        while monotonic() < deadline and not all(c.closed for c in self.connections):
            self.service()
            select.select([], [], [], 0.002)
        unfinished = sum(1 for c in self.connections if not c.closed)
        for connection in self.connections:
            self.poller.unregister(connection.sock.fileno())
            try:
                connection.sock.close()
            except OSError as exc:  # pragma: no cover - only to say what went wrong
                if exc.errno != errno.EBADF:
                    raise
        self.connections.clear()
        self.by_fd.clear()
        return {"unfinished": unfinished}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    client = Client(args.core)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        name = command.pop("cmd")
        try:
            reply = getattr(client, name)(**command)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
