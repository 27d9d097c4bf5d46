"""Record every call: one mono 16 kHz WAV per call and channel, valid at every moment.

    python examples/record.py calls/ --port 8765

Files are named ``<call id>.caller.wav`` and ``<call id>.callee.wav``. Ctrl-C stops
the server after finishing the files of the calls still running.
"""
import argparse
import asyncio
import contextlib

from piopiy_fast import Recorder, StreamServer


async def main(directory: str, host: str, port: int) -> None:
    recorder = Recorder(directory)

    async def on_call(call) -> None:
        files = await recorder.record(call)
        print(f"{call.call_id}: " + ", ".join(str(f) for f in files), flush=True)

    async with StreamServer(host, port, target_rate=16000, on_call=on_call) as server:
        print(f"listening on {server.url}, recording to {directory}", flush=True)
        await server.serve_forever()  # until Ctrl-C


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the server has closed cleanly
        asyncio.run(main(args.directory, args.host, args.port))
