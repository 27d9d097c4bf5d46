"""An awaitable flag that is set once (a call's first audio, its end)."""

from __future__ import annotations

import asyncio


class Latch:
    """A flag that is set once and can be awaited, like a never-cleared
    ``asyncio.Event``; it holds no waiter queue until something waits (a call has two,
    and most are never awaited)."""

    __slots__ = ("is_set", "_waiters")

    def __init__(self) -> None:
        self.is_set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self.is_set = True
        waiters, self._waiters = self._waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)

    async def wait(self) -> None:
        if self.is_set:
            return
        future = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(future)
        try:
            await future
        finally:
            # A wait given up (a timeout around it) leaves nothing behind.
            if self._waiters is not None and future.cancelled():
                self._waiters.remove(future)
