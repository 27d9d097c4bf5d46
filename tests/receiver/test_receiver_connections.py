"""Connection handling: who gets in, what the app can send back, failures that stay
inside one call, and shutdown."""

import asyncio
import base64
import json
import logging
import socket
import ssl
import struct
import sys

import numpy as np
import pytest
from certificates import self_signed, trusting
from stream_testing import Collector, mask, masked_frame_header, run, server_frames
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from piopiy_fast import SignedURL
from piopiy_fast._core.resample import Resampler, resample
from piopiy_fast.errors import CallEnded, PiopiyError, PiopiyValidationError
from piopiy_fast.receiver.server import StreamServer, ring_capacity
from piopiy_fast.simulator.simulator import simulate

TOKEN = "tok-3f9a0c"


async def status_of(url, **kwargs):
    """The HTTP status of a handshake: 101 when accepted, else the refusal's."""
    try:
        async with connect(url, **kwargs):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def streamed(x, in_rate, out_rate):
    """What the call's replies carry: process + flush of one Resampler, as its
    ReplyBatcher streams them."""
    r = Resampler(in_rate, out_rate)
    return np.concatenate([r.process(x), r.flush()])


def test_token_auth(transport):
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth=TOKEN) as server:
            return [
                await status_of(server.url),
                await status_of(f"{server.url}/?token=wrong"),
                await status_of(server.url, additional_headers={"Authorization": "Bearer x"}),
                await status_of(f"{server.url}/?token={TOKEN}"),
                await status_of(server.url,
                                additional_headers={"Authorization": f"Bearer {TOKEN}"}),
            ], server.stats.rejected_calls

    assert run(main(), transport=transport) == ([401, 403, 403, 101, 101], 3)


def test_signed_url_auth(transport):
    signer = SignedURL("k" * 32)
    clock = [1000.0]
    expiring = SignedURL("k" * 32, clock=lambda: clock[0])

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth=signer) as server:
            good = signer.sign(f"{server.url}/s", {"listen_mode": "both"}, 60)
            tampered = good.replace("listen_mode=both", "listen_mode=caller")
            expired = expiring.sign(f"{server.url}/s", {}, 1)  # expired long ago
            return [await status_of(f"{server.url}/s?listen_mode=both"),
                    await status_of(tampered), await status_of(expired),
                    await status_of(good)]

    assert run(main(), transport=transport) == [401, 403, 403, 101]


def test_callable_auth(transport):
    seen = []

    def sync_hook(handshake):
        seen.append((handshake.route, handshake.headers.get("X-Key")))
        return handshake.headers.get("X-Key") == "yes"

    async def async_hook(handshake):
        return {"listen_mode": "callee", "voice_quality": "16000", "call_id": "from-hook"}

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth=sync_hook) as server:
            refused = await status_of(f"{server.url}/a")
            accepted = await status_of(f"{server.url}/b", additional_headers={"X-Key": "yes"})
        collector = Collector()
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                auth=async_hook, on_call=collector) as server:
            await simulate(server.url, listen_mode="callee", sample_rate=16000, seconds=0.1,
                           start_event=False)
            await collector.wait_for(1)
        return refused, accepted, collector

    refused, accepted, collector = run(main(), transport=transport)
    assert (refused, accepted) == (403, 101)
    assert seen == [("/a", None), ("/b", "yes")]
    call = collector.done["from-hook"]
    assert (call.listen_mode, call.source_rate) == ("callee", 16000)


def test_picows_refuses_an_auth_hook_that_waits():
    """picows admits inside the socket read: a hook that awaits I/O cannot be waited
    for, and the call is refused rather than let in unchecked."""
    pytest.importorskip("picows")

    async def slow_hook(handshake):
        await asyncio.sleep(0.01)
        return True

    async def main():
        async with StreamServer("127.0.0.1", 0, transport="picows", auth=slow_hook) as server:
            return await status_of(server.url), server.stats.rejected_calls

    assert run(main(), transport="picows") == (500, 1)


