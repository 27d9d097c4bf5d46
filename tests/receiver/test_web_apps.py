"""The receiver inside a web application: Starlette under uvicorn (the ASGI adapter) and
aiohttp's own server (the aiohttp adapter), each serving on 127.0.0.1 with the
``StreamServer`` started and closed by the application's lifespan.

The same calls as on the receiver's own transports: FreeSWITCH mod_audio_stream's
client (emulated) delivered sample for sample, a refused handshake answered with its
HTTP status, a call of text alone, and a call the receiver closes. The ASGI adapter's
protocol is also driven message by message, without sockets.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from stream_testing import offline, run
from test_real_peer import Calls, expected, url_for
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.conversation import default_script, scripted
from piopiy_fast.simulator.mod_audio_stream import AudioStream, StreamStart

HOSTS = ("uvicorn", "aiohttp")


@pytest.fixture(params=HOSTS)
def host(request):
    """The web application's server the receiver is mounted in."""
    if request.param == "uvicorn":
        pytest.importorskip("uvicorn", reason="the ASGI tests need uvicorn (the test extra)")
        pytest.importorskip("starlette",
                            reason="the ASGI tests need starlette (the asgi extra)")
    else:
        pytest.importorskip("aiohttp", reason="needs aiohttp (the aiohttp extra)")
    return request.param


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving(host: str, **options: Any) -> AsyncIterator[tuple[StreamServer, str]]:
    """A web application with the receiver at ``/stream``, on 127.0.0.1: the server,
    and the ``ws://`` base URL to reach it."""
    sock = bound_socket()
    base = f"ws://127.0.0.1:{sock.getsockname()[1]}"
    if host == "uvicorn":
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import WebSocketRoute

        from piopiy_fast.receiver.transports.asgi import AsgiTransport

        receiver = AsgiTransport()
        server = StreamServer(transport=receiver, **options)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            async with server:
                yield

        app = Starlette(routes=[WebSocketRoute("/stream", receiver.app)], lifespan=lifespan)
        web = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning"))
        task = asyncio.ensure_future(web.serve(sockets=[sock]))
        while not web.started:
            assert not task.done(), task
            await asyncio.sleep(0.01)
        try:
            yield server, base
        finally:
            web.should_exit = True
            await task
    else:
        from aiohttp import web as aioweb

        from piopiy_fast.receiver.transports.aiohttp import AiohttpTransport

        receiver_aio = AiohttpTransport()
        server = StreamServer(transport=receiver_aio, **options)

        async def start(app: Any) -> None:
            await server.start()

        async def stop(app: Any) -> None:
            await server.close()

        aio_app = aioweb.Application()
        aio_app.router.add_get("/stream", receiver_aio.handler)
        aio_app.on_startup.append(start)
        aio_app.on_shutdown.append(stop)
        runner = aioweb.AppRunner(aio_app, access_log=None)
        await runner.setup()
        await aioweb.SockSite(runner, sock).start()
        try:
            yield server, base
        finally:
            await runner.cleanup()
    assert not server.serving


@pytest.mark.parametrize(("layout", "url", "rate"), [
    ("stereo", "both", 8000), ("mono", "caller", 16000), ("mixed", "both", 8000),
    ("mono", "none", 8000)])
def test_mod_audio_stream_calls_arrive_sample_for_sample(host, layout, url, rate):
    conv = scripted(default_script(0.8, 3), rate, 0.8, seed=11)
    client = "current" if rate == 8000 else "ixwebsocket"
    calls = Calls()

    async def main():
        async with serving(host, on_call=calls) as (server, base):
            start = StreamStart.parse(url_for(base, url, rate), layout, str(rate),
                                      json.dumps({"call_id": "web-1"}))
            stream = AudioStream(start, conv, client=client, realtime=True,
                                 stop_text='{"event": "stop"}')
            await stream.run()
            await calls.wait_for(1)
            stats = server.stats
        return stream, stats

    stream, stats = run(main(), timeout=30)
    call = calls.done["web-1"]
    (mode, found_layout, found_rate), channels = expected(layout, url, rate)
    assert (call.listen_mode, call.layout, call.source_rate) == (mode, found_layout, found_rate)
    sent = stream.sent_audio()
    for name in ("caller", "callee", "mix"):
        if name in channels:
            want = offline(sent[channels[name]], rate, 16000)
            assert np.array_equal(calls.audio["web-1"][name], want), name
        else:
            assert calls.audio["web-1"][name].size == 0, name
    s = call.stats
    assert (s.decode_errors, s.overruns, s.format_changes) == (0, 0, 0)
    assert s.frames == stream.events.frames
    assert call.events[-1] == {"event": "stop"}
    assert call.close_info.code == 1000 and call.close_info.clean
    assert (stats.total_calls, stats.failed_calls) == (1, 0)


