"""Hand a speech recogniser what it wants: fixed one-second chunks of float32 audio
at 16 kHz, per channel, as the call goes on.

    python examples/transcribe_chunks.py --port 8765

``transcribe`` stands in for your model (whisper, vosk, a cloud API...); here it
prints each chunk's length and level. Ctrl-C stops the server.
"""
import argparse
import asyncio
import contextlib

import numpy as np

from piopiy_fast import StreamServer

RATE = 16000
CHUNK = RATE  # one second


def transcribe(call_id: str, channel: str, audio: np.ndarray) -> None:
    level = float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
    print(f"{call_id} {channel}: {audio.size / RATE:.2f} s, rms {level:.4f}", flush=True)


async def feed(call, channel: str) -> None:
    # chunks(n) yields exactly n samples each time (the last one may be shorter).
    async for chunk in call.channel(channel).chunks(CHUNK):
        transcribe(call.call_id, channel, chunk.astype(np.float32) / 32768.0)


async def on_call(call) -> None:
    await asyncio.gather(feed(call, "caller"), feed(call, "callee"))
    print(f"{call.call_id}: ended", flush=True)


async def main(host: str, port: int) -> None:
    async with StreamServer(host, port, target_rate=RATE, on_call=on_call) as server:
        print(f"listening on {server.url}", flush=True)
        await server.serve_forever()  # until Ctrl-C


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the server has closed cleanly
        asyncio.run(main(args.host, args.port))
