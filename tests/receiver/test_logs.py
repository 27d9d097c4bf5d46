"""Refusal lines at a rate a console can take, and a peer's path escaped in them."""

import asyncio
import logging

import pytest
from stream_testing import run
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from piopiy_fast.receiver.auth import Authenticator
from piopiy_fast.receiver.logs import RateLimitedLog
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.receiver.transports.base import Handshake

TOKEN = "tok-77c1"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def messages(caplog, name="piopiy_fast.test"):
    return [r.getMessage() for r in caplog.records if r.name == name]


def test_a_burst_then_one_line_per_interval_with_the_count_left_out(caplog):
    caplog.set_level(logging.INFO, "piopiy_fast.test")
    clock = Clock()
    log = RateLimitedLog(logging.getLogger("piopiy_fast.test"), burst=3, per=3.0, clock=clock)
    results = [log.warning("refused %d", n) for n in range(10)]
    assert results == [True] * 3 + [False] * 7
    assert log.suppressed == 7
    clock.now += 0.5  # half a token: still nothing
    assert log.warning("refused %d", 10) is False
    clock.now += 0.5
    assert log.warning("refused %d", 11) is True
    assert log.suppressed == 0
    # Another kind of line has its own bucket.
    assert log.info("other %s", "x") is True
    assert messages(caplog) == ["refused 0", "refused 1", "refused 2",
                                "refused 11 (and 8 more like it, not logged)", "other x"]


def test_a_level_not_logged_costs_no_token(caplog):
    caplog.set_level(logging.WARNING, "piopiy_fast.test")
    log = RateLimitedLog(logging.getLogger("piopiy_fast.test"), burst=1, clock=Clock())
    assert log.info("quiet") is False
    assert log.suppressed == 0
    assert log.warning("loud") is True


def test_bad_limits():
    for burst, per in ((0, 1.0), (1, 0.0)):
        with pytest.raises(ValueError):
            RateLimitedLog(logging.getLogger("x"), burst=burst, per=per)


def test_a_forged_path_is_escaped_in_the_refusal_line(caplog):
    caplog.set_level(logging.INFO, "piopiy_fast.receiver")
    auth = Authenticator(TOKEN)
    forged = "/s\n2026-01-01 00:00:00 WARNING piopiy_fast: all good\u202e?token=wrong"
    verdict = auth(Handshake(forged, {}, "192.0.2.1:4000"))
    assert verdict.status == 403
    assert messages(caplog, "piopiy_fast.receiver") == [
        "stream /s\\n2026-01-01 00:00:00 WARNING piopiy_fast: all good\\u202e from "
        "192.0.2.1:4000 refused: wrong token"]


def test_a_flood_of_refusals_logs_five_lines(caplog, transport):
    caplog.set_level(logging.INFO, "piopiy_fast.receiver")

    async def refused(url):
        try:
            async with connect(url):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth=TOKEN) as server:
            statuses = await asyncio.gather(
                *(refused(f"{server.url}/s?token=wrong-{n}") for n in range(60)))
            return statuses, server.stats.refused_by_reason

    statuses, reasons = run(main(), transport=transport)
    assert statuses == [403] * 60 and reasons["forbidden"] == 60
    lines = [m for m in messages(caplog, "piopiy_fast.receiver") if "refused" in m]
    assert len(lines) == 5 and all(line.endswith("refused: wrong token") for line in lines)
