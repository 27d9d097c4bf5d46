"""The supervisor's rules, with worker processes that misbehave on purpose. (Workers
serving real calls are tested through ``serve --workers`` and examples/workers.py.)

The targets are module-level: each worker process imports this module to find them.
"""

import dataclasses
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time

import pytest

from piopiy_fast.receiver.stats import ServerStats, total
from piopiy_fast.receiver.workers import (
    Supervisor,
    Worker,
    _messages,
    reserve_port,
)

STATS = ServerStats(active_calls=2, total_calls=5, rejected_calls=1, failed_calls=1,
                    frames=100, bytes=32000, decode_errors=0, overruns=3, late_frames=4,
                    received_seconds=2.0, app_errors=0, timed_out_calls=1,
                    refused_by_reason={"busy": 1})


def dies_after_ready(worker: Worker) -> None:
    worker.report(STATS)
    worker.ready("ws://test")
    os._exit(7)


def fails_to_start(worker: Worker) -> None:
    print("piopiy-fast: error: something named here", file=sys.stderr)
    sys.exit(3)


def slow_to_start(worker: Worker) -> None:
    time.sleep(60)


def reports_until_terminated(worker: Worker) -> None:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    worker.ready("ws://test")
    while not stop:
        time.sleep(0.01)
    worker.report(dataclasses.replace(STATS, active_calls=0, total_calls=worker.index + 1))


def one_dies(worker: Worker) -> None:
    """Worker 1 dies each time it is ready; the others serve until SIGTERM."""
    if worker.index == 1:
        dies_after_ready(worker)
    reports_until_terminated(worker)


def crashes_then_cannot_start(worker: Worker, marker: str) -> None:
    """Worker 1 crashes once it is listening; its replacement meets a mistake in its
    configuration (status 2, before listening): not a thing a restart mends."""
    if worker.index == 1:
        if os.path.exists(marker):
            print("piopiy-fast: error: cannot listen on 127.0.0.1 port 9101 for /metrics",
                  file=sys.stderr)
            sys.exit(2)
        open(marker, "w").close()
        worker.ready("ws://test")
        os._exit(1)
    reports_until_terminated(worker)


def stop_on(said, text):
    """A ``say`` that records each line and sends SIGTERM to this process (the
    supervisor) when a line has ``text``."""
    def say(line):
        said.append((time.monotonic(), line))
        if text in line:
            os.kill(os.getpid(), signal.SIGTERM)
    return say


def test_a_worker_that_keeps_dying_is_given_up_on_after_a_growing_delay():
    said = []
    status = Supervisor(dies_after_ready, 1, max_restarts=3, restart_window=60,
                        restart_delay=0.2, say=lambda line: said.append((time.monotonic(),
                                                                          line))).run()
    assert status == 1
    deaths = [(t, line) for t, line in said if "exited with status 7" in line]
    assert [line.split(": ", 1)[1] for _, line in deaths] == [
        "its calls ended; restarting (1 in the last 60 s)",
        "its calls ended; restarting in 0.2 s (2 in the last 60 s)",
        "its calls ended; restarting in 0.4 s (3 in the last 60 s)",
        "4 times in 60 s, giving up on it"]
    # Each replacement started no sooner than its delay: the next death comes after it.
    times = [t for t, _ in deaths]
    assert times[2] - times[1] >= 0.2 and times[3] - times[2] >= 0.4


def test_only_the_failing_worker_is_given_up_on():
    said = []
    supervisor = Supervisor(one_dies, 2, max_restarts=2, restart_delay=0.01,
                            say=stop_on(said, "giving up on it"))
    assert supervisor.run() == 1
    lines = [line for _, line in said]
    assert sum("[w0] ready" in line for line in lines) == 1  # never restarted
    assert sum("[w1] ready" in line for line in lines) == 3
    assert not [line for line in lines if line.startswith("[w0]") and "ready" not in line]
    assert lines[-2:] == [lines[-2], "shutting down"] and "giving up on it" in lines[-2]
    # The healthy worker drained on SIGTERM and sent its last report: its 1 call, and
    # the 3 reports of worker 1's processes (5 calls each).
    assert supervisor.totals.total_calls == 1 + 3 * 5


def test_a_configuration_error_on_a_restart_is_said_once_and_not_restarted(tmp_path):
    said = []
    supervisor = Supervisor(crashes_then_cannot_start, 2, args=(str(tmp_path / "m"),),
                            restart_delay=0.01, say=stop_on(said, "not restarting"))
    assert supervisor.run() == 1
    lines = [line for _, line in said]
    failed = [line for line in lines if "status 2" in line]
    assert len(failed) == 1 and failed[0].endswith(
        "exited with status 2 before it was ready: a configuration error (it has said "
        "which); not restarting it")
    assert sum("[w1] ready" in line for line in lines) == 1
    assert lines[-1] == "shutting down"


