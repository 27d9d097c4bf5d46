"""The supervisor's rules, with worker processes that misbehave on purpose. (Workers
serving real calls are tested through ``serve --workers`` and examples/workers.py.)

The targets are module-level: each worker process imports this module to find them.
"""

import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

import pytest

from piopiy_fast.receiver.server import ServerStats
from piopiy_fast.receiver.workers import Supervisor, Worker, combined, reserve_port

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


def test_a_worker_that_keeps_dying_is_given_up_on():
    said = []
    status = Supervisor(dies_after_ready, 1, max_restarts=2, restart_window=60,
                        say=said.append).run()
    assert status == 1
    deaths = [line for line in said if "exited with status 7" in line]
    assert [line.split(": ", 1)[1] for line in deaths] == [
        "its calls ended; restarting (1 in the last 60 s)",
        "its calls ended; restarting (2 in the last 60 s)",
        "3 times in 60 s, giving up"]


def test_dead_workers_count_their_live_calls_as_failed():
    supervisor = Supervisor(dies_after_ready, 1, max_restarts=1, say=lambda line: None)
    assert supervisor.run() == 1
    # Two processes each reported STATS, then died with 2 calls live.
    twice = combined([STATS, STATS])
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


def test_a_worker_notices_its_supervisor_is_gone():
    reader, writer = multiprocessing.Pipe(duplex=False)
    worker = Worker(0, writer)
    assert worker.report(STATS) and reader.recv() == ("stats", dataclasses.asdict(STATS))
    reader.close()
    assert worker.report(STATS) is False


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


def test_combined():
    assert combined([]) == ServerStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, {})
    other = dataclasses.replace(STATS, frames=7, refused_by_reason={"busy": 2, "forbidden": 1})
    both = combined([STATS, other])
    assert (both.frames, both.received_seconds, both.timed_out_calls) == (107, 4.0, 2)
    assert both.refused_by_reason == {"busy": 3, "forbidden": 1}
    assert STATS.refused_by_reason == {"busy": 1}  # the parts are left as they were
