"""Receive Piopiy call streams inside a FastAPI application: the receiver at /stream,
on the application's own port, beside its other routes.

    python examples/fastapi_app.py --port 8000

and, to play Piopiy's side from another terminal:

    piopiy-fast simulate ws://127.0.0.1:8000/stream --calls 3 --mode both --seconds 5

GET /calls lists the calls connected now. One line per call when it ends. Ctrl-C stops
the application and the receiver with it.
"""
import argparse
import asyncio
import contextlib
import socket

import uvicorn
from fastapi import FastAPI

from piopiy_fast import StreamServer
from piopiy_fast.receiver.transports.asgi import AsgiTransport


async def on_call(call) -> None:
    await call.wait_audio()
    counts = await asyncio.gather(*(read_channel(call.channel(name)) for name in call.channels))
    channels = ", ".join(f"{name} {n} samples"
                         for name, n in zip(call.channels, counts, strict=True))
    print(f"{call.call_id}: {call.listen_mode} {call.layout} at {call.source_rate} Hz, "
          f"{channels}", flush=True)


async def read_channel(reader) -> int:
    samples = 0
    async for chunk in reader:  # numpy int16 at 16 kHz, as audio arrives
        samples += chunk.size   # your analysis goes here
    return samples


receiver = AsgiTransport()
server = StreamServer(transport=receiver, target_rate=16000, on_call=on_call)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    async with server:  # binds no port: the calls come in through the route below
        yield


app = FastAPI(lifespan=lifespan)
app.router.add_websocket_route("/stream", receiver.app)


@app.get("/calls")
async def live_calls() -> list[str]:
    return [call.call_id for call in server.active_calls]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # The socket is bound here so that --port 0 can print the port it got.
    sock = socket.create_server((args.host, args.port))
    print(f"listening on ws://{args.host}:{sock.getsockname()[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down cleanly
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
