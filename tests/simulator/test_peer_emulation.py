"""The emulation of FreeSWITCH mod_audio_stream's client against a raw TCP server that
records every byte: the opening request of each generation, the frames per layout,
their order, heartbeats, closes and reconnection."""

import asyncio
import itertools
import struct

import numpy as np
import pytest
from raw_peer_server import RawPeerServer, server_frame
from stream_testing import run

from piopiy_fast.simulator.conversation import Conversation, Turn, scripted
from piopiy_fast.simulator.handshake import accept_key
from piopiy_fast.simulator.mod_audio_stream import AudioStream, StreamStart

RATE = 8000
META = '{"call_id": "peer-1"}'


def ramp_conversation(seconds=0.2, rate=RATE):
    """Caller and callee with values that tell every sample apart."""
    n = int(seconds * rate)
    caller = (np.arange(n) % 20000).astype(np.int16)
    callee = (-(np.arange(n) % 20000) - 7).astype(np.int16)
    return Conversation(rate, caller, callee, (Turn("caller", 0, n),))


def stream(url, layout="mono", conversation=None, **options):
    conversation = conversation or ramp_conversation()
    start = StreamStart.parse(url, layout, str(conversation.rate), options.pop("metadata", META))
    options.setdefault("realtime", False)
    return AudioStream(start, conversation, **options)


# --- the opening request, byte for byte ----------------------------------------------------

@pytest.mark.parametrize("deflate", [False, True])
def test_libwsc_request_bytes(deflate):
    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url + "/calls?listen_mode=both", deflate=deflate,
                       headers={"X-Tenant": "t1", "Authorization": "Bearer abc"})
            await s.run()
            return server.port, server.connections[0]

    port, conn = run(main())
    offer = ("Sec-WebSocket-Extensions:permessage-deflate; client_no_context_takeover; "
             "server_no_context_takeover; client_max_window_bits=9\r\n") if deflate else ""
    assert conn.request.decode() == (
        "GET /calls?listen_mode=both HTTP/1.1\r\n"
        f"Host:127.0.0.1:{port}\r\n"
        "Upgrade:websocket\r\n"
        "Connection:upgrade\r\n"
        f"Sec-WebSocket-Key:{conn.key}\r\n"
        "Sec-WebSocket-Version:13\r\n"
        f"{offer}"
        f"Origin:http://127.0.0.1:{port}\r\n"
        "Authorization:Bearer abc\r\n"
        "X-Tenant:t1\r\n"
        "\r\n")
    assert len(conn.key) == 24


def test_ixwebsocket_request_bytes():
    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, client="ixwebsocket", headers={"x-tenant": "t1"})
            await s.run()
            return server.port, server.connections[0]

    port, conn = run(main())
    assert conn.request.decode() == (
        "GET / HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {conn.key}\r\n"
        "User-Agent: ixwebsocket/11.4.3 linux ssl/OpenSSL OpenSSL 3.0.15 3 Sep 2024 "
        "zlib 1.2.13\r\n"
        f"Origin: ws://127.0.0.1:{port}\r\n"
        "x-tenant: t1\r\n"
        "\r\n")


def test_accept_key_is_rfc6455s_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("client", ["current", "ixwebsocket"])
def test_a_refused_handshake_sends_nothing(client):
    async def main():
        async with RawPeerServer(status=401) as server:
            s = stream(server.url, client=client, reconnect=False)
            await s.run()
            return s, server.connections

    s, conns = run(main())
    assert len(conns) == 1 and conns[0].frames == []
    assert s.events.frames == 0 and any("401" in e for e in s.events.errors)


# --- frames per layout, exact samples ------------------------------------------------------

def decode(frames):
    return np.frombuffer(b"".join(frames), dtype="<i2")


@pytest.mark.parametrize("client", ["current", "ixwebsocket"])
@pytest.mark.parametrize("layout", ["mono", "mixed", "stereo"])
def test_frames_per_layout(layout, client):
    conv = ramp_conversation()
    conv = Conversation(RATE, conv.caller, conv.callee, conv.turns)
    # Make the mixed sum clip both ways somewhere.
    conv.caller[10:20] = 30000
    conv.callee[10:15] = 5000
    conv.callee[15:20] = -32768
    conv.caller[20:30] = -30000
    conv.callee[20:30] = -5000

    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, layout, conv, client=client)
            await s.run()
            return server.connections[0]

    conn = run(main())
    frames = conn.binaries()
    width = 2 if layout == "stereo" else 1
    assert [len(f) for f in frames] == [160 * 2 * width] * 10  # 20 ms at 8 kHz, 0.2 s
    got = decode(frames)
    caller, callee = conv.caller.astype(np.int64), conv.callee.astype(np.int64)
    if layout == "mono":
        assert np.array_equal(got, conv.caller)
    elif layout == "mixed":
        expected = np.minimum(np.maximum(caller + callee, -32768), 32767)
        assert np.array_equal(got, expected)
        assert got[10] == 32767 and got[20] == -32768 and got[15] == 30000 - 32768
    else:
        assert np.array_equal(got[0::2], conv.caller) and np.array_equal(got[1::2], conv.callee)


