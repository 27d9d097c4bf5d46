"""Latch: the awaitable once-set flag a call uses for its first audio and its end."""
from __future__ import annotations

import asyncio

from piopiy_fast.receiver.latch import Latch


def test_set_wakes_every_waiter_and_later_waits_return_at_once() -> None:
    async def main() -> list[int]:
        latch = Latch()
        woke: list[int] = []

        async def waiter(n: int) -> None:
            await latch.wait()
            woke.append(n)

        tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
        await asyncio.sleep(0)
        assert woke == [] and not latch.is_set
        latch.set()
        await asyncio.gather(*tasks)
        await latch.wait()  # already set: no wait
        return woke

    assert asyncio.run(main()) == [0, 1, 2]


def test_waits_given_up_leave_nothing_behind() -> None:
    async def main() -> int:
        latch = Latch()
        for _ in range(1000):
            try:
                await asyncio.wait_for(latch.wait(), 0.0001)
            except TimeoutError:
                pass
        held = len(latch._waiters or ())
        last = asyncio.create_task(latch.wait())
        await asyncio.sleep(0)
        latch.set()
        await last
        return held

    assert asyncio.run(main()) == 0