@pytest.mark.parametrize(("query", "status", "body"), [
    ("", 401, "Unauthorized\n"), ("&token=wrong", 403, "Forbidden\n")])
def test_a_refused_handshake_gets_its_http_status(host, query, status, body):
    calls = Calls()

    async def main():
        async with serving(host, on_call=calls, auth="s3cret") as (server, base):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{base}/stream?listen_mode=caller{query}"):
                    pass
            async with connect(f"{base}/stream?listen_mode=caller&token=s3cret") as ws:
                await ws.send(json.dumps({"call_id": "let-in"}))
            await calls.wait_for(1)
            stats = server.stats
        return refused.value.response, stats

    response, stats = run(main())
    # uvicorn has the ASGI extension that sends the refusal as it is; aiohttp answers
    # with an HTTP response of its own.
    assert (response.status_code, response.body.decode()) == (status, body)
    assert list(calls.done) == ["let-in"]
    assert stats.refused_by_reason == {"unauthorized" if status == 401 else "forbidden": 1}
    assert stats.total_calls == 1


def test_a_call_of_text_alone(host):
    calls = Calls()
    texts = [json.dumps({"call_id": "words-only", "from": "+911234"}),
             json.dumps({"event": "dtmf", "digit": "5"}), json.dumps({"event": "stop"})]

    async def main():
        async with serving(host, on_call=calls) as (server, base):
            async with connect(f"{base}/stream?listen_mode=both") as ws:
                for text in texts:
                    await ws.send(text)
            await calls.wait_for(1)
            stats = server.stats
        return stats

    stats = run(main())
    call = calls.done["words-only"]
    assert call.events == [json.loads(t) for t in texts]
    assert (call.stats.frames, stats.frames, stats.failed_calls) == (0, 0, 0)
    assert all(a.size == 0 for a in calls.audio["words-only"].values())
    assert call.close_info.code == 1000


def test_a_call_the_receiver_closes(host):
    closed: list[Any] = []

    async def on_call(call):
        await call.wait_audio()
        await call.close(4000, "enough heard")
        closed.append(call)

    frame = np.arange(320, dtype="<i2").tobytes()

    async def main():
        async with serving(host, on_call=on_call) as (server, base):
            async with connect(f"{base}/stream?listen_mode=caller") as ws:
                await ws.send(json.dumps({"call_id": "cut-short"}))
                await ws.send(frame)
                with pytest.raises(ConnectionClosed):
                    while True:  # frames go on until the receiver's close arrives
                        await ws.send(frame)
                        await asyncio.sleep(0.02)
                seen = ws.close_code, ws.close_reason
            while not closed:
                await asyncio.sleep(0.01)
            # Its id is refused from now on, as on the receiver's own transports.
            with pytest.raises(InvalidStatus) as again:
                async with connect(f"{base}/stream?listen_mode=caller&call_id=cut-short"):
                    pass
            stats = server.stats
        return seen, again.value.response.status_code, stats

    seen, status, stats = run(main())
    [call] = closed
    assert seen == (4000, "enough heard")
    assert (call.close_info.code, call.close_info.reason) == (4000, "enough heard")
    assert call.closed_by_receiver == "enough heard"
    assert status == 410
    assert stats.refused_by_reason == {"ended": 1}


def test_the_open_calls_end_when_the_application_stops(host):
    calls = Calls()

    async def main():
        async with serving(host, on_call=calls) as (server, base):
            ws = await connect(f"{base}/stream?listen_mode=caller")
            await ws.send(json.dumps({"call_id": "still-on"}))
            await ws.send(bytes(320))
            while not (server.active_calls and server.active_calls[0].stats.frames):
                await asyncio.sleep(0.01)
        await calls.wait_for(1)
        await ws.wait_closed()
        return ws.close_code

    code = run(main())
    # aiohttp's shutdown hook closes the StreamServer (1001 going away); uvicorn closes
    # its WebSocket connections itself before the lifespan's end (1012 service restart).
    assert code == (1001 if host == "aiohttp" else 1012)
    assert calls.done["still-on"].stats.frames == 1


# -- the ASGI adapter message by message, without a server ------------------------------------

class AsgiPeer:
    """An ASGI server's side of one WebSocket connection, as queues of messages."""

    def __init__(self, app: Any, path: str = "/stream", query: bytes = b"",
                 extensions: dict[str, Any] | None = None) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.scope = {"type": "websocket", "path": path, "raw_path": path.encode(),
                      "query_string": query, "client": ("10.0.0.7", 5060),
                      "headers": [(b"host", b"example"), (b"authorization", b"Bearer t")],
                      "extensions": extensions or {}}
        self.task = asyncio.ensure_future(app(self.scope, self.inbox.get, self._send))

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def settle(self) -> None:
        """Until the receiver has taken every message (and acted on the last)."""
        while not self.inbox.empty():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)


