"""Helpers shared by the receiver, recorder, simulator and CLI tests.

Every timeout is a multiple of UNIT seconds; set PIOPIY_FAST_TEST_UNIT to scale them
all on a slow machine.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable
from typing import Any

import numpy as np

UNIT = float(os.environ.get("PIOPIY_FAST_TEST_UNIT", "1.0"))


TRANSPORTS = ("websockets", "picows")


def run(coro: Awaitable[Any], timeout: float = 20, transport: str = "websockets") -> Any:
    """Run a coroutine on a fresh event loop, failing after ``timeout`` UNITs.

    The picows transport runs on uvloop when it is installed, as it would in production.
    """
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout * UNIT)
    loop_factory = None
    if transport == "picows":
        try:
            import uvloop
            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(bounded())


def offline(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """The oracle: the core's one-shot resampling (streaming output plus its tail)."""
    from piopiy_fast.audio import resample
    return resample(samples, in_rate, out_rate)


class Collector:
    """An ``on_call`` that reads every channel of every call with ``async for``."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.audio: dict[str, dict[str, np.ndarray]] = {}
        self.done: dict[str, Any] = {}

    async def __call__(self, call: Any) -> None:
        self.calls.append(call)
        chunks: dict[str, list[np.ndarray]] = {"caller": [], "callee": []}

        async def read(name: str) -> None:
            async for chunk in call.channel(name):
                chunks[name].append(chunk)

        await asyncio.gather(read("caller"), read("callee"))
        self.audio[call.call_id] = {
            name: np.concatenate(parts) if parts else np.zeros(0, np.int16)
            for name, parts in chunks.items()}
        self.done[call.call_id] = call

    async def wait_for(self, count: int) -> None:
        while len(self.done) < count:
            await asyncio.sleep(0.005)


def masked_frame_header(opcode: int, length: int, mask: bytes = b"\x01\x02\x03\x04", *,
                        fin: bool = True, rsv: int = 0) -> bytes:
    """The header of one client-to-server WebSocket frame (masked); ``rsv`` is the
    reserved bits (4, 2, 1 for RSV1-3)."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + mask


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each whole frame in what a server sent (unmasked)."""
    frames = []
    while len(data) >= 2:
        length, start = data[1] & 0x7F, 2
        if length == 126:
            length, start = struct.unpack("!H", data[2:4])[0], 4
        if len(data) < start + length:
            break
        frames.append((data[0] & 0x0F, data[start:start + length]))
        data = data[start + length:]
    return frames


def mask(payload: bytes, key: bytes = b"\x01\x02\x03\x04") -> bytes:
    data = np.frombuffer(payload, np.uint8)
    keys = np.resize(np.frombuffer(key, np.uint8), data.size)
    return (data ^ keys).tobytes()
