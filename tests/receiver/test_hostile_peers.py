"""What a hostile peer sends, on every transport, over real sockets: hand-made frames from
a raw TCP client, and exact answers (the server's frames, the call's close info, the
counts and the log)."""

import asyncio
import logging
import os
import socket
import struct

import pytest
from stream_testing import Collector, mask, masked_frame_header, run, server_frames

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.receiver.transports.assembly import MAX_MESSAGE_FRAMES
from piopiy_fast.receiver.transports.base import CloseInfo

OPEN = (b"GET /s?call_id=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n")
AUDIO = b"\x00\x01" * 160


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """One masked client frame; ``rsv`` is the reserved bits (4, 2, 1 for RSV1-3)."""
    return masked_frame_header(opcode, len(payload), fin=fin, rsv=rsv) + mask(payload)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


async def opened(port: int, call_id: bytes, *, receive_buffer: int | None = None):
    """A raw client past the opening handshake: (reader, writer)."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(OPEN % call_id)
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
    return reader, writer


async def exchange(server, collector, call_id: bytes, *frames: bytes, answer=None):
    """Send an audio frame, wait for it to arrive, send ``frames``; return what the
    server sent back until it closed (answering its close frame with ``answer``)."""
    reader, writer = await opened(server.port, call_id)
    writer.write(frame(0x2, AUDIO))
    while not collector.calls or collector.calls[-1].sink.first_frame is None:
        await asyncio.sleep(0.005)
    writer.write(b"".join(frames))
    if answer is not None:
        head = await asyncio.wait_for(reader.readexactly(2), 10)
        rest = await reader.readexactly(head[1] & 0x7F)
        writer.write(frame(0x8, answer))
        received = head + rest + await asyncio.wait_for(reader.read(), 10)
    else:
        received = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await collector.wait_for(len(collector.calls))
    return server_frames(received)


def first_close(frames):
    """The code of the server's close frame (None when it has none), and any frame it
    sent before it."""
    closes = [i for i, (opcode, _) in enumerate(frames) if opcode == 0x8]
    assert closes, frames
    payload = frames[closes[0]][1]
    code = struct.unpack("!H", payload[:2])[0] if payload else None
    return frames[:closes[0]], code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535])
def test_a_close_code_invalid_on_the_wire_fails_1002(transport, code):
    """Never echoed: the server fails the connection with 1002, and the call says so."""
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            frames = await exchange(server, collector, b"bad-close",
                                    frame(0x8, close_payload(code, b"bye")))
            return frames, server.stats.failed_calls

    frames, failed = run(main(), transport=transport)
    assert first_close(frames) == ([], 1002)
    call = collector.done["bad-close"]
    assert (call.close_info.code, call.close_info.clean) == (1002, False)
    assert failed == 1


@pytest.mark.parametrize("sent, answered", [(b"", 1000), (close_payload(1000), 1000),
                                            (close_payload(4000, b"done"), 4000)],
                         ids=["empty", "1000", "4000"])
def test_a_valid_close_is_answered(transport, sent, answered):
    """With the peer's code; an empty close with 1000 on picows (websockets echoes it
    empty)."""
    collector = Collector()
    if not sent and transport == "websockets":
        answered = None

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            return await exchange(server, collector, b"closing", frame(0x8, sent))

    frames = run(main(), transport=transport)
    assert first_close(frames) == ([], answered)
    expected = {1000: (1000, True), 4000: (4000, False)}.get(len(sent) and answered,
                                                            (1005, False))
    info = collector.done["closing"].close_info
    assert (info.code, info.clean) == expected


@pytest.mark.parametrize("opcode", [0x9, 0xA], ids=["ping", "pong"])
def test_a_control_frame_with_reserved_bits_fails_1002(transport, opcode):
    """No pong for a ping with a reserved bit set: the connection fails 1002."""
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            return await exchange(server, collector, b"rsv-ping",
                                  frame(opcode, b"hi", rsv=4), frame(0x2, AUDIO))

    frames = run(main(), transport=transport)
    assert first_close(frames) == ([], 1002)
    call = collector.done["rsv-ping"]
    assert (call.close_info.code, call.stats.frames) == (1002, 1)


def test_a_call_the_server_closed_1009_is_not_clean(transport):
    """The peer answers the server's 1009 with 1000: the call still ended 1009, failed."""
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, max_frame_bytes=2048,
                                on_call=collector) as server:
            frames = await exchange(server, collector, b"big", frame(0x2, bytes(4096)),
                                    answer=close_payload(1000))
            return frames, server.stats.failed_calls

    frames, failed = run(main(), transport=transport)
    assert first_close(frames) == ([], 1009)
    info = collector.done["big"].close_info
    assert (info.code, info.clean) == (1009, False)
    assert failed == 1


