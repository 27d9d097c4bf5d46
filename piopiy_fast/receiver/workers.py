"""One port, several receiver processes: a supervisor and its workers.

One Python process keeps one core busy. A :class:`Supervisor` runs ``count`` worker
processes; each runs its own :class:`~piopiy_fast.receiver.server.StreamServer` with
``reuse_port=True`` on the same port, and the kernel spreads new connections among
their listening sockets (``SO_REUSEPORT``, by a hash of the connection's addresses:
even on average, blind to load). Calls share nothing, so nothing else is shared.

The supervisor

- restarts a worker that dies (its calls end; the other workers' calls go on), the
  first time at once, then after a delay that doubles each time (``restart_delay``
  up to ``max_restart_delay``), at most ``max_restarts`` times per worker within
  ``restart_window`` seconds: a worker dying faster than that is a fault a restart
  will not fix, so that worker is given up on, and the others go on serving (the run
  ends, with status 1, when none is left);
- does not restart a worker that exits with ``config_error_status`` (2, the
  command's status for a mistake in what it was asked) before it is listening: that
  is a configuration a restart will not mend, said once. While the workers first
  start, any worker that ends before it is listening stops the start-up;
- on SIGTERM, SIGINT or SIGHUP (or after ``duration``), sends each worker SIGTERM: the
  worker closes its server (every call ends with 1001, recorders finish their files),
  sends its last totals and exits; a worker still running ``stop_timeout`` seconds
  later is killed. SIGUSR1 says the totals and each worker's state, and goes on;
- adds up the :class:`~piopiy_fast.receiver.stats.ServerStats` each worker reports
  over its pipe (every ``report_every`` seconds and once at the end) into
  :attr:`Supervisor.totals`. A worker that died reported nothing after its last
  report: its calls still live then are counted as failed. A report never blocks a
  worker: when the pipe is full (a supervisor stopped, or too slow) it is dropped and
  counted (:attr:`Worker.dropped`); the next one replaces it anyway.

A worker is a fresh interpreter (the spawn start method): nothing of the
supervisor's state is copied into it, and it can be restarted at any time. Each is
told its index, so per-worker resources (a metrics port: base + index) can be
derived from it. ::

    def worker_main(worker: Worker) -> None:
        server = StreamServer("0.0.0.0", 8765, reuse_port=True, on_call=on_call)
        asyncio.run(worker.serve(server))

    if __name__ == "__main__":
        raise SystemExit(Supervisor(worker_main, len(os.sched_getaffinity(0))).run())
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import multiprocessing
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from .stats import ServerStats, total

if TYPE_CHECKING:
    from .server import StreamServer

logger = logging.getLogger("piopiy_fast.workers")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STATS_SIGNAL = signal.SIGUSR1
# The command's exit status for a mistake in what it was asked (a port taken, a file
# missing): a worker ending so before it listens is not restarted.
CONFIG_ERROR_STATUS = 2
# A report is one write of at most PIPE_BUF bytes, which a pipe takes whole or not at
# all: a full pipe never holds half a message.
_HEADER = struct.Struct("!I")
_MAX_MESSAGE = getattr(select, "PIPE_BUF", 512)




def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` with ``SO_REUSEPORT``, not listening.

    It settles which port the workers share (a free one when ``port`` is 0), fails here,
    once, when the port is taken, and keeps the port while workers restart. A bound
    socket that does not listen is never handed connections.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


class Worker:
    """A worker process's side: its index and its pipe to the supervisor.

    Its reports never block: the pipe is written without waiting, and a message that
    does not fit (the supervisor is stopped or behind) is dropped and counted in
    :attr:`dropped`. A later report says everything an earlier one did.
    """

    def __init__(self, index: int, pipe: Connection) -> None:
        self.index = index
        self._pipe = pipe
        self._fd = pipe.fileno()
        os.set_blocking(self._fd, False)
        self.dropped = 0

    def ready(self, url: str) -> bool:
        """Tell the supervisor this worker is listening. False when the supervisor is gone."""
        return self._send(("ready", url))

    def report(self, stats: ServerStats) -> bool:
        """Send this worker's totals. False when the supervisor is gone."""
        return self._send(("stats", dataclasses.asdict(stats)))

    def _send(self, message: tuple[str, Any]) -> bool:
        """Write one message, or drop it if the pipe is full; False when the supervisor
        is gone."""
        body = json.dumps(message).encode()
        frame = _HEADER.pack(len(body)) + body
        if len(frame) > _MAX_MESSAGE:
            raise ValueError(f"a report of {len(frame)} bytes is over {_MAX_MESSAGE}")
        try:
            os.write(self._fd, frame)
        except BlockingIOError:  # full: nobody is reading now
            self.dropped += 1
        except OSError:  # the read end is closed: the supervisor died
            return False
        return True

    async def serve(self, server: StreamServer, report_every: float = 0.5, *,
                    drain_seconds: float = 0.0) -> None:
        """Run ``server`` as this worker: start it, report its totals every
        ``report_every`` seconds until SIGTERM, then drain it (no new calls; live ones
        may finish for up to ``drain_seconds``; a second SIGTERM ends them at once),
        close it (recordings are finished) and send the final totals. A worker whose
        supervisor died stops too."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        # A terminal's hang-up or a stats request reaches the whole process group: the
        # supervisor answers them (a hang-up drains every worker with SIGTERM).
        for sig in (signal.SIGHUP, STATS_SIGNAL):
            loop.add_signal_handler(sig, lambda: None)
        await server.start()
        try:
            alive = self.ready(server.url)
            while alive and not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), report_every)
                except TimeoutError:
                    pass
                alive = self.report(server.stats)
            if stop.is_set() and drain_seconds > 0 and server.active_calls:
                stop.clear()
                draining = asyncio.ensure_future(server.drain(drain_seconds))
                again = asyncio.ensure_future(stop.wait())
                while not draining.done():
                    await asyncio.wait({draining, again}, timeout=report_every,
                                       return_when=asyncio.FIRST_COMPLETED)
                    if again.done() and not draining.done():
                        await server.close()  # the second SIGTERM: end them now
                    self.report(server.stats)
                again.cancel()
        finally:
            await server.close()
            self.report(server.stats)


def _worker_entry(target: Callable[..., object], index: int, pipe: Connection,
                  args: tuple[Any, ...]) -> None:
    target(Worker(index, pipe), *args)


@dataclass(eq=False)
class _Slot:
    """One worker position: the process filling it now, and its history."""

    index: int
    process: BaseProcess | None = None
    pipe: Connection | None = None
    url: str | None = None  # set when the current process is listening
    stats: ServerStats | None = None  # the current process's last report
    started_once: bool = False  # a process in this slot has been ready before
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    restart_at: float | None = None  # when a dead worker's replacement is due
    given_up: bool = False  # failed too often, or cannot start: left empty
    unread: bytearray = field(default_factory=bytearray)  # a report read in part


class Supervisor:
    """Run ``count`` copies of ``target(worker, *args)``, each in its own process.

    ``target`` is a module-level function (it is pickled into each process); it should
    run a server with ``reuse_port=True`` through :meth:`Worker.serve`, or at least
    call :meth:`Worker.ready` once listening and :meth:`Worker.report` with its
    totals. ``say`` receives one line per event (a worker ready, dead, restarted);
    ``on_ready(url)`` runs once, when every worker has first reported ready;
    ``on_totals(totals)`` runs every ``totals_every`` seconds.
    """

    def __init__(self, target: Callable[..., object], count: int, *,
                 args: tuple[Any, ...] = (), max_restarts: int = 5,
                 restart_window: float = 60.0, restart_delay: float = 0.5,
                 max_restart_delay: float = 30.0,
                 config_error_status: int | None = CONFIG_ERROR_STATUS,
                 stop_timeout: float = 30.0,
                 say: Callable[[str], None] = logger.warning,
                 on_ready: Callable[[str], None] | None = None,
                 on_totals: Callable[[ServerStats], None] | None = None,
                 totals_every: float | None = None) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        self.count = count
        self._target = target
        self._args = args
        self._max_restarts = max_restarts
        self._window = restart_window
        self._restart_delay = restart_delay
        self._max_restart_delay = max_restart_delay
        self._config_error = config_error_status
        self._stop_timeout = stop_timeout
        self._say = say
        self._on_ready = on_ready
        self._on_totals = on_totals
        self._totals_every = totals_every
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(count)]
        self._retired: list[ServerStats] = []  # what dead processes last reported
        self._stop_requested = False
        self._stats_requested = False
        self._all_ready = False

    @property
    def totals(self) -> ServerStats:
        """Every worker's last report added up, those of dead workers included."""
        live = [slot.stats for slot in self._slots if slot.stats is not None]
        return total([*self._retired, *live])

    def run(self, duration: float | None = None) -> int:
        """Start the workers and supervise them until SIGTERM, SIGINT or SIGHUP (or for
        ``duration`` seconds once every worker is ready); then drain them. 0 after a
        clean stop; 1 when a worker was given up on or did not drain cleanly (exited
        with a status, or was killed); a worker's own exit status when one could not
        start at all (each has said why)."""
        waker, wake_fd = socket.socketpair()
        waker.setblocking(False)
        wake_fd.setblocking(False)
        previous = {sig: signal.signal(sig, self._request_stop) for sig in STOP_SIGNALS}
        previous[STATS_SIGNAL] = signal.signal(STATS_SIGNAL, self._request_stats)
        previous_fd = signal.set_wakeup_fd(wake_fd.fileno())
        try:
            for slot in self._slots:
                self._start(slot)
            status = self._supervise(waker, duration)
            self._say("shutting down")
            drained = self._drain()
            gave_up = any(slot.given_up for slot in self._slots)
            return status or (0 if drained and not gave_up else 1)
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            waker.close()
            wake_fd.close()

    def _request_stop(self, signum: int, frame: object) -> None:
        self._stop_requested = True

    def _request_stats(self, signum: int, frame: object) -> None:
        self._stats_requested = True

    def _say_stats(self) -> None:
        t = self.totals
        states = []
        for slot in self._slots:
            if slot.given_up:
                state = "given up"
            elif slot.process is None:
                state = "restarting"
            elif slot.url is None:
                state = f"starting, pid {slot.process.pid}"
            else:
                state = f"ready, pid {slot.process.pid}"
            states.append(f"[w{slot.index}] {state}")
        self._say(f"{'; '.join(states)}; {t.active_calls} live, {t.total_calls} calls, "
                  f"{t.failed_calls} failed, {t.frames} frames")

    def _start(self, slot: _Slot) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_entry, args=(self._target, slot.index, writer, self._args),
            name=f"piopiy-fast worker {slot.index}", daemon=False)
        # The supervisor alone handles Ctrl-C, a hang-up and a stats request (it sends
        # each worker SIGTERM to stop): a worker starts with them ignored, so a
        # terminal's signal to the whole process group neither interrupts its start-up
        # nor ends it without a drain.
        ignored = (signal.SIGINT, signal.SIGHUP, STATS_SIGNAL)
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
        try:
            process.start()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        writer.close()  # the worker holds the only write end: its death is the pipe's EOF
        os.set_blocking(reader.fileno(), False)
        slot.process, slot.pipe, slot.url, slot.stats = process, reader, None, None
        slot.restart_at = None
        slot.unread.clear()

    def _supervise(self, waker: socket.socket, duration: float | None) -> int:
        every = self._totals_every if self._on_totals is not None else None
        # The duration and the totals count from the moment every worker is ready.
        next_totals = None
        ends = None
        while not self._stop_requested:
            now = time.monotonic()
            if self._stats_requested:
                self._stats_requested = False
                self._say_stats()
            for slot in self._slots:
                if slot.restart_at is not None and now >= slot.restart_at:
                    self._start(slot)
            if self._all_ready and ends is None and duration is not None:
                ends = now + duration
            if ends is not None and now >= ends:
                break
            if every and self._all_ready:
                if next_totals is None:
                    next_totals = now + every
                elif now >= next_totals:
                    assert self._on_totals is not None
                    self._on_totals(self.totals)
                    next_totals = now + every
            deadlines = [next_totals, ends, *(slot.restart_at for slot in self._slots)]
            timeout = min((d - now for d in deadlines if d is not None), default=None)
            ready = wait([waker, *self._watched()], None if timeout is None
                         else max(0.0, timeout))
            if waker in ready:
                _drain_socket(waker)
            for slot in self._slots:
                self._read(slot)
                if slot.process is not None and slot.process.sentinel in ready:
                    status = self._ended(slot)
                    if status is not None:
                        return status
        return 0

    def _watched(self) -> list[Any]:
        objects: list[Any] = []
        for slot in self._slots:
            if slot.pipe is not None:
                objects.append(slot.pipe)
            if slot.process is not None:
                objects.append(slot.process.sentinel)
        return objects

    def _read(self, slot: _Slot) -> None:
        """Take every message waiting in a worker's pipe, without waiting."""
        pipe = slot.pipe
        if pipe is None:
            return
        ended = False
        try:
            while chunk := os.read(pipe.fileno(), 65536):
                slot.unread += chunk
            ended = True  # EOF: the worker is gone; its sentinel says how
        except BlockingIOError:
            pass
        except OSError:
            ended = True
        for kind, payload in _messages(slot.unread):
            if kind == "stats":
                slot.stats = ServerStats(**payload)
            elif kind == "ready":
                self._ready(slot, payload)
        if ended:
            pipe.close()
            slot.pipe = None

    def _ready(self, slot: _Slot, url: str) -> None:
        slot.url = url
        slot.started_once = True
        assert slot.process is not None
        self._say(f"[w{slot.index}] ready, pid {slot.process.pid}")
        if not self._all_ready and all(s.url is not None for s in self._slots):
            self._all_ready = True
            if self._on_ready is not None:
                self._on_ready(url)

    def _ended(self, slot: _Slot) -> int | None:
        """A worker process ended unasked: restart it, or say why not (an exit status)."""
        process = slot.process
        assert process is not None
        process.join()
        self._read(slot)  # its last words, if it had time to say them
        self._retire(slot)
        how = _how_it_ended(process.exitcode)
        if not self._all_ready and not slot.started_once:
            # Starting up: whatever stops one worker (each has said why) stops them all.
            self._say(f"[w{slot.index}] pid {process.pid} {how} before it was ready")
            code = process.exitcode
            return code if code is not None and code > 0 else 1
        if slot.url is None and process.exitcode == self._config_error:
            self._say(f"[w{slot.index}] pid {process.pid} {how} before it was ready: a "
                      "configuration error (it has said which); not restarting it")
            return self._give_up(slot)
        now = time.monotonic()
        slot.deaths.append(now)
        while slot.deaths and now - slot.deaths[0] > self._window:
            slot.deaths.popleft()
        deaths = len(slot.deaths)
        if deaths > self._max_restarts:
            self._say(f"[w{slot.index}] pid {process.pid} {how}: {deaths} times "
                      f"in {self._window:g} s, giving up on it")
            return self._give_up(slot)
        delay = 0.0 if deaths == 1 else min(self._restart_delay * 2 ** (deaths - 2),
                                            self._max_restart_delay)
        when = f" in {delay:g} s" if delay else ""
        self._say(f"[w{slot.index}] pid {process.pid} {how}: its calls ended; restarting"
                  f"{when} ({deaths} in the last {self._window:g} s)")
        slot.restart_at = now + delay
        return None

    def _give_up(self, slot: _Slot) -> int | None:
        """Leave a slot empty; the others go on. 1 (stop) when none is left."""
        slot.given_up = True
        slot.restart_at = None
        if all(s.given_up for s in self._slots):
            return 1
        return None

    def _retire(self, slot: _Slot) -> None:
        """Keep what a dead process reported; its live calls died with it."""
        if slot.stats is not None:
            last = slot.stats
            self._retired.append(dataclasses.replace(
                last, active_calls=0, failed_calls=last.failed_calls + last.active_calls))
        if slot.pipe is not None:
            slot.pipe.close()
        slot.process, slot.pipe, slot.url, slot.stats = None, None, None, None

    def _drain(self) -> bool:
        """SIGTERM every worker, read their final reports, kill those that overstay.
        True when every worker exited with status 0."""
        clean = True
        live = [slot for slot in self._slots if slot.process is not None]
        for slot in live:
            assert slot.process is not None
            if slot.process.is_alive():
                slot.process.terminate()
        self._stop_requested = False
        deadline = time.monotonic() + self._stop_timeout
        while live:
            if self._stop_requested:
                # A second signal: the workers end their live calls now.
                self._stop_requested = False
                self._say("second signal: the workers close their calls now")
                for slot in live:
                    assert slot.process is not None
                    if slot.process.is_alive():
                        slot.process.terminate()
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                for slot in live:
                    assert slot.process is not None
                    self._say(f"[w{slot.index}] pid {slot.process.pid} still draining "
                              f"after {self._stop_timeout:g} s: killed")
                    slot.process.kill()
                deadline = float("inf")
            # At most half a second at a time, so that a second signal is seen.
            ready = wait(self._watched(), 0.5 if deadline == float("inf") else min(timeout, 0.5))
            for slot in list(live):
                self._read(slot)
                process = slot.process
                assert process is not None
                if process.sentinel in ready:
                    process.join()
                    self._read(slot)
                    # One still starting has no calls: SIGTERM may simply end it.
                    starting = slot.url is None and process.exitcode == -signal.SIGTERM
                    if process.exitcode != 0 and not starting:
                        clean = False
                        self._say(f"[w{slot.index}] pid {process.pid} "
                                  f"{_how_it_ended(process.exitcode)} while draining")
                    self._retire(slot)
                    live.remove(slot)
        return clean


def _messages(buffer: bytearray) -> list[tuple[str, Any]]:
    """The whole messages at the start of ``buffer``, taken out of it."""
    found = []
    while len(buffer) >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer)
        end = _HEADER.size + size
        if len(buffer) < end:
            break
        kind, payload = json.loads(bytes(buffer[_HEADER.size:end]))
        del buffer[:end]
        found.append((kind, payload))
    return found


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def _drain_socket(sock: socket.socket) -> None:
    try:
        while sock.recv(256):
            pass
    except BlockingIOError:
        pass
