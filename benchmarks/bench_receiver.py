"""End to end over 127.0.0.1: server CPU per received 20 ms `both` frame (8 kHz L16,
two channels) turned into two 16 kHz channels, with the server alone in its own
process so that only its CPU is counted.

Baseline (a): a plain ``websockets`` server doing numpy de-interleave + two
``soxr.ResampleStream`` (HQ) per frame. For scale: (b) ``websockets`` receiving and
discarding, (d) picows on uvloop receiving and discarding. Ours: StreamServer with
(c) the websockets transport, (e) the picows transport on uvloop; both with an
application reading 200 ms chunks of each channel, so they do strictly more than
the baseline, which leaves its arrays unused. Target (DESIGN.md): (e) at most 0.4
of (a), aiming at 1/3.

Every case gets the same client, in this process: CONNECTIONS connections, each
writing pre-built masked frames, one per write, as fast as it can. The server reports
``time.process_time()`` (user + system, all its threads) between the moment every
connection is open and the moment every one has closed; the client asks for it on
the server's stdin. One warm-up round, then ROUNDS measured rounds; the median is
the figure. pytest-benchmark's own timing here would be the client's wall time, so
each case is one pedantic call and the real figures are in ``extra_info``.

Run: ``pytest benchmarks/bench_receiver.py`` (the ``bench`` and ``fast`` extras).
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

CONNECTIONS = 20
FRAMES_PER_CONNECTION = 5000  # 100k frames, 2000 s of audio, per measured round
WARMUP_FRAMES_PER_CONNECTION = 500
ROUNDS = 3
DISTINCT_FRAMES = 250  # of random audio, sent over and over
PATH = "/stream?listen_mode=both&voice_quality=8000"
CHUNK = 3200  # what the application reads from each channel: 200 ms at 16 kHz

CASES = {
    "baseline": "a: websockets + numpy + 2 soxr HQ",
    "websockets-discard": "b: websockets, discard",
    "streamserver-websockets": "c: StreamServer, websockets",
    "picows-discard": "d: picows + uvloop, discard",
    "streamserver-picows": "e: StreamServer, picows + uvloop",
}
UVLOOP_CASES = ("picows-discard", "streamserver-picows")


# -- the server process ---------------------------------------------------------------------

class Counter:
    """Frames received and connections open, for the servers without stats of their own."""

    def __init__(self) -> None:
        self.frames = 0
        self.active = 0


def websockets_server(counter: Counter, resample: bool):
    from websockets.asyncio.server import serve

    async def handler(ws):
        counter.active += 1
        try:
            if resample:
                import soxr
                left = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
                right = soxr.ResampleStream(8000, 16000, 1, dtype="int16", quality="HQ")
                async for message in ws:
                    if type(message) is bytes:
                        counter.frames += 1
                        pairs = np.frombuffer(message, dtype="<i2").reshape(-1, 2)
                        left.resample_chunk(np.ascontiguousarray(pairs[:, 0]))
                        right.resample_chunk(np.ascontiguousarray(pairs[:, 1]))
            else:
                async for message in ws:
                    if type(message) is bytes:
                        counter.frames += 1
        finally:
            counter.active -= 1

    async def start():
        server = await serve(handler, "127.0.0.1", 0, compression=None, max_size=1 << 16)
        return server.sockets[0].getsockname()[1]

    return start


def picows_server(counter: Counter):
    from picows import WSListener, WSMsgType, ws_create_server

    binary, close = WSMsgType.BINARY, WSMsgType.CLOSE

    class Discard(WSListener):
        def on_ws_connected(self, transport):
            counter.active += 1

        def on_ws_frame(self, transport, frame):
            if frame.msg_type is binary:
                counter.frames += 1
            elif frame.msg_type is close:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

        def on_ws_disconnected(self, transport):
            counter.active -= 1

    async def start():
        server = await ws_create_server(lambda request: Discard(), "127.0.0.1", 0,
                                        max_frame_size=1 << 16)
        return server.sockets[0].getsockname()[1]

    return start


def stream_server(transport: str):
    from piopiy_fast import StreamServer

    async def consume(call):
        async def drain(reader):
            async for _ in reader.chunks(CHUNK):
                pass
        await asyncio.gather(drain(call.caller), drain(call.callee))

    server = StreamServer("127.0.0.1", 0, transport=transport, on_call=consume)

    async def start():
        await server.start()
        return server.port

    def counts():
        stats = server.stats
        return stats.frames, stats.active_calls + len(server._app_tasks)

    return start, counts


def serve(case: str) -> None:
    """The server process: print the port, then answer ``mark`` / ``report`` on stdin."""
    counter = Counter()
    if case.startswith("streamserver"):
        start, counts = stream_server(case.removeprefix("streamserver-"))
    else:
        def counts():
            return counter.frames, counter.active
        if case == "picows-discard":
            start = picows_server(counter)
        else:
            start = websockets_server(counter, resample=case == "baseline")

    async def frames_now() -> int:
        return counts()[0]

    async def settled() -> int:
        # Every connection has finished with its frames (and its readers with theirs).
        while True:
            frames, active = counts()
            if not active:
                return frames
            await asyncio.sleep(0.001)

    def commands(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        mark_cpu, mark_frames = 0.0, 0
        for line in sys.stdin:
            command = line.strip()
            if command == "mark":
                mark_frames = asyncio.run_coroutine_threadsafe(frames_now(), loop).result()
                mark_cpu = time.process_time()
                print("ok", flush=True)
            elif command == "report":
                frames = asyncio.run_coroutine_threadsafe(settled(), loop).result()
                cpu = time.process_time() - mark_cpu
                print(json.dumps({"cpu": cpu, "frames": frames - mark_frames}), flush=True)
        loop.call_soon_threadsafe(stop.set)  # stdin closed: the client is done

    async def main() -> None:
        port = await start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        threading.Thread(target=commands, args=(loop, stop), daemon=True).start()
        print(json.dumps({"port": port, "loop": type(loop).__module__}), flush=True)
        await stop.wait()

    if case in UVLOOP_CASES:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(main())


# -- the client ------------------------------------------------------------------------------

MASK = b"\x37\xfa\x21\x3d"


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One client-to-server frame (FIN set, masked with MASK)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    data = np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(MASK, np.uint8), n)
    return head + MASK + data.tobytes()


def both_frames(count: int, seed: int = 0) -> list[bytes]:
    """``count`` masked 20 ms `both` frames at 8 kHz (160 sample pairs of L16)."""
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((count, 320)) * 3000).astype("<i2")
    return [masked_frame(0x2, row.tobytes()) for row in audio]


async def open_websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head
    return reader, writer


async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 frames: list[bytes], count: int) -> None:
    # One frame per write, then the other connections' turn: each frame travels in
    # its own TCP segment, as a media server's do, and how many a server read finds
    # waiting depends on how fast that server is, not on the client's batching.
    sleep = asyncio.sleep
    for i in range(count):
        writer.write(frames[i % len(frames)])
        await sleep(0)
        if not i % 64:
            await writer.drain()
    writer.write(masked_frame(0x8, struct.pack("!H", 1000)))
    await writer.drain()
    await reader.read()  # the server's close frame, then EOF
    writer.close()


def command(server: subprocess.Popen[str], line: str) -> str:
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(line + "\n")
    server.stdin.flush()
    return server.stdout.readline()


def measure(case: str) -> dict[str, object]:
    """Start the server for ``case``, run the warm-up and the measured rounds."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    server = subprocess.Popen([sys.executable, __file__, case], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        hello = json.loads(server.stdout.readline())
        frames = both_frames(DISTINCT_FRAMES)

        async def one_round(frames_per_connection: int) -> dict[str, float]:
            connections = [await open_websocket(hello["port"]) for _ in range(CONNECTIONS)]
            assert command(server, "mark").strip() == "ok"
            started = time.perf_counter()
            await asyncio.gather(*(stream(r, w, frames, frames_per_connection)
                                   for r, w in connections))
            wall = time.perf_counter() - started
            report = json.loads(command(server, "report"))
            assert report["frames"] == CONNECTIONS * frames_per_connection, report
            return {"cpu_us": 1e6 * report["cpu"] / report["frames"],
                    "frames_per_s": report["frames"] / wall}

        async def rounds() -> list[dict[str, float]]:
            await one_round(WARMUP_FRAMES_PER_CONNECTION)
            return [await one_round(FRAMES_PER_CONNECTION) for _ in range(ROUNDS)]

        results = asyncio.run(rounds())
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    per_frame = [r["cpu_us"] for r in results]
    return {
        "server_loop": hello["loop"],
        "cpu_us_per_frame": statistics.median(per_frame),
        "cpu_us_per_frame_rounds": per_frame,
        "frames_per_s_wall": statistics.median(r["frames_per_s"] for r in results),
        "frames_per_round": CONNECTIONS * FRAMES_PER_CONNECTION,
        "connections": CONNECTIONS,
    }