def test_secrets_never_logged(caplog, transport):
    caplog.set_level(1)  # picows traces raw request bytes below DEBUG

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth=TOKEN) as server:
            await status_of(f"{server.url}/x?token=not-{TOKEN}")
            await status_of(f"{server.url}/x?token={TOKEN}")
            await status_of(f"{server.url}/x",
                            additional_headers={"Authorization": f"Bearer {TOKEN}"})

    run(main(), transport=transport)
    # The server's records only: the test's own client logs what it sends.
    logged = "\n".join(record.getMessage() for record in caplog.records
                       if record.name.startswith("piopiy_fast"))
    assert "refused: wrong token" in logged
    if transport == "websockets":  # picows logs no request lines
        assert "< GET /x?<redacted> HTTP/1.1" in logged
        assert "< Authorization: <redacted>" in logged
    assert TOKEN not in logged


def test_max_calls(transport):
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, max_calls=1) as server:
            async with connect(server.url):
                while not server.active_calls:
                    await asyncio.sleep(0.005)
                busy = await status_of(server.url)
            while server.active_calls:
                await asyncio.sleep(0.005)
            free = await status_of(server.url)
            return busy, free

    assert run(main(), transport=transport) == (503, 101)


def test_controls_and_send_audio(transport):
    tone = np.round(8000 * np.sin(np.arange(400) / 7)).astype(np.int16)
    sent = {}

    async def on_call(call):
        await call.wait_audio()
        await call.pause()
        await call.resume()
        sent["same"] = await call.send_audio(tone, flush=True)
        sent["resampled"] = await call.send_audio(tone, rate=8000, flush=True)
        sent["float"] = await call.send_audio(tone.astype(np.float32) / 32768, rate=16000,
                                              flush=True)
        sent["bytes"] = await call.send_audio(tone.tobytes(), flush=True)
        await call.interrupt()
        await call.stop()
        await call.close()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            report = await simulate(server.url, sample_rate=16000, seconds=1.0, realtime=True)
        return report.calls[0]

    call = run(main(), transport=transport)
    messages = [json.loads(m) for m in call.received]
    assert messages[0] == {"action": "pause"}
    assert messages[1] == {"action": "resume"}
    assert messages[6] == {"action": "break"}
    assert messages[7] == {"action": "stop"}
    audio = [m for m in messages if m.get("type") == "streamAudio"]
    assert [m["data"]["sampleRate"] for m in audio] == [16000] * 4
    assert {m["data"]["audioDataType"] for m in audio} == {"raw"}
    payloads = [np.frombuffer(base64.b64decode(m["data"]["audioData"]), "<i2") for m in audio]
    assert np.array_equal(payloads[0], tone)
    assert np.array_equal(payloads[1], streamed(tone, 8000, 16000))
    assert np.array_equal(payloads[2], tone)  # float -> int16 is exact for these values
    assert np.array_equal(payloads[3], tone)
    assert sent == {"same": 400, "resampled": 400, "float": 400, "bytes": 400}
    # The server closed the call before its audio was all sent: a failed call, saying so.
    assert call.seconds < 1.0
    assert call.error == f"closed by the receiver (1000) after {call.seconds:.2f} of 1.00 s"


def test_send_audio_validation(transport):
    errors = []

    async def on_call(call):
        for pcm in (np.zeros((2, 10), np.int16), np.zeros(4, np.int32), b"\x00"):
            try:
                await call.send_audio(pcm)
            except PiopiyValidationError as exc:
                errors.append(str(exc))

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            await simulate(server.url, seconds=0.1)

    run(main(), transport=transport)
    assert errors == ["audio must be mono (one dimension), not (2, 10)",
                      "audio must be int16 or float samples, not int32",
                      "L16 audio must hold whole 2-byte samples"]