def test_sighup_drains_like_sigterm_and_sigusr1_says_the_state():
    said = []

    def on_ready(url):
        os.kill(os.getpid(), signal.SIGUSR1)

    def say(line):
        said.append(line)
        if line.endswith(" frames") and "live" in line:  # the SIGUSR1 line
            os.kill(os.getpid(), signal.SIGHUP)

    supervisor = Supervisor(reports_until_terminated, 2, say=say, on_ready=on_ready)
    assert supervisor.run(duration=60) == 0
    state = [line for line in said if line.endswith(" frames")]
    assert len(state) == 1 and re.fullmatch(
        r"\[w0\] ready, pid \d+; \[w1\] ready, pid \d+; \d+ live, \d+ calls, \d+ failed, "
        r"\d+ frames", state[0]), state
    assert said[-1] == "shutting down"
    assert supervisor.totals.total_calls == 1 + 2  # both drained and reported


def test_dead_workers_count_their_live_calls_as_failed():
    supervisor = Supervisor(dies_after_ready, 1, max_restarts=1, say=lambda line: None)
    assert supervisor.run() == 1
    # Two processes each reported STATS, then died with 2 calls live.
    twice = total([STATS, STATS])
    assert supervisor.totals == dataclasses.replace(
        twice, active_calls=0, failed_calls=twice.failed_calls + 4)


def test_a_worker_that_cannot_start_ends_the_run_with_its_status(capfd):
    said = []
    assert Supervisor(fails_to_start, 2, say=said.append).run() == 3
    assert "before it was ready" in said[0]
    assert "piopiy-fast: error: something named here" in capfd.readouterr().err


def test_sigterm_drains_every_worker_and_adds_up_their_reports():
    ready = []

    def stop_when_ready(url):
        ready.append(url)
        os.kill(os.getpid(), signal.SIGTERM)  # to the supervisor: drain them all

    supervisor = Supervisor(reports_until_terminated, 3, say=lambda line: None,
                            on_ready=stop_when_ready)
    assert supervisor.run(duration=60) == 0
    assert ready == ["ws://test"]
    # Each worker's last report, sent after the SIGTERM, is in the totals.
    assert supervisor.totals.total_calls == 1 + 2 + 3
    assert supervisor.totals.frames == 3 * STATS.frames


def test_a_stop_while_workers_start_is_clean():
    # Ctrl-C a moment after starting: workers with no calls yet just end.
    said = []
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert Supervisor(slow_to_start, 2, say=said.append).run() == 0
    assert said == ["shutting down"]


def read_messages(reader):
    """Every whole message waiting in a worker's pipe, as the supervisor reads them."""
    buffer = bytearray()
    os.set_blocking(reader.fileno(), False)
    try:
        while chunk := os.read(reader.fileno(), 65536):
            buffer += chunk
    except BlockingIOError:
        pass
    found = _messages(buffer)
    assert buffer == b""  # nothing in part
    return found


def test_a_worker_notices_its_supervisor_is_gone():
    reader, writer = multiprocessing.Pipe(duplex=False)
    worker = Worker(0, writer)
    assert worker.report(STATS)
    assert read_messages(reader) == [("stats", dataclasses.asdict(STATS))]
    reader.close()
    assert worker.report(STATS) is False


def test_a_report_never_blocks_a_worker_whose_supervisor_does_not_read():
    # A supervisor stopped (SIGSTOP) reads nothing: the pipe fills, and then each report
    # is dropped and counted instead of waiting for room.
    reader, writer = multiprocessing.Pipe(duplex=False)
    worker = Worker(0, writer)
    sent = 5000
    assert all(worker.report(dataclasses.replace(STATS, frames=n)) for n in range(sent))
    assert 0 < worker.dropped < sent
    got = read_messages(reader)
    # Every message in the pipe is whole, in order: the first ones, the rest dropped.
    assert [payload["frames"] for _, payload in got] == list(range(sent - worker.dropped))
    assert worker.report(STATS)
    assert read_messages(reader) == [("stats", dataclasses.asdict(STATS))]


def test_reserve_port():
    with reserve_port("127.0.0.1", 0) as reserved:
        port = reserved.getsockname()[1]
        assert port > 0
        # Another listener with SO_REUSEPORT may join; one without may not.
        joining = socket.socket()
        joining.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        joining.bind(("127.0.0.1", port))
        joining.close()
        with pytest.raises(OSError), socket.socket() as intruder:
            intruder.bind(("127.0.0.1", port))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            reserve_port("127.0.0.1", taken.getsockname()[1])


def test_totals_add_up():
    assert total([]) == ServerStats()
    other = dataclasses.replace(STATS, frames=7, refused_by_reason={"busy": 2, "forbidden": 1})
    both = total([STATS, other])
    assert (both.frames, both.received_seconds, both.timed_out_calls) == (107, 4.0, 2)
    assert both.refused_by_reason == {"busy": 3, "forbidden": 1}
    assert STATS.refused_by_reason == {"busy": 1}  # the parts are left as they were
