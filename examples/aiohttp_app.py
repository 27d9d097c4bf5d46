"""Receive Piopiy call streams inside an aiohttp application: the receiver at /stream,
on the application's own port, beside its other routes.

    python examples/aiohttp_app.py --port 8080

and, to play Piopiy's side from another terminal:

    piopiy-fast simulate ws://127.0.0.1:8080/stream --calls 3 --mode both --seconds 5

GET /calls lists the calls connected now. One line per call when it ends. Ctrl-C stops
the application and the receiver with it.
"""
import argparse
import asyncio
import socket

from aiohttp import web

from piopiy_fast import StreamServer
from piopiy_fast.receiver.transports.aiohttp import AiohttpTransport


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


def make_app() -> web.Application:
    receiver = AiohttpTransport()
    server = StreamServer(transport=receiver, target_rate=16000, on_call=on_call)

    async def start(app: web.Application) -> None:
        await server.start()  # binds no port: the calls come in through the route below

    async def stop(app: web.Application) -> None:
        await server.close()  # on shutdown: before aiohttp waits for open handlers

    async def live_calls(request: web.Request) -> web.Response:
        return web.json_response([call.call_id for call in server.active_calls])

    app = web.Application()
    app.router.add_get("/stream", receiver.handler)
    app.router.add_get("/calls", live_calls)
    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    # The socket is bound here so that --port 0 can print the port it got.
    sock = socket.create_server((args.host, args.port))
    print(f"listening on ws://{args.host}:{sock.getsockname()[1]}", flush=True)
    web.run_app(make_app(), sock=sock, print=None)  # Ctrl-C: shuts down cleanly