def test_buffer_size_joins_frames_and_16k_doubles_them():
    conv = ramp_conversation(0.24, 16000)

    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, "stereo", conv, buffer_ms=60)
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    assert [len(f) for f in conn.binaries()] == [960 * 2 * 2] * 4
    assert np.array_equal(decode(conn.binaries())[0::2], conv.caller)
    sent = s.sent_audio()
    assert np.array_equal(sent["caller"], conv.caller) and np.array_equal(sent["callee"],
                                                                           conv.callee)


# --- order: queued audio, metadata, pauses ------------------------------------------------

def test_current_flushes_audio_queued_while_connecting_before_the_metadata():
    async def main():
        async with RawPeerServer(delay_101=0.2) as server:
            s = stream(server.url, preconnect_frames=3)
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    kinds = [op for op, _ in conn.frames]
    # 3 queued frames, the metadata, the other 7 frames, then the close.
    assert kinds == [2, 2, 2, 1] + [2] * 7 + [8]
    assert conn.texts() == [META]
    assert np.array_equal(decode(conn.binaries()), ramp_conversation().caller)
    assert s.events.sent_tags == list(range(10))


def test_ixwebsocket_drops_audio_before_open_and_sends_the_metadata_first():
    async def main():
        async with RawPeerServer(delay_101=0.2) as server:
            s = stream(server.url, client="ixwebsocket", preconnect_frames=3)
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    assert [op for op, _ in conn.frames] == [1] + [2] * 7 + [8]
    assert conn.texts() == [META]
    assert np.array_equal(decode(conn.binaries()), ramp_conversation().caller[480:])
    assert (s.events.dropped, s.events.sent_tags) == (3, list(range(3, 10)))


def test_current_queue_holds_at_most_1024_messages():
    conv = ramp_conversation(21.0)

    async def main():
        async with RawPeerServer(delay_101=0.3) as server:
            s = stream(server.url, "mono", conv, preconnect_frames=1030)
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    kinds = [op for op, _ in conn.frames]
    assert kinds[:1025] == [2] * 1024 + [1]
    assert s.events.dropped == 6 and s.events.sent_tags[1023:1025] == [1023, 1030]


@pytest.mark.parametrize("client", ["current", "ixwebsocket"])
def test_a_pause_sends_nothing(client):
    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, client=client, pauses=[(0.06, 0.12)])
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    expected = np.concatenate([ramp_conversation().caller[:480], ramp_conversation().caller[960:]])
    assert np.array_equal(decode(conn.binaries()), expected)
    assert s.paused_frames == 3 and s.events.sent_tags == [0, 1, 2, 6, 7, 8, 9]


@pytest.mark.parametrize("client", ["current", "ixwebsocket"])
def test_stop_sends_the_final_text_then_close_1000(client):
    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, client=client, stop_text='{"event": "end"}')
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    assert conn.frames[-2] == (1, b'{"event": "end"}')
    assert conn.frames[-1] == (8, struct.pack("!H", 1000) + b"Normal closure")
    assert s.events.closed_by == [(1000, "Normal closure", "answer")]


def test_empty_metadata_sends_no_text():
    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, metadata="")
            await s.run()
            return server.connections[0]

    assert run(main()).texts() == []


# --- heartbeats ----------------------------------------------------------------------------

def test_ixwebsocket_heartbeat_and_1011_when_no_pong_returns():
    async def main():
        async with RawPeerServer(answer_pings=False) as server:
            s = stream(server.url, "mono", ramp_conversation(20.0), client="ixwebsocket",
                       heartbeat=1, realtime=True, reconnect=False)
            task = asyncio.ensure_future(s.run())
            await server.wait_connections(1)
            await asyncio.wait_for(server.connections[0].closed.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return server.connections[0], s

    conn, s = run(main())
    control = [(op, p) for op, p in conn.frames if op in (8, 9)]
    assert control == [(9, b"ixwebsocket::heartbeat::1s::0"),
                       (8, struct.pack("!H", 1011) + b"Ping timeout")]
    assert conn.frames[0] == (1, META.encode())
    assert s.events.closes_sent[0] == (1011, "Ping timeout")


def test_ixwebsocket_heartbeat_counts_up_while_pongs_return():
    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, "mono", ramp_conversation(2.3), client="ixwebsocket",
                       heartbeat=1, realtime=True)
            await s.run()
            return server.connections[0]

    conn = run(main())
    pings = [p for op, p in conn.frames if op == 9]
    assert pings == [b"ixwebsocket::heartbeat::1s::0", b"ixwebsocket::heartbeat::1s::1",
                     b"ixwebsocket::heartbeat::1s::2"]
    assert conn.frames[-1] == (8, struct.pack("!H", 1000) + b"Normal closure")


