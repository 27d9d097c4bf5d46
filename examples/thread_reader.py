"""Read a call from a worker thread: for analysis that blocks or takes the CPU (a
voice-activity detector, a speaker embedding), off the event loop.

    python examples/thread_reader.py --port 8765

``read_blocking`` / ``iter_blocking`` wait without holding the GIL. Each channel
gets one thread; it ends when the call ends and its audio is read.
"""
import argparse
import asyncio
import contextlib

import numpy as np

from piopiy_fast import StreamServer

BLOCK = 3200  # 200 ms at 16 kHz


def analyse(reader) -> tuple[int, float]:
    """Runs in a worker thread: the samples read and the loudest 200 ms block's energy."""
    samples, loudest = 0, 0.0
    for block in reader.iter_blocking(BLOCK):
        samples += block.size
        loudest = max(loudest, float(np.mean(block.astype(np.float64) ** 2)))
    return samples, loudest


async def on_call(call) -> None:
    caller, callee = await asyncio.gather(asyncio.to_thread(analyse, call.caller),
                                          asyncio.to_thread(analyse, call.callee))
    print(f"{call.call_id}: caller {caller[0]} samples, callee {callee[0]} samples, "
          f"loudest block energy {max(caller[1], callee[1]):.0f}", flush=True)


async def main(host: str, port: int) -> None:
    async with StreamServer(host, port, target_rate=16000, on_call=on_call) as server:
        print(f"listening on {server.url}", flush=True)
        await server.serve_forever()  # until Ctrl-C


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the server has closed cleanly
        asyncio.run(main(args.host, args.port))
