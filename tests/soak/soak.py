"""Soak: N real-time `both` calls for a while against a receiver in its own process.

    python tests/soak/soak.py --calls 200 --seconds 300 [--transport picows]

Each call sends one 20 ms frame every 20 ms (8 kHz, two channels), calls spread over
the period. The server reads every channel with ``async for`` (the README's consumer)
and keeps a SHA-256 of what it read; the client feeds the same frames through its own
streaming resampler and compares the hashes, so every sample of every call is checked.
The server's RSS is sampled after a warm-up and at the end, its open file descriptors
before the calls and after them. Exit status 0 when: no call lost or changed a sample,
RSS grew less than 5% after the warm-up, and the descriptors are back to where they
started. One JSON line of figures on stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import sys

import numpy as np

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
WARM_UP = 0.25  # of the run, before the first RSS sample


def server_main(transport: str) -> None:
    """The receiver: prints its URL, then one JSON line per ended call; answers "stats"
    on stdin with its RSS and open descriptors."""
    from piopiy_fast import StreamServer

    async def on_call(call) -> None:
        digests = {}

        async def read(name: str) -> None:
            digest = hashlib.sha256()
            async for chunk in call.channel(name):
                digest.update(chunk.tobytes())
            digests[name] = digest.hexdigest()

        await asyncio.gather(read("caller"), read("callee"))
        decision = call.format_decision
        print(json.dumps({"call": call.call_id, "frames": call.stats.frames,
                          "overruns": call.stats.overruns,
                          "format": decision.describe() if decision else None, **digests}),
              flush=True)

    async def main() -> None:
        async with StreamServer("127.0.0.1", 0, listen_mode="both", on_call=on_call,
                                transport=transport) as server:
            print(json.dumps({"url": server.url}), flush=True)
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                print(json.dumps({"rss": rss_bytes(), "fds": len(os.listdir("/proc/self/fd"))}),
                      flush=True)

    if transport == "picows":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Server:
    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.calls: dict[str, dict] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Queue[dict] = asyncio.Queue()

    async def start(self) -> str:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.transport,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        first = json.loads(await self.proc.stdout.readline())
        asyncio.ensure_future(self._read())
        return first["url"]

    async def _read(self) -> None:
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "call" in message:
                self.calls[message["call"]] = message
            else:
                await self._replies.put(message)

    async def stats(self) -> dict:
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return await self._replies.get()

    async def stop(self) -> None:
        self.proc.stdin.close()
        await self.proc.wait()


async def one_call(url: str, index: int, frames: int, start_at: float) -> dict:
    """Send ``frames`` real-time frames; return the hashes the receiver must report."""
    from websockets.asyncio.client import connect

    from piopiy_fast.audio import Resampler

    rng = np.random.default_rng(index)
    block = (rng.standard_normal((50 * FRAME_SAMPLES, 2)) * 3000).astype(np.int16)
    resamplers = [Resampler(8000, 16000, aligned=True), Resampler(8000, 16000, aligned=True)]
    digests = [hashlib.sha256(), hashlib.sha256()]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    call_id = f"soak-{index:04d}"
    sent = 0
    async with connect(f"{url}/?call_id={call_id}", compression=None) as ws:
        t0 = loop.time()
        for n in range(frames):
            delay = t0 + n * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            at = (n % 50) * FRAME_SAMPLES
            pairs = block[at:at + FRAME_SAMPLES]
            await ws.send(pairs.tobytes())
            sent += 1
            for c in (0, 1):
                digests[c].update(resamplers[c].process(np.ascontiguousarray(pairs[:, c]))
                                  .tobytes())
    for c in (0, 1):
        digests[c].update(resamplers[c].flush().tobytes())
    return {"call": call_id, "frames": sent, "caller": digests[0].hexdigest(),
            "callee": digests[1].hexdigest()}


async def soak(calls: int, seconds: float, transport: str) -> dict:
    server = Server(transport)
    url = await server.start()
    before = await server.stats()
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.5
    frames = int(seconds / 0.02)
    tasks = [asyncio.ensure_future(one_call(url, i, frames, begin + 0.02 * i / calls))
             for i in range(calls)]
    await asyncio.sleep(0.5 + seconds * WARM_UP)
    warm = await server.stats()
    await asyncio.sleep(max(0.0, seconds * (1 - WARM_UP) - 1.0))
    late = await server.stats()
    sent = await asyncio.gather(*tasks, return_exceptions=True)
    deadline = loop.time() + 30
    while len(server.calls) < calls and loop.time() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    after = await server.stats()
    await server.stop()
    failed = [s for s in sent if isinstance(s, BaseException)]
    wrong = [s["call"] for s in sent if isinstance(s, dict) and not same_audio(
        s, server.calls.get(s["call"], {}))]
    growth = (late["rss"] - warm["rss"]) / warm["rss"]
    return {"calls": calls, "seconds": seconds, "transport": transport,
            "client_errors": len(failed), "calls_reported": len(server.calls),
            "calls_not_exact": len(wrong), "overruns": sum(c["overruns"] for c in
                                                           server.calls.values()),
            "rss_warm_mb": round(warm["rss"] / 2**20, 1),
            "rss_end_mb": round(late["rss"] / 2**20, 1),
            "rss_growth": round(growth, 4), "fds_before": before["fds"],
            "fds_after": after["fds"],
            "formats": dict(collections.Counter(c.get("format") for c in server.calls.values()))}


def same_audio(sent: dict, received: dict) -> bool:
    return all(sent[name] == received.get(name) for name in ("caller", "callee"))


def passed(figures: dict) -> bool:
    return (figures["client_errors"] == 0 and figures["calls_not_exact"] == 0
            and figures["calls_reported"] == figures["calls"] and figures["overruns"] == 0
            and figures["rss_growth"] < 0.05 and figures["fds_after"] == figures["fds_before"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--transport", default="websockets", choices=("websockets", "picows"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        server_main(args.serve)
        return 0
    figures = asyncio.run(soak(args.calls, args.seconds, args.transport))
    print(json.dumps(figures))
    return 0 if passed(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