if __name__ == "__main__":
    serve(sys.argv[1])
else:
    import pytest

    GROUP = "receiver: server CPU per 20 ms both frame, 8 kHz -> 2 x 16 kHz, 127.0.0.1"

    @pytest.fixture(scope="module")
    def table(request):
        """Collects every case's figure; prints them with the ratio to the baseline."""
        rows: dict[str, float] = {}
        yield rows
        plugins = request.config.pluginmanager
        capture = plugins.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print_table(rows, plugins.get_plugin("terminalreporter").write_line)

    def print_table(rows, write):
        base = rows.get("baseline")
        write("")
        write(f"{GROUP}")
        write(f"{'case':<36} {'CPU us/frame':>12} {'of (a)':>8} {'calls vs (a)':>13}")
        for case, us in rows.items():
            ratio = f"{us / base:8.2f} {base / us:12.2f}x" if base else ""
            write(f"{CASES[case]:<36} {us:12.2f} {ratio}")

    @pytest.mark.benchmark(group=GROUP)
    @pytest.mark.parametrize("case", list(CASES))
    def test_server_cpu_per_frame(benchmark, case, table):
        pytest.importorskip("soxr")
        if "picows" in case:
            pytest.importorskip("picows")
            pytest.importorskip("uvloop")
        result = benchmark.pedantic(measure, args=(case,), rounds=1, iterations=1)
        benchmark.extra_info.update(result)
        base = table.get("baseline")
        if base:
            benchmark.extra_info["ratio_to_baseline"] = result["cpu_us_per_frame"] / base
        table[case] = result["cpu_us_per_frame"]
