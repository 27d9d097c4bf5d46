"""A worker of a pool reading calls from NATS JetStream: per call and channel, the
samples read, where they sit on the call's timeline, the gaps, and a checksum.

    piopiy-fast serve --publish nats://127.0.0.1:4222        # the receiver
    python examples/bus_worker.py nats://127.0.0.1:4222      # as many as you like

then play Piopiy's side from another terminal:

    piopiy-fast simulate ws://127.0.0.1:8765/stream --calls 3 --mode both --seconds 5

Each call goes to one worker of the group; a worker that dies hands its calls on. One
line per channel when a call ends. Ctrl-C stops the worker (its unfinished calls go
back to the pool at once).
"""
import argparse
import asyncio
import contextlib
import hashlib
import signal

from piopiy_fast.bus import NatsSubscriber


async def read_channel(reader) -> tuple[int, int, str]:
    first = None
    digest = hashlib.sha256()
    async for chunk in reader:  # numpy int16 at the receiver's rate, in timeline order
        if first is None:
            first = reader.position - chunk.size  # where this worker starts reading
        digest.update(chunk.tobytes())  # your analysis goes here
    return (first if first is not None else reader.position), reader.position, \
        digest.hexdigest()[:16]


async def on_call(call) -> None:
    print(f"+ call {call.call_id} {call.layout} at {call.source_rate} Hz, read at "
          f"{call.rate} Hz{', taken over' if call.taken_over else ''}", flush=True)
    names = ("caller", "callee", "mix")
    spans = await asyncio.gather(*(read_channel(call.channel(name)) for name in names))
    await call.wait_closed()
    for name, (first, last, digest) in zip(names, spans, strict=True):
        if last == 0 and name not in call.channels:
            continue
        reader = call.channel(name)
        print(f"{call.call_id} {name}: {reader.rate} Hz, samples {first}-{last}, "
              f"{len(reader.gaps)} gaps ({reader.gap_samples} samples), sha256 {digest}"
              f"{', taken over' if call.taken_over else ''}", flush=True)


async def main(url: str, group: str, max_calls: int, handoff: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = set()
    async with NatsSubscriber(url, group=group, max_calls=max_calls,
                              handoff=handoff) as subscriber:
        print(f"worker ready, group {group}", flush=True)

        async def take_calls() -> None:
            async for call in subscriber.calls():
                task = asyncio.ensure_future(on_call(call))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        taking = asyncio.ensure_future(take_calls())
        await stop.wait()
        for task in (taking, *tasks):  # unfinished calls print nothing: they go on elsewhere
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(taking, *tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="nats://127.0.0.1:4222")
    parser.add_argument("--group", default="workers", help="the pool (default workers)")
    parser.add_argument("--max-calls", type=int, default=100,
                        help="calls this worker reads at once (default 100)")
    parser.add_argument("--handoff", type=float, default=30.0,
                        help="seconds before a dead worker's calls go to another "
                             "(default 30)")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.group, args.max_calls, args.handoff))
