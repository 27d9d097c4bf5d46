"""End-to-end runs over 127.0.0.1: a server process, a client process, and what they measure.

The server under test runs alone in its own process, pinned to one core when the machine
has two or more; the client runs pinned to another. The server reports its own CPU time
(``time.process_time``: user + system, all its threads) and the frames it received, so
"CPU per frame" is that server's alone. This module starts them, runs holds and bursts,
and searches for capacity.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import keys as k

HERE = Path(__file__).resolve().parent  # benchmarks/harness
FRAME_SECONDS = 0.02
# A call is held when its p99 frame latency stays under this, beyond the delay the server
# is configured to add on purpose: ours wakes readers on a clock (``latency``, 50 ms by
# default) and may read a socket up to ``coalesce_reads`` late (5 ms), so its limit is
# those plus 20 ms; the hand-rolled receiver's is 20 ms.
LATENCY_LIMIT_MS = 20.0
# The client pays the kernel's loopback work for every frame it sends, so with enough
# calls it cannot keep time on its core (docs/benchmarks.md). A hold where it ran this
# late (p99, ms) says nothing about the server.
CLIENT_LATE_LIMIT_MS = 5.0

SERVER_CORE, CLIENT_CORE = (0, 1) if (os.cpu_count() or 1) >= 2 else (None, None)

# The servers compared, as (label, e2e_server.py arguments).
SERVERS = {
    k.BASELINE: ("websockets + numpy + 2 soxr HQ", ["baseline"]),
    k.DEFAULT: ("StreamServer, default transport", ["ours"]),
    k.PICOWS: ("StreamServer, picows on uvloop", ["ours", "--transport", "picows",
                                                  "--loop", "uvloop"]),
    # for scale: ours on the other transport, and receiving and discarding, nothing else
    k.WEBSOCKETS: ("StreamServer, websockets transport", ["ours", "--transport",
                                                          "websockets"]),
    k.DISCARD_WEBSOCKETS: ("websockets, discard", ["discard", "--transport", "websockets"]),
    k.DISCARD_PICOWS: ("picows on uvloop, discard", ["discard", "--transport", "picows",
                                                     "--loop", "uvloop"]),
    # publishing to NATS JetStream: bench_bus.py adds --publish URL
    k.PUBLISHING: ("StreamServer, picows on uvloop, publishing", [
        "ours", "--transport", "picows", "--loop", "uvloop"]),
    # inside a web application, on uvloop as uvicorn and aiohttp's uvloop worker run
    k.ASGI_UVICORN: ("StreamServer in Starlette under uvicorn", ["ours", "--transport", "asgi",
                                                                 "--loop", "uvloop"]),
    k.AIOHTTP: ("StreamServer in aiohttp", ["ours", "--transport", "aiohttp",
                                            "--loop", "uvloop"]),
}
ON_PICOWS = (k.PICOWS, k.DISCARD_PICOWS, k.PUBLISHING)  # picows and uvloop come with the test extra
NEEDS_PICOWS = "needs picows and uvloop (the test extra)"
# What each server needs beyond the package's own dependencies, and the reason given
# when it is missing.
NEEDS = {
    **{name: (("picows", "uvloop"), NEEDS_PICOWS) for name in ON_PICOWS},
    k.ASGI_UVICORN: (("uvicorn", "starlette", "uvloop"),
                     "needs uvicorn and starlette (the test extra)"),
    k.AIOHTTP: (("aiohttp", "uvloop"), "needs aiohttp (the aiohttp extra)"),
}


def available(name: str) -> bool:
    """Whether this machine can run server ``name``."""
    modules = NEEDS.get(name, ((), ""))[0]
    return all(importlib.util.find_spec(m) is not None for m in modules)


def missing(name: str) -> str:
    """Why this machine cannot run server ``name``."""
    return NEEDS.get(name, ((), "needs nothing"))[1]


class Process:
    """A helper process, one of this package's modules run as a program (``python -m
    harness.NAME``), spoken to in JSON lines over its stdin and stdout."""

    def __init__(self, module: str, argv: list[str]) -> None:
        # The repository (piopiy_fast from the source tree) and benchmarks/ (this package).
        path = [str(HERE.parents[1]), str(HERE.parent), os.environ.get("PYTHONPATH")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
        self.module = module
        self.proc = subprocess.Popen([sys.executable, "-m", f"{__package__}.{module}", *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.hello = self.read()

    def send(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.module} exited ({self.proc.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.module}: {reply['error']}")
        return reply

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.send(cmd, **args)
        return self.read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Server(Process):
    def __init__(self, name: str, *extra: str, core: int | None = SERVER_CORE) -> None:
        self.name = name
        self.label, argv = SERVERS[name]
        pin = [] if core is None else ["--core", str(core)]
        super().__init__("e2e_server", [*argv, *pin, *extra])
        self.port = int(self.hello["port"])
        self.loop = self.hello["loop"]
        self.totals = {"frames": 0, "overruns": 0}


class BusWorker(Process):
    """A worker reading calls from the bus (harness/bus_worker.py), unpinned."""

    def __init__(self, url: str, lag: int) -> None:
        super().__init__("bus_worker", [url, "--lag", str(lag)])


class Client(Process):
    def __init__(self, pinned: bool = True) -> None:
        core = [] if CLIENT_CORE is None or not pinned else ["--core", str(CLIENT_CORE)]
        super().__init__("e2e_client", core)


class Workers:
    """``count`` servers of one kind sharing a port (``SO_REUSEPORT``, as ``piopiy-fast
    serve --workers`` runs them), worker i pinned to core i; spoken to like one Server,
    their replies merged. A merged p99 is the largest worker's: at most 1% of all frames
    are later than that."""

    def __init__(self, name: str, count: int) -> None:
        self.name = f"{name} x{count}"
        self.label = f"{SERVERS[name][0]}, {count} workers"
        port = _free_port()
        cores = os.cpu_count() or 1
        self.processes = [Server(name, "--port", str(port), "--reuse-port", core=i % cores)
                          for i in range(count)]
        self.port = port
        self.totals = {"frames": 0, "overruns": 0}

    def send(self, cmd: str, **args: Any) -> None:
        self._cmd = cmd
        for worker in self.processes:
            worker.send(cmd, **args)

    def read(self) -> dict[str, Any]:
        replies = [worker.read() for worker in self.processes]
        if self._cmd == "window":
            return _merged_window(replies)
        summed = ("frames", "overruns", "consumers", "rss_kib")
        return {k: sum(r[k] for r in replies) for k in summed if k in replies[0]}

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.send(cmd, **args)
        return self.read()

    def close(self) -> None:
        for worker in self.processes:
            worker.close()


def _merged_window(replies: list[dict[str, Any]]) -> dict[str, Any]:
    frames = sum(r["frames"] for r in replies)
    cpu = sum(r["cpu_s"] for r in replies)
    lat = [r["latency"] for r in replies]
    worst = [x for x in (r.get("foreign_share") for r in replies) if x is not None]

    def largest(key: str) -> float | None:
        values = [x[key] for x in lat if x[key] is not None]
        return max(values) if values else None

    return {
        "cpu_s": cpu, "frames": frames,
        "cpu_us_per_frame": 1e6 * cpu / frames if frames else None,
        "core_share": sum(r["core_share"] for r in replies),
        "foreign_share": max(worst) if worst else None,
        "interrupt_share": None,
        "latency": {"frames": sum(x["frames"] for x in lat),
                    "unreadable": sum(x["unreadable"] for x in lat),
                    "p50_ms": largest("p50_ms"), "p99_ms": largest("p99_ms"),
                    "max_ms": largest("max_ms"), "delivery_ms": largest("delivery_ms")},
    }


def _free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Hold:
    """One paced run: ``calls`` real-time calls for ``seconds`` (after a warm-up)."""

    server: str
    calls: int
    seconds: float
    cpu_us_per_frame: float
    core_share: float
    frames: int
    p50_ms: float | None
    p99_ms: float | None  # None: the server does not tell (the floors)
    max_ms: float | None
    lost_frames: int
    delivery_ms: float  # the server's own configured delivery delay, allowed on top
    client_late_p99_ms: float
    foreign_share: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def client_bound(self) -> bool:
        return self.client_late_p99_ms > CLIENT_LATE_LIMIT_MS

    @property
    def held(self) -> bool:
        return (self.lost_frames == 0 and self.p99_ms is not None
                and self.p99_ms < self.latency_limit_ms)

    @property
    def latency_limit_ms(self) -> float:
        return LATENCY_LIMIT_MS + self.delivery_ms

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "extra"},
                "held": self.held, "client_bound": self.client_bound,
                "latency_limit_ms": self.latency_limit_ms, **self.extra}


def settle(server: Server | Workers, sent: int) -> tuple[int, int]:
    """Wait until every call has ended. Since the last settle: frames sent that the
    server never received (only a failed connection loses those), and frames' worth of
    samples its rings dropped because a reader fell too far behind."""
    done = server.ask("settle")
    received = done["frames"] - server.totals["frames"]
    overruns = done["overruns"] - server.totals["overruns"]
    server.totals = {"frames": done["frames"], "overruns": done["overruns"]}
    return max(0, sent - received), math.ceil(overruns / 320)


def paced_hold(server: Server | Workers, client: Client, calls: int, seconds: float,
               warmup: float = 1.0) -> Hold:
    """``calls`` calls, each one frame every 20 ms (spread over the period), measured for
    ``seconds`` after ``warmup``: CPU per received frame, latency of every frame due in
    the measured window (sent -> readable by the application), frames lost."""
    client.ask("connect", port=server.port, calls=calls)
    t0 = time.monotonic() + 0.1
    start, end = t0 + warmup, t0 + warmup + seconds
    # Latency is judged on frames due up to 0.1 s before the end mark, so a frame
    # counts as never readable only when it is that late.
    server.send("window", start=start, end=end, latency=[start, end - 0.1])
    client.send("paced", t0=t0, end=end)
    sent = client.read()
    measured = server.read()
    client.ask("close")
    missing, dropped = settle(server, sent["sent"])
    latency = measured["latency"]
    return Hold(
        server=server.name, calls=calls, seconds=seconds,
        cpu_us_per_frame=measured["cpu_us_per_frame"], core_share=measured["core_share"],
        frames=measured["frames"], p50_ms=latency["p50_ms"], p99_ms=latency["p99_ms"],
        max_ms=latency["max_ms"], lost_frames=missing + dropped,
        delivery_ms=latency["delivery_ms"],
        client_late_p99_ms=sent["late_p99_ms"], foreign_share=measured["foreign_share"],
        extra={"client_cpu_us_per_frame": sent["cpu_us_per_frame"],
               "client_foreign_share": sent["foreign_share"],
               "never_received": missing, "unreadable": latency["unreadable"],
               "interrupt_share": measured["interrupt_share"], "backlogged": sent["backlogged"],
               "closed_by_server": sent["closed_by_server"]},
    )


def burst_round(server: Server, client: Client, connections: int,
                frames: int) -> dict[str, Any]:
    """``connections`` connections sending ``frames`` frames each as fast as they can:
    CPU per received frame until the application has every frame readable."""
    client.ask("connect", port=server.port, calls=connections)
    server.ask("mark")
    sent = client.ask("burst", frames=frames)
    # Every channel-frame readable by the application (both channels), less the last
    # frame, whose output the pipeline may still hold back.
    measured = server.ask("report", expect=2 * connections * (frames - 1))
    client.ask("close")
    missing, dropped = settle(server, sent["sent"])
    return {"cpu_us_per_frame": measured["cpu_us_per_frame"], "frames": measured["frames"],
            "foreign_share": measured["foreign_share"],
            "frames_per_s": measured["frames"] / measured["seconds"],
            "never_received": missing, "lost_frames": missing + dropped}


def search_capacity(server: Server | Workers, client: Client, start: int, hold_seconds: float,
                    confirm_seconds: float, resolution: float = 0.1,
                    limit: int = 8192) -> dict[str, Any]:
    """The largest number of concurrent real-time calls ``server`` holds (zero frames
    lost, p99 latency under LATENCY_LIMIT_MS beyond the server's configured delivery
    delay): double from ``start`` until a hold fails (or halve until one passes), then
    bisect until the bracket is within ``resolution``; then hold the answer for
    ``confirm_seconds`` (or, when that fails, two steps of ``resolution`` below it).
    Every hold is kept as a point of the capacity curve."""
    points: list[Hold] = []
    client_bound = False

    def hold(calls: int, seconds: float) -> bool:
        nonlocal client_bound
        result = paced_hold(server, client, calls, seconds)
        points.append(result)
        if not result.held and result.client_bound:
            client_bound = True
        return result.held

    # Bracket the answer: double while holds pass (or halve while they fail), then
    # bisect between the largest that held and the smallest that did not.
    good, bad = 0, limit
    calls = start
    if hold(calls, hold_seconds):
        while calls < limit:
            good, calls = calls, min(limit, calls * 2)
            if not hold(calls, hold_seconds):
                bad = calls
                break
        else:
            good = calls
    else:
        bad = calls
        while calls > 1:
            calls //= 2
            if hold(calls, hold_seconds):
                good = calls
                break
            bad = calls
    while good and bad / good > 1 + resolution:
        middle = round(math.sqrt(good * bad))
        if hold(middle, hold_seconds):
            good = middle
        else:
            bad = middle
    # The long hold, which catches the rarer stalls a short one misses. When it fails,
    # one more two steps lower: two long holds is what the time budget allows; when that
    # fails too (a machine busy with other work, say) the search's answer stands,
    # marked unconfirmed.
    confirmed = False
    for calls in (good, int(good / (1 + 2 * resolution))):
        if calls and hold(calls, confirm_seconds):
            good, confirmed = calls, True
            break
    last = next((p for p in reversed(points) if p.calls == good and p.held), None)
    return {
        "calls": good,
        "confirmed": confirmed,
        # A failure where the client could not keep time: the server may hold more.
        "client_bound": client_bound,
        "at_capacity": last.as_dict() if last else None,
        "points": [p.as_dict() for p in points],
    }