def test_oversize_message_ends_only_that_call(transport):
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, max_frame_bytes=2048,
                                on_call=collector) as server:
            async with connect(server.url) as ws:
                await ws.send('{"call_id": "big"}')
                await ws.send(b"\x00" * 640)
                await ws.send(b"\x00" * 4096)
                await ws.wait_closed()
            report = await simulate(server.url, seconds=0.2)
            await collector.wait_for(2)
            return report.calls[0], server.stats

    sent, stats = run(main(), transport=transport)
    big = collector.done["big"]
    assert big.close_info.code == 1009
    assert big.stats.frames == 1
    assert collector.done[sent.call_id].close_info.code == 1000
    assert (stats.total_calls, stats.failed_calls) == (2, 1)


@pytest.mark.parametrize("opcode", [0x1, 0x2], ids=["text", "binary"])
@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10], ids=["rsv1", "rsv2", "rsv3"])
def test_reserved_bits_fail_the_connection_1002(transport, rsv, opcode):
    """No extension is negotiated, so a frame with a reserved bit set is a protocol
    error: the call is closed 1002 and counted as failed; nothing from that frame on is
    delivered."""
    collector = Collector()
    payload = b'{"event": "x"}' if opcode == 0x1 else b"\x00\x01" * 160
    frame = masked_frame_header(0x2, 320) + mask(b"\x00\x01" * 160)
    bad = masked_frame_header(opcode, len(payload))
    bad = bytes([bad[0] | rsv]) + bad[1:] + mask(payload)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=collector) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /s?call_id=rsv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n" + frame)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
            while not collector.calls or collector.calls[0].sink.first_frame is None:
                await asyncio.sleep(0.005)
            writer.write(bad + frame)
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await collector.wait_for(1)
            return server_frames(answer), server.stats

    frames, stats = run(main(), transport=transport)
    assert [(op, payload[:2]) for op, payload in frames] == [(0x8, struct.pack("!H", 1002))]
    call = collector.done["rsv"]
    assert (call.close_info.code, call.stats.frames, call.stats.events) == (1002, 1, 0)
    assert stats.failed_calls == 1


def test_app_failures_are_contained(transport):
    calls = []

    def on_call(call):
        calls.append(call)
        call.caller.on_chunk(lambda chunk: 1 / 0)
        call.on_event(lambda event: [][1])
        if len(calls) == 1:
            raise RuntimeError("app bug")

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            report = await simulate(server.url, calls=2, seconds=0.2)
            while server.active_calls:
                await asyncio.sleep(0.005)
            return report, server.stats

    report, stats = run(main(), transport=transport)
    assert not report.failed
    assert stats.app_errors == 1
    assert [c.stats.frames for c in calls] == [10, 10]
    # Each call: 10 frames, the resampler tail at the end, and 1 event.
    assert [c.stats.callback_errors for c in calls] == [12, 12]
    assert [c.close_info.code for c in calls] == [1000, 1000]


def test_calls_iterator_and_shutdown(transport):
    got = []

    async def main():
        server = StreamServer("127.0.0.1", 0, transport=transport, ring_seconds=0.5)
        await server.start()

        async def consume():
            async for call in server.calls():
                got.append(call)

        consumer = asyncio.ensure_future(consume())
        sim = asyncio.ensure_future(simulate(server.url, calls=2, seconds=5.0, realtime=True))
        while len(got) < 2 or not all(c.audio_started for c in got):
            await asyncio.sleep(0.005)
        await server.close()
        await consumer  # the iterator ends when the server closes
        return await sim

    report = run(main(), transport=transport)
    assert [c.close_info.code for c in got] == [1001, 1001]
    assert all(c.ended and c.caller.ended is False for c in got)  # unread audio stays
    assert all(0 < c.seconds < 5.0 for c in report.calls)
    assert all(c.error.startswith("closed by the receiver (1001)") for c in report.calls)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="SO_REUSEPORT spreads connections over processes on Linux only")
