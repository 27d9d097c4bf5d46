"""Receive Piopiy call streams and read every channel as 16 kHz int16 arrays.

    python examples/receive.py --port 8765

and, to play Piopiy's side from another terminal:

    piopiy-fast simulate ws://127.0.0.1:8765/stream --calls 3 --mode both --seconds 5

One line per call when it ends. Ctrl-C stops the server cleanly.
"""
import argparse
import asyncio
import contextlib

from piopiy_fast import StreamServer


async def read_channel(reader) -> int:
    samples = 0
    async for chunk in reader:  # numpy int16 at the server's target rate, as audio arrives
        samples += chunk.size   # your analysis goes here
    return samples


async def on_call(call) -> None:
    # Handed over once the call is known; its first half second settles the format:
    # stereo (caller and callee), mixed (both parties in one channel, "mix") or mono.
    await call.wait_audio()
    counts = await asyncio.gather(*(read_channel(call.channel(name)) for name in call.channels))
    channels = ", ".join(f"{name} {n} samples"
                         for name, n in zip(call.channels, counts, strict=True))
    print(f"{call.call_id}: {call.listen_mode} {call.layout} at {call.source_rate} Hz, "
          f"{channels}, {call.stats.overruns} overruns", flush=True)


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
