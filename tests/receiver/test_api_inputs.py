"""What the Python API takes: a PCMO as text is checked, a memoryview is read by its
format, a rate is taken the same way everywhere, and a reply to a peer that stops
reading times out with a clear error."""
import array
import asyncio
import json
import socket

import numpy as np
import pytest
from stream_testing import mask, masked_frame_header, run
from websockets.asyncio.client import connect

from piopiy_fast.audio import Resampler, resample
from piopiy_fast.errors import PiopiyValidationError, ReplyTimeout
from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.sdk.actions import ERR_EMPTY_PCMO
from piopiy_fast.stream.replies import ReplyBatcher, as_mono_int16

RATES_TEXT = "8000, 12000, 16000, 24000, 32000, 48000 Hz"


# -- a PCMO as text -------------------------------------------------------------------

def test_send_pcmo_checks_text_and_sends_the_actions(transport):
    action = [{"action": "bridge", "to": "919999999999", "from": "918888888888"}]
    outcome = {}

    async def on_call(call):
        errors = []
        for bad in ("not json", '{"action": "hangup"}', "[]", '[{"to": 1}]', "[1]"):
            try:
                await call.send_pcmo(bad)
            except PiopiyValidationError as exc:
                errors.append(str(exc))
        outcome["errors"] = errors
        await call.send_pcmo(json.dumps(action, indent=2))

    async def main_with_peer():
        async with StreamServer("127.0.0.1", 0, transport=transport,
                                on_call=on_call) as server:
            async with connect(f"{server.url}/?call_id=pcmo") as ws:
                await ws.send(b"\x00\x01" * 160)
                return await asyncio.wait_for(ws.recv(), 5)

    received = run(main_with_peer(), transport=transport)
    assert json.loads(received) == action  # the first text the peer got: no bad one
    assert outcome["errors"] == [
        "pcmo is a str but not valid JSON",
        "pcmo must be a list of actions or its JSON string, got dict",
        ERR_EMPTY_PCMO,
        "pcmo[0] must be an action dict with an 'action' key",
        "pcmo[0] must be an action dict with an 'action' key",
    ]


# -- a memoryview by its format --------------------------------------------------------

def test_a_memoryview_is_read_by_its_format():
    rng = np.random.default_rng(5)
    floats = (rng.standard_normal(400) * 0.2).astype(np.float32)
    ints = (floats * 20000).astype(np.int16)
    expected = as_mono_int16(floats)
    assert np.array_equal(as_mono_int16(memoryview(floats)), expected)
    assert np.array_equal(as_mono_int16(memoryview(floats.astype(np.float64))), expected)
    assert np.array_equal(as_mono_int16(memoryview(ints)), ints)
    assert np.array_equal(as_mono_int16(memoryview(array.array("h", ints.tolist()))), ints)
    assert np.array_equal(as_mono_int16(memoryview(ints.astype("<i2").tobytes())), ints)
    assert np.array_equal(as_mono_int16(memoryview(bytearray(ints.tobytes()))), ints)
    with pytest.raises(PiopiyValidationError, match="memoryview of format 'i' is not audio"):
        as_mono_int16(memoryview(ints.astype(np.int32)))
    with pytest.raises(PiopiyValidationError, match="memoryview of format 'e'"):
        as_mono_int16(memoryview(np.zeros(4, np.float16)))
    with pytest.raises(PiopiyValidationError, match="whole 2-byte samples"):
        as_mono_int16(memoryview(b"\x00\x01\x02"))
    # A big-endian int16 array is samples too, not its bytes.
    assert np.array_equal(as_mono_int16(ints.astype(">i2")), ints)


# -- rates, the same way everywhere ------------------------------------------------------

@pytest.mark.parametrize("rate", [16000, np.int64(16000), np.int32(16000), 16000.0,
                                  np.float32(16000)])
def test_a_rate_is_an_int_a_numpy_integer_or_a_whole_float_everywhere(rate):
    server = StreamServer(target_rate=rate, source_rate=rate)
    assert type(server.target_rate) is int and server.target_rate == 16000
    resampler = Resampler(8000, rate)
    assert resampler.out_rate == 16000 and type(resampler.out_rate) is int
    x = (np.random.default_rng(6).standard_normal(800) * 3000).astype(np.int16)
    assert np.array_equal(resample(x, 8000, rate), resample(x, 8000, 16000))
    other = ReplyBatcher(rate)
    assert other.call_rate == 16000 and type(other.call_rate) is int
    first, second = ReplyBatcher(8000), ReplyBatcher(8000)
    assert first.add(x, 16000) + first.flush() == second.add(x, rate) + second.flush()


@pytest.mark.parametrize("rate", [16000.5, "16000", True, np.bool_(True), 11025, None,
                                  float("nan")])
def test_any_other_rate_is_refused_with_the_same_message(rate):
    messages = []
    for name, attempt in (
        ("target_rate", lambda: StreamServer(target_rate=rate)),
        ("source_rate", lambda: StreamServer(source_rate=rate)),
        ("out_rate", lambda: Resampler(8000, rate)),
        ("in_rate", lambda: Resampler(rate, 8000)),
        ("rate", lambda: ReplyBatcher(8000).add(np.zeros(4, np.int16), rate)),
        ("call_rate", lambda: ReplyBatcher(rate)),
    ):
        if rate is None and name == "rate":
            continue  # None is the call's rate there
        with pytest.raises(PiopiyValidationError) as caught:
            attempt()
        messages.append(str(caught.value))
        assert str(caught.value) == f"{name} must be one of {RATES_TEXT}, not {rate!r}"
    assert messages


# -- a reply to a peer that stops reading --------------------------------------------------

HANDSHAKE = (b"GET /s?call_id=deaf&sample_rate=16000 HTTP/1.1\r\nHost: x\r\n"
             b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_send_audio_times_out_when_the_peer_stops_reading(transport):
    outcome = {}
    reply = (np.random.default_rng(7).standard_normal(16000 * 240) * 3000).astype(np.int16)

    async def on_call(call):
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await call.send_audio(reply, timeout=0.5)
        except ReplyTimeout as exc:
            outcome["error"] = exc
        outcome["seconds"] = loop.time() - start
        outcome["pending"] = call._replies.pending
        outcome["ended"] = call.ended
        with pytest.raises(ValueError, match="timeout must be positive seconds or None"):
            await call.send_audio(reply[:10], timeout=0)

    async def main():
        async with StreamServer("127.0.0.1", 0, transport=transport, on_call=on_call,
                                ping_interval=None) as server:
            loop = asyncio.get_running_loop()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", server.port))
            await loop.sock_sendall(sock, HANDSHAKE)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += await loop.sock_recv(sock, 1)
            frame = b"\x00\x01" * 320
            await loop.sock_sendall(sock, masked_frame_header(0x2, len(frame)) + mask(frame))
            while "ended" not in outcome:  # and never read again
                await asyncio.sleep(0.05)
            sock.close()

    run(main(), timeout=60, transport=transport)
    assert isinstance(outcome["error"], TimeoutError)
    assert "the peer read no reply audio for 0.5 s" in str(outcome["error"])
    assert "call deaf" in str(outcome["error"])
    assert outcome["pending"] == 0  # nothing left half-sent to go out later
    assert outcome["ended"] is False
    assert outcome["seconds"] < 30