def test_empty_continuation_frames_end_the_message_1009(transport):
    """A message that never ends (empty continuation frames) is cut at a frame count on
    picows, which hands over frames as they come (websockets queues a message's frames
    and stops reading the peer when its queue is full)."""
    if transport == "websockets":
        pytest.skip("websockets bounds a message's frames by its queue")
    collector = Collector()
    # A few past the bound, all read at once: the server closes with nothing unread
    # (a close with unread bytes would be a reset, which may overtake the close frame).
    endless = frame(0x2, b"", fin=False) + frame(0x0, b"", fin=False) * (MAX_MESSAGE_FRAMES + 2)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            return await exchange(server, collector, b"endless", endless)

    frames = run(main(), transport=transport)
    assert first_close(frames) == ([], 1009)
    call = collector.done["endless"]
    assert (call.close_info.code, call.stats.frames) == (1009, 1)


def test_the_frame_bound_leaves_room_for_fragmented_messages(transport):
    """A text message in MAX_MESSAGE_FRAMES pieces is one event."""
    collector = Collector()
    text = b'{"event": "mark", "name": "%s"}' % (b"x" * (MAX_MESSAGE_FRAMES * 2))
    cuts = [len(text) * i // MAX_MESSAGE_FRAMES for i in range(MAX_MESSAGE_FRAMES + 1)]
    pieces = [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    frames = b"".join(frame(0x1 if i == 0 else 0x0, piece, fin=i == len(pieces) - 1)
                      for i, piece in enumerate(pieces))

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            return await exchange(server, collector, b"pieces", frames,
                                  frame(0x8, close_payload(1000)))

    frames = run(main(), transport=transport)
    assert first_close(frames) == ([], 1000)
    call = collector.done["pieces"]
    assert (call.close_info.code, call.stats.events) == (1000, 1)
    assert call.events[-1]["name"] == "x" * (MAX_MESSAGE_FRAMES * 2)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS read from /proc")
def test_a_ping_flood_from_a_peer_that_reads_nothing_ends_its_call(transport, caplog):
    """Pings as fast as TCP takes them, their pongs never read: what waits to be sent is
    bounded, the call ends 1008 (counted failed, logged) and the server's memory stays
    flat (without the bound it grew by tens of MB a second)."""
    caplog.set_level(logging.WARNING, logger="piopiy_fast.transport")
    collector = Collector()
    pings = frame(0x9, b"p" * 125) * 500

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            peak = baseline = rss_bytes()
            done = asyncio.Event()

            async def sample():
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_bytes())
                    await asyncio.sleep(0.005)

            sampler = asyncio.ensure_future(sample())
            _, writer = await opened(server.port, b"flood", receive_buffer=4096)
            writer.write(frame(0x2, AUDIO))
            sent = 0
            try:
                while sent < 80 << 20 and not writer.is_closing():
                    writer.write(pings)
                    sent += len(pings)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            await collector.wait_for(1)
            done.set()
            await sampler
            writer.close()
            return peak - baseline, sent, server.stats.failed_calls

    growth, sent, failed = run(main(), timeout=60, transport=transport)
    assert sent < 40 << 20  # dropped long before the flood's end
    assert growth < 50 << 20
    assert collector.done["flood"].close_info == CloseInfo(1008, "the peer reads nothing",
                                                           False)
    assert failed == 1
    [line] = [r.getMessage() for r in caplog.records if "reads nothing" in r.getMessage()]
    assert line.startswith("stream /s from 127.0.0.1:")


def test_a_refusal_names_the_peer(transport, caplog):
    """The refused client's own address is in the line (picows too: the doorman knows
    the peer when admission asks)."""
    caplog.set_level(logging.WARNING, logger="piopiy_fast")

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth="tok") as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            port = writer.get_extra_info("sockname")[1]
            writer.write(OPEN.replace(b"call_id=%s", b"token=wrong"))
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return port, answer

    port, answer = run(main(), transport=transport)
    assert answer.startswith(b"HTTP/1.1 403 ")
    [line] = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert line == f"stream /s from 127.0.0.1:{port} refused: wrong token"
