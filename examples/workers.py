"""Receive on every core: one StreamServer per process, all on one port, under a supervisor.

    python examples/workers.py --port 8765 --workers 4

Each worker process runs its own server with ``reuse_port=True``; the kernel hands each
new connection to one of them. The supervisor restarts a worker that dies (only that
worker's calls end) and, on Ctrl-C or SIGTERM, drains every worker and exits 0. One line
per call when it ends, naming the worker that had it.
"""
import argparse
import asyncio
import os
import sys

from piopiy_fast import StreamServer
from piopiy_fast.receiver.workers import Supervisor, Worker, reserve_port


def say(line: str) -> None:
    # One write per line: the workers share stdout, and print() writes a line and its
    # newline apart when Python runs unbuffered (PYTHONUNBUFFERED, common in containers).
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def samples_in(reader) -> int:
    samples = 0
    async for chunk in reader:  # numpy int16 at 16 kHz, as audio arrives
        samples += chunk.size   # your analysis goes here
    return samples


def worker_main(worker: Worker, host: str, port: int) -> None:
    """One worker process (a module-level function: the supervisor starts it by name)."""
    async def on_call(call) -> None:
        caller, callee = await asyncio.gather(samples_in(call.caller), samples_in(call.callee))
        say(f"[w{worker.index}] {call.call_id}: caller {caller} samples, "
            f"callee {callee} samples")

    server = StreamServer(host, port, reuse_port=True, on_call=on_call)
    asyncio.run(worker.serve(server))  # until the supervisor's SIGTERM


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    # The port is bound here first: port 0 becomes one free port for every worker, a
    # port in use is an error now, and the port stays held while a worker restarts.
    with reserve_port(args.host, args.port) as reserved:
        port = reserved.getsockname()[1]
        supervisor = Supervisor(
            worker_main, args.workers, args=(args.host, port),
            on_ready=lambda url: say(f"listening on {url}"), say=say)
        raise SystemExit(supervisor.run())
