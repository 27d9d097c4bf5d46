"""The server's limits on a call: no audio after connecting, audio that stops, a call
that goes on too long. Each closes the call with 1008, names why, counts it, and leaves
the other calls alone. And peers that are gone: a reset frees its call at once, a
vanished host is probed by TCP keepalive; and a bounded receive buffer per connection."""
import asyncio
import contextlib
import os
import socket
import struct
import sys

import numpy as np
import pytest
from stream_testing import UNIT, Collector, mask, masked_frame_header, offline, run
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from piopiy_fast.receiver.limits import calls_the_fd_limit_allows
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.simulator import Simulator, simulate

FRAME = b"\x00\x01" * 160


async def closed_by_server(url, send_frames, keep_sending=False):
    async with connect(url) as ws:
        for _ in range(send_frames):
            await ws.send(FRAME)
        with contextlib.suppress(ConnectionClosed):  # the server may close mid-send
            while keep_sending and ws.close_code is None:
                await ws.send(FRAME)
                await asyncio.sleep(0.02)
        await asyncio.wait_for(ws.wait_closed(), 10)
        return ws.close_code, ws.close_reason


@pytest.mark.parametrize("limit, frames, keep_sending, reason", [
    ({"idle_timeout": 0.5}, 0, False, "no audio in 0.5 s"),
    ({"silence_timeout": 0.5}, 3, False, "no audio for 0.5 s"),
    ({"max_call_seconds": 1.5}, 0, True, "longer than 1.5 s"),
])
def test_a_call_past_a_limit_is_closed_1008(transport, limit, frames, keep_sending, reason):
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector,
                                **limit) as server:
            # A good real-time call of 2.5 s alongside is left alone: it never breaks
            # the idle or silence limit; the length limit is checked on the other call.
            good = Simulator(server.url, seconds=2.5 if "max_call_seconds" not in limit
                             else 1.0, realtime=True, call_id_prefix="good")
            closed, report = await asyncio.gather(
                closed_by_server(f"{server.url}/?call_id=bad", frames, keep_sending),
                good.run())
            await collector.wait_for(2)
            return closed, report, server.stats

    closed, report, stats = run(main(), transport=transport)
    assert closed == (1008, reason)
    assert not report.failed
    assert collector.done["bad"].close_info.code == 1008
    assert (stats.timed_out_calls, stats.failed_calls) == (1, 1)


def test_a_paused_call_is_not_closed_for_silence(transport):
    collector = Collector()
    outcome = {}

    async def on_call(call):
        await call.wait_audio()
        await call.pause()
        await asyncio.sleep(1.6)  # silent, but paused: past the 0.5 s limit
        outcome["ended while paused"] = call.ended
        await call.resume()
        await collector(call)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call,
                                silence_timeout=0.5) as server:
            async with connect(f"{server.url}/?call_id=p") as ws:
                await ws.send(FRAME)
                # The audio settles after the first half second; then 1.6 s paused.
                await asyncio.sleep(2.6)
                await ws.send(FRAME)
            await collector.wait_for(1)

    run(main(), transport=transport)
    assert outcome == {"ended while paused": False}
    assert collector.done["p"].close_info.code == 1000


def test_limits_are_checked_and_max_calls_follows_the_fd_limit():
    import resource
    for name in ("idle_timeout", "silence_timeout", "max_call_seconds"):
        with pytest.raises(ValueError, match=f"{name} must be positive seconds or None"):
            StreamServer(**{name: 0})
    with pytest.raises(ValueError, match="max_calls must be at least 1, 'auto' or None"):
        StreamServer(max_calls=0)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert calls_the_fd_limit_allows() == (soft - 64) // 3
    assert StreamServer()._max_calls == (soft - 64) // 3


HANDSHAKE = (b"GET /s?call_id=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")


async def raw_call(port: int, call_id: str) -> socket.socket:
    """A call opened on a plain socket: the handshake, answered 101."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, HANDSHAKE % call_id.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += await loop.sock_recv(sock, 4096)
    assert answer.startswith(b"HTTP/1.1 101 "), answer
    return sock


def reset_with_a_frame_unread(sock: socket.socket) -> None:
    """Send a frame, then reset the connection (SO_LINGER 0), in one go: the server's
    event loop does not run in between, so the reset reaches a socket with data still
    to read."""
    sock.send(masked_frame_header(0x2, 320) + mask(b"\x00\x01" * 160))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def until(condition, seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds * UNIT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.01)


def test_reset_peers_free_their_call_slots_at_once(transport):
    """60 calls reset by their peers, 20 at a time against max_calls=20: every slot comes
    back (the ping, which would find them in the end, is off), and a good call after
    them is admitted and sample-exact."""
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=collector,
                                max_calls=20, ping_interval=None) as server:
            for round in range(3):
                socks = [await raw_call(server.port, f"r{round}-{i}") for i in range(20)]
                await until(lambda: len(server.active_calls) == 20, 10, "calls admitted")
                for sock in socks:
                    reset_with_a_frame_unread(sock)
                await until(lambda: not server.active_calls, 10,
                            f"reset calls still held: {len(server.active_calls)}")
            report = await simulate(server.url, listen_mode="both", seconds=0.2)
            await collector.wait_for(61)
            return report.calls[0], server.stats

    sent, stats = run(main(), timeout=60, transport=transport)
    assert sent.error is None
    for name in ("caller", "callee"):
        assert np.array_equal(collector.audio[sent.call_id][name],
                              offline(sent.sent(name), 8000, 16000))
    assert (stats.total_calls, stats.failed_calls, stats.rejected_calls) == (61, 60, 0)
    assert {collector.done[f"r{r}-{i}"].close_info.code
            for r in range(3) for i in range(20)} == {1006}


def server_end_of(client: socket.socket) -> socket.socket:
    """The server's socket of a connection, found among this process's descriptors."""
    want = (client.getpeername(), client.getsockname())
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if (sock.type == socket.SOCK_STREAM
                    and (sock.getsockname(), sock.getpeername()) == want):
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError("no server socket for this connection")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_accepted_connections_keep_alive_and_bound_their_receive_buffer(transport):
    from piopiy_fast.receiver.transports import tcp

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport) as server:
            client = await raw_call(server.port, "k")
            await until(lambda: server.active_calls, 10, "call admitted")
            with server_end_of(client) as sock:
                options = [sock.getsockopt(socket.SOL_SOCKET, option)
                           for option in (socket.SO_RCVBUF, socket.SO_KEEPALIVE)] + [
                    sock.getsockopt(socket.IPPROTO_TCP, option)
                    for option in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL,
                                   socket.TCP_KEEPCNT)]
            client.close()
            return options

    assert run(main(), transport=transport) == [
        2 * tcp.RECEIVE_BUFFER_BYTES,  # Linux doubles what it is asked for
        1, tcp.KEEPALIVE_IDLE, tcp.KEEPALIVE_INTERVAL, tcp.KEEPALIVE_PROBES]
    # A gone peer is let go before the ping would (20 s idle, 20 s for the answer).
    assert tcp.KEEPALIVE_IDLE + tcp.KEEPALIVE_INTERVAL * tcp.KEEPALIVE_PROBES < 40