def test_asgi_refusals_with_and_without_the_http_response_extension():
    pytest.importorskip("websockets")
    from piopiy_fast.receiver.transports.asgi import AsgiTransport

    async def main():
        receiver = AsgiTransport()
        early = AsgiPeer(receiver.app, extensions={"websocket.http.response": {}})
        await early.inbox.put({"type": "websocket.connect"})
        await early.task
        async with StreamServer(transport=receiver, auth="other"):
            plain = AsgiPeer(receiver.app, query=b"listen_mode=caller")
            rich = AsgiPeer(receiver.app, query=b"listen_mode=caller",
                            extensions={"websocket.http.response": {}})
            for peer in (plain, rich):
                await peer.inbox.put({"type": "websocket.connect"})
                await peer.task
        return early.sent, plain.sent, rich.sent

    early, plain, rich = run(main())
    text = [(b"content-type", b"text/plain; charset=utf-8")]
    assert early == [
        {"type": "websocket.http.response.start", "status": 503, "headers": text},
        {"type": "websocket.http.response.body",
         "body": b"The receiver is not accepting calls\n"}]
    assert plain == [{"type": "websocket.close", "code": 1008, "reason": "Forbidden"}]
    assert rich == [
        {"type": "websocket.http.response.start", "status": 403, "headers": text},
        {"type": "websocket.http.response.body", "body": b"Forbidden\n"}]


def test_asgi_messages_reach_the_call_and_closes_map_to_close_info():
    from piopiy_fast.receiver.transports.asgi import AsgiTransport

    frames = [np.full(160, i, "<i2").tobytes() for i in range(40)]  # 8 kHz caller

    async def main():
        receiver = AsgiTransport(max_message_bytes=2048)
        seen: list[Any] = []
        async with StreamServer(transport=receiver, on_call=seen.append, latency=0):
            peer = AsgiPeer(receiver.app, path="/st%2Fream",
                            query=b"listen_mode=caller&voice_quality=8000")
            await peer.inbox.put({"type": "websocket.connect"})
            await peer.inbox.put({"type": "websocket.receive", "text": '{"call_id": "q-1"}'})
            for frame in frames:
                await peer.inbox.put({"type": "websocket.receive", "bytes": frame})
            await peer.settle()
            [call] = seen
            first = (call.remote, call.route, call.id_known)
            # The peer ends the stream: its close comes back as the disconnect.
            await peer.inbox.put({"type": "websocket.disconnect", "code": 1000, "reason": ""})
            await peer.task
            ended = call.close_info, call.stats.frames, call.stats.bytes

            big = AsgiPeer(receiver.app, query=b"listen_mode=caller&call_id=q-2")
            await big.inbox.put({"type": "websocket.connect"})
            await big.inbox.put({"type": "websocket.receive", "bytes": bytes(2050)})
            await big.settle()
            # The receiver's close, then the peer's answer (its own code).
            closing = list(big.sent)
            await big.inbox.put({"type": "websocket.disconnect", "code": 1009, "reason": ""})
            await big.task
        return first, ended, closing, seen[1].close_info, peer.sent

    first, ended, closing, too_big, sent = run(main())
    assert first == ("10.0.0.7:5060", "/st%2Fream", True)
    info, frame_count, size = ended
    assert (info.code, info.clean, frame_count, size) == (1000, True, 40, 40 * 320)
    assert sent == [{"type": "websocket.accept"}]
    assert closing[-1] == {"type": "websocket.close", "code": 1009,
                           "reason": "message of 2050 bytes over the limit of 2048"}
    assert (too_big.code, too_big.clean) == (1009, False)


def test_asgi_answers_plain_http_with_426():
    from piopiy_fast.receiver.transports.asgi import AsgiTransport

    async def main():
        sent: list[dict[str, Any]] = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        await AsgiTransport().app({"type": "http", "path": "/stream"}, receive, send)
        return sent

    start, body = run(main())
    assert start["status"] == 426 and (b"upgrade", b"websocket") in start["headers"]
    assert body["body"] == b"This endpoint takes WebSocket connections\n"


def test_a_coroutine_auth_hook_is_awaited_during_the_handshake(host):
    calls = Calls()
    checked: list[str] = []

    async def auth(handshake):
        await asyncio.sleep(0.01)  # a lookup elsewhere
        checked.append(handshake.route)
        return {"call_ref": "ref-7"} if handshake.headers.get("x-key") == "k1" else False

    async def main():
        async with serving(host, on_call=calls, auth=auth) as (server, base):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{base}/stream?listen_mode=caller",
                                   additional_headers={"X-Key": "nope"}):
                    pass
            async with connect(f"{base}/stream?listen_mode=caller",
                               additional_headers={"X-Key": "k1"}) as ws:
                await ws.send(np.zeros(160, "<i2").tobytes())
            await calls.wait_for(1)
        return refused.value.response.status_code

    assert run(main()) == 403
    assert checked == ["/stream", "/stream"]
    assert list(calls.done) == ["ref-7"]