def test_reuse_port_shares_one_port_between_servers(transport):
    # Two servers on one port, as two worker processes would be: the kernel hands each
    # new connection to one of them. A server without reuse_port cannot join.
    first, second = Collector(), Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, reuse_port=True,
                                on_call=first) as a:
            async with StreamServer("127.0.0.1", a.port, transport=transport,
                                    reuse_port=True, on_call=second) as b:
                with pytest.raises(OSError):
                    await StreamServer("127.0.0.1", a.port, transport=transport).start()
                report = await simulate(a.url, calls=24, seconds=0.2, listen_mode="both")
                await first.wait_for(len(first.calls))
                await second.wait_for(len(second.calls))
                return report, a.stats.total_calls, b.stats.total_calls

    report, on_a, on_b = run(main(), transport=transport)
    assert report.failed == [] and on_a + on_b == 24
    assert on_a > 0 and on_b > 0  # a hash over 24 connections: all on one has odds 2**-23
    for call in report.calls:
        got = {**first.audio, **second.audio}[call.call_id]
        for name in ("caller", "callee"):
            assert np.array_equal(got[name], resample(call.sent(name), 8000, 16000))


def test_wss_with_a_private_certificate(tmp_path, transport):
    cert, key = self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    collector = Collector()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, ssl=server_tls,
                                on_call=collector) as server:
            assert server.url.startswith("wss://127.0.0.1:")
            untrusted = await simulate(server.url, seconds=0.2)
            report = await simulate(server.url, calls=2, listen_mode="both", seconds=0.4,
                                    ssl=trusting(cert))
            await collector.wait_for(2)
            return untrusted, report

    untrusted, report = run(main(), transport=transport)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.calls[0].error
    assert report.failed == []
    for call in report.calls:
        for name in ("caller", "callee"):
            assert np.array_equal(collector.audio[call.call_id][name],
                                  resample(call.sent(name), 8000, 16000))


def test_validation():
    with pytest.raises(PiopiyValidationError, match="target_rate must be one of"):
        StreamServer(target_rate=44100)
    with pytest.raises(PiopiyValidationError, match="listen_mode must be one of"):
        StreamServer(listen_mode="all")
    with pytest.raises(TypeError):
        StreamServer(auth=42)
    with pytest.raises(PiopiyValidationError, match="transport must be one of"):
        StreamServer(transport="aiohttp")
    assert ring_capacity(2.0, 16000) == 32768
    assert ring_capacity(0.001, 8000) == 1024


def test_sending_on_an_ended_call_raises_call_ended(transport):
    """Playback racing a hang-up: every send after the peer closed raises CallEnded (a
    PiopiyError), never a transport library's exception; close() is then a no-op."""
    raised = []

    async def on_call(call):
        await call.wait_closed()
        for send in (lambda: call.send_audio(np.zeros(160, np.int16)), call.pause,
                     call.resume, call.stop, call.interrupt):
            try:
                await send()
            except PiopiyError as exc:
                raised.append((type(exc).__name__, str(exc)))
        await call.close()
        raised.append("closed")

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            await simulate(server.url, seconds=0.1, call_id_prefix="gone")

    run(main(), transport=transport)
    assert raised == [("CallEnded", "call gone-001 has ended")] * 5 + ["closed"]
    assert issubclass(CallEnded, PiopiyError)


async def raw_handshake(port: int, headers: bytes) -> bytes:
    """Send an opening handshake as raw bytes; return the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n" + headers + b"\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    return answer


@pytest.mark.parametrize("headers", [
    b"Authorization: Bearer a\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n",
    "Authorization: Bearer t\u00f6k\r\n".encode("latin-1"),
], ids=["two-headers", "not-ascii"])
def test_malformed_authorization_is_400_never_500(transport, headers):
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, auth=TOKEN) as server:
            answer = await raw_handshake(server.port, headers)
            return answer, server.stats.refused_by_reason

    answer, refused = run(main(), transport=transport)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"Error" not in answer.split(b"\r\n\r\n", 1)[1]  # no exception text in the body
    assert refused == {"malformed": 1}


@pytest.mark.parametrize("size", [20_000, 200_000])
def test_an_oversize_request_head_is_answered_431(transport, size):
    """A request head past the server's limit (16 KiB on picows, 8 KiB a line on
    websockets) is answered 431, also while more of it is still on the way, and the
    server goes on serving."""
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(OPEN_S[:-2] + b"X-Pad: " + b"a" * size + b"\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            report = await simulate(server.url, seconds=0.1)
            return answer, report

    answer, report = run(main(), transport=transport)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert report.failed == []


def test_a_long_request_head_under_the_limit_gets_in(transport):
    """15 KB of headers, 1 KB a line: under both servers' limits, so admitted (on picows,
    handed on from the doorman in several pieces of picows' small read buffer)."""
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(15))

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(OPEN_S[:-2] + headers + b"\r\n")
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.close()
            return answer

    assert run(main(), transport=transport).startswith(b"HTTP/1.1 101 ")