def test_current_pings_with_payload_ping_and_ignores_missing_pongs():
    async def main():
        async with RawPeerServer(answer_pings=False) as server:
            s = stream(server.url, "mono", ramp_conversation(2.3), heartbeat=1, realtime=True)
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    assert [p for op, p in conn.frames if op == 9] == [b"ping", b"ping"]
    assert len(conn.binaries()) == 115 and s.events.closes_sent == [(1000, "Normal closure")]


def test_both_answer_a_servers_ping_with_its_payload():
    for client in ("current", "ixwebsocket"):
        pongs = []

        def on_frame(conn, opcode, payload, writer, pongs=pongs):
            if opcode == 1:
                writer.write(server_frame(9, b"are-you-there"))
            if opcode == 10:
                pongs.append(payload)
            return False

        async def main(client=client, on_frame=on_frame):
            async with RawPeerServer(on_frame=on_frame) as server:
                s = stream(server.url, "mono", ramp_conversation(0.5), client=client,
                           realtime=True)
                await s.run()

        run(main())
        assert pongs == [b"are-you-there"], client


# --- a server that closes ------------------------------------------------------------------

def close_after_metadata(code=4000, reason=b"bye", times=1):
    count = itertools.count()

    def on_frame(conn, opcode, payload, writer):
        if opcode == 1 and next(count) < times:
            conn.server_closed = True
            writer.write(server_frame(8, struct.pack("!H", code) + reason))
            return True
        return False
    return on_frame


def test_ixwebsocket_reconnects_at_once_and_sends_the_metadata_again():
    async def main():
        async with RawPeerServer(on_frame=close_after_metadata()) as server:
            s = stream(server.url, "mono", ramp_conversation(1.0), client="ixwebsocket",
                       realtime=True)
            await s.run()
            return server.connections, s

    conns, s = run(main())
    assert len(conns) == 2
    first, second = conns
    assert first.frames[0] == (1, META.encode())
    assert (8, struct.pack("!H", 4000) + b"bye") in first.frames  # the echo
    assert second.frames[0] == (1, META.encode())
    assert second.frames[-1] == (8, struct.pack("!H", 1000) + b"Normal closure")
    assert s.events.connections == 2 and s.events.closed_by[0] == (4000, "bye", "server")
    # Only a few frames fell in the gap: the reconnection is immediate.
    assert len(s.events.sent_tags) + s.events.dropped == 50 and s.events.dropped <= 5


def test_ixwebsocket_without_reconnection_stays_closed():
    async def main():
        async with RawPeerServer(on_frame=close_after_metadata()) as server:
            s = stream(server.url, "mono", ramp_conversation(0.5), client="ixwebsocket",
                       realtime=True, reconnect=False)
            await s.run()
            return server.connections, s

    conns, s = run(main())
    assert len(conns) == 1 and s.events.connections == 1


def test_current_never_reconnects():
    async def main():
        async with RawPeerServer(on_frame=close_after_metadata()) as server:
            s = stream(server.url, "mono", ramp_conversation(0.5), realtime=True)
            await s.run()
            return server.connections, s

    conns, s = run(main())
    assert len(conns) == 1
    assert conns[0].frames[1] == (8, struct.pack("!H", 4000) + b"bye")
    assert s.events.closed_by == [(4000, "bye", "server")]
    assert s.events.connections == 1 and s.events.frames == 0


def test_scripted_conversation_through_the_emulation():
    conv = scripted([("caller", 0.0, 0.3), ("callee", 0.35, 0.6)], RATE, 0.6, seed=3)

    async def main():
        async with RawPeerServer() as server:
            s = stream(server.url, "stereo", conv)
            await s.run()
            return server.connections[0]

    got = decode(run(main()).binaries())
    assert np.array_equal(got[0::2], conv.caller) and np.array_equal(got[1::2], conv.callee)


def test_current_gives_up_when_the_101_takes_over_a_second():
    async def main():
        async with RawPeerServer(delay_101=1.5) as server:
            s = stream(server.url, preconnect_frames=2)
            await s.run()
            return server.connections[0], s

    conn, s = run(main())
    assert conn.frames == [] and s.events.frames == 0 and s.events.connections == 0
    assert s.events.errors == ["Timeout (no connection in 1 s)"]
