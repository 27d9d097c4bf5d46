"""A worker reading calls from the bus, in its own process, timing each chunk it gets.

    python -m harness.bus_worker nats://127.0.0.1:PORT --lag N     (from benchmarks/)

It reads both channels of every call (``NatsSubscriber``, the reader API) and notes,
for each chunk, how long after the arrival of the frame that completed it the reader
returned it. That frame is known from the chunk's end on the timeline: the client sends
frame k at ``due0 + k * 20 ms`` (``due0`` from the call's start event, which the
receiver publishes among the call's events), and frame k makes ``(k + 1) * 320 - lag``
samples readable at 16 kHz. A chunk's own length (200 ms of audio gathered before it is
published) is not counted: the latency is that of its last frame.

Commands (JSON lines in and out): ``window {start, end}`` the latency of the chunks
whose frame was due in [start, end]; ``reset`` forgets them. The first line out is
``{"ready": true}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import threading
import time
from functools import partial
from typing import Any

import numpy as np

from .e2e_server import FRAME_SECONDS, OUT_PER_FRAME, due_from_event

monotonic = time.monotonic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--lag", type=int, default=0)
    args = parser.parse_args()
    dues: list[float] = []
    late: list[float] = []

    async def read(call: Any, name: str) -> None:
        due0 = next((d for e in call.events if (d := due_from_event(e)) is not None), None)
        reader = call.channel(name)
        async for _ in reader:
            now = monotonic()
            if due0 is None:
                due0 = next((d for e in call.events if (d := due_from_event(e)) is not None),
                            None)
                if due0 is None:
                    continue
            frame = math.ceil((reader.position + args.lag) / OUT_PER_FRAME) - 1
            due = due0 + frame * FRAME_SECONDS
            dues.append(due)
            late.append(now - due)

    def window(start: float, end: float) -> dict[str, Any]:
        d, lat = np.array(dues), np.array(late)
        picked = lat[(d >= start) & (d <= end)] if d.size else d
        if not picked.size:
            return {"chunks": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
        return {"chunks": int(picked.size), "p50_ms": 1e3 * float(np.percentile(picked, 50)),
                "p99_ms": 1e3 * float(np.percentile(picked, 99)),
                "max_ms": 1e3 * float(picked.max())}

    def commands(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        def on_loop(fn: Any) -> Any:
            async def call() -> Any:
                return fn()
            return asyncio.run_coroutine_threadsafe(call(), loop).result()

        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "window":
                # Chunks of frames due at the end arrive up to a chunk later.
                while monotonic() < command["end"] + 1.0:
                    time.sleep(0.05)
                reply = on_loop(partial(window, command["start"], command["end"]))
            elif command["cmd"] == "reset":
                on_loop(lambda: (dues.clear(), late.clear()))
                reply = {"ok": True}
            else:
                reply = {"error": f"unknown command {command['cmd']!r}"}
            print(json.dumps(reply), flush=True)
        loop.call_soon_threadsafe(stop.set)

    async def run() -> None:
        from piopiy_fast.bus import NatsSubscriber

        async with NatsSubscriber(args.url, group="bench", max_calls=1 << 20,
                                  replay=0.0) as subscriber:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            threading.Thread(target=commands, args=(loop, stop), daemon=True).start()
            print(json.dumps({"ready": True}), flush=True)

            async def take() -> None:
                async for call in subscriber.calls():
                    for name in ("caller", "callee"):
                        asyncio.ensure_future(read(call, name))
            taking = asyncio.ensure_future(take())
            await stop.wait()
            taking.cancel()

    asyncio.run(run())


if __name__ == "__main__":
    main()