def test_a_request_head_in_pieces_gets_in(transport):
    """The end of the head split across reads (here a byte per write) is still found."""
    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                       socket.TCP_NODELAY, 1)
            for i in range(len(OPEN_S)):
                writer.write(OPEN_S[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0.001)
            answer = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            return answer

    assert run(main(), transport=transport).startswith(b"HTTP/1.1 101 ")


def test_picows_serves_without_its_doorman(monkeypatch, caplog):
    """With a picows whose protocol takes other arguments, the server is picows' own:
    it serves, says that an oversize head gets picows' answer, and gives that."""
    pytest.importorskip("picows")
    from piopiy_fast.receiver.transports import picows_server

    def another_release(**settings):
        raise TypeError("unexpected keyword argument 'logger'")

    monkeypatch.setattr(picows_server, "WSProtocol", another_release)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport="picows") as server:
            report = await simulate(server.url, seconds=0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(OPEN_S[:-2] + b"X-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
            try:
                answer = await asyncio.wait_for(reader.read(), 10)
            except ConnectionResetError:
                answer = b""
            writer.close()
            return report, answer

    report, answer = run(main(), transport="picows")
    assert report.failed == []
    assert answer == b""  # picows drops the connection unanswered
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "an oversize request head gets picows' answer" in warning.getMessage()


@pytest.mark.parametrize("call_rate, reply_rate", [(8000, 8000), (12000, 16000), (16000, 16000)])
def test_replies_go_out_in_batches_the_platform_plays(transport, call_rate, reply_rate):
    """1 s of reply audio at 24 kHz in 20 ms pieces: 300 ms messages at 8000 or 16000 Hz
    (never 12000), then the rest on flush; an interrupt drops what waits; a PCMO goes
    out as one text message."""
    speech = np.round(9000 * np.sin(np.arange(24000) / 9)).astype(np.int16)
    batch = round(0.3 * reply_rate)

    async def on_call(call):
        await call.wait_audio()
        for i in range(0, speech.size, 480):
            await call.send_audio(speech[i:i + 480], rate=24000)
        await call.flush()
        await call.send_audio(speech[:4000], rate=24000)  # under a batch: waits...
        await call.interrupt()  # ...and is dropped
        await call.send_pcmo([{"action": "hangup"}])
        await call.close()

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call) as server:
            report = await simulate(server.url, sample_rate=call_rate, seconds=2.0,
                                    realtime=True)
        return report.calls[0]

    call = run(main(), transport=transport)
    messages = [json.loads(m) for m in call.received]
    audio = [m for m in messages if isinstance(m, dict) and m.get("type") == "streamAudio"]
    assert {m["data"]["sampleRate"] for m in audio} == {reply_rate}
    payloads = [np.frombuffer(base64.b64decode(m["data"]["audioData"]), "<i2") for m in audio]
    expected = streamed(speech, 24000, reply_rate)
    assert [p.size for p in payloads] == [batch] * 3 + [expected.size - 3 * batch]
    assert np.array_equal(np.concatenate(payloads), expected)
    assert messages[len(audio):] == [{"action": "break"}, [{"action": "hangup"}]]


def test_the_default_transport_is_picows_unless_the_auth_hook_awaits():
    from piopiy_fast.receiver.transports.picows import PicowsTransport
    from piopiy_fast.receiver.transports.websockets import WebsocketsTransport

    async def async_hook(handshake):
        return True

    class AsyncHook:
        async def __call__(self, handshake):
            return True

    assert isinstance(StreamServer()._transport, PicowsTransport)
    assert isinstance(StreamServer(auth=lambda h: True)._transport, PicowsTransport)
    assert isinstance(StreamServer(auth=async_hook)._transport, WebsocketsTransport)
    assert isinstance(StreamServer(auth=AsyncHook())._transport, WebsocketsTransport)
    assert isinstance(StreamServer(transport="websockets")._transport, WebsocketsTransport)


OPEN_S = (b"GET /s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
PEER_FAULTS = {
    # what the peer sends after the opening handshake, and what picows says of it
    "bad opcode": (masked_frame_header(0x3, 2) + mask(b"ab"), "invalid opcode=0x3"),
    "unmasked": (b"\x82\x02ab", "un-masked frame"),
    "long ping": (masked_frame_header(0x9, 126) + mask(b"p" * 126), "payload size > 125"),
    "bad handshake": (None, None),
    "reset": (None, None),
}


@pytest.mark.parametrize("fault", list(PEER_FAULTS))
def test_a_peers_faults_are_not_the_servers_errors(transport, caplog, fault):
    """Malformed frames, a bad opening request, a reset: the peer's doing, logged at INFO
    at most (picows says why at INFO), never as a warning or an error."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="piopiy_fast.picows")
    frames, reason = PEER_FAULTS[fault]

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            if fault == "bad handshake":
                writer.write(b"HELLO / HTTP/1.1\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                assert answer.split(b" ", 2)[1] in (b"400", b"405"), answer
            else:
                writer.write(OPEN_S)
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
                while not server.active_calls:
                    await asyncio.sleep(0.005)
                if frames is not None:
                    writer.write(frames)
                    await asyncio.wait_for(reader.read(), 10)
                    writer.close()
                else:
                    writer.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
            while server.active_calls:
                await asyncio.sleep(0.005)

    run(main(), transport=transport)
    loud = [(r.name, r.levelname, r.getMessage()) for r in caplog.records
            if r.levelno >= logging.WARNING]
    assert loud == []
    if reason is not None and transport == "picows":
        [said] = [r for r in caplog.records if r.name.startswith("piopiy_fast.picows")
                  and reason in r.getMessage()]
        assert said.levelno == logging.INFO


def test_a_fault_in_the_server_is_still_an_error_on_picows(caplog):
    """What is not the peer's doing keeps picows' ERROR: here, the link failing as the
    connection opens."""
    pytest.importorskip("picows")
    from piopiy_fast.receiver.transports.picows import PicowsLink, PicowsTransport

    class BrokenLink(PicowsLink):
        __slots__ = ()

        def connected(self, transport):
            raise RuntimeError("a bug in the link")

    picows = PicowsTransport()
    picows.link_class = BrokenLink

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=picows) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(OPEN_S)
            await asyncio.wait_for(reader.read(), 10)
            writer.close()

    run(main(), transport="picows")
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.name.startswith("piopiy_fast.picows")
    assert "a bug in the link" in error.getMessage()


def test_auto_says_which_transport_it_took_and_why(caplog, monkeypatch):
    """One line per server: picows, or websockets and the reason."""
    pytest.importorskip("picows")
    caplog.set_level(logging.INFO, logger="piopiy_fast.transport")

    async def async_hook(handshake):
        return True

    StreamServer()
    StreamServer(auth=async_hook)
    StreamServer(transport="websockets")  # not auto: nothing to say
    monkeypatch.setitem(sys.modules, "picows", None)  # as if not installed
    StreamServer()
    assert [r.getMessage() for r in caplog.records] == [
        "transport auto: picows",
        "transport auto: websockets, as the auth hook is a coroutine function, which only "
        "websockets can await",
        "transport auto: websockets, as picows cannot be imported (import of picows halted; "
        "None in sys.modules)",
    ]
