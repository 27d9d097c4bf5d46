"""A real HTTP server on 127.0.0.1 that records every request and answers from a script.

    with HttpRecorder([Reply(503), Reply(200, {"ok": True})]) as server:
        client = RestClient(1, "token", base_url=server.url)
        ...
        server.requests[0].path, server.requests[0].json

Replies are used in order; once the script is spent every request gets
``default``. A reply can stall (``delay`` seconds before answering; released at
once when the server stops) or drop the connection without answering.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = field(default_factory=dict)  # bytes or str sent as is; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering
    drop: bool = False  # close the connection without answering


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorder = self.server.recorder
        reply = recorder._record_and_pick(
            Recorded(self.command, self.path, dict(self.headers.items()), body)
        )
        if reply.delay and recorder._stopping.wait(reply.delay):
            return
        if reply.drop:
            self.close_connection = True
            return
        if isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timed out) first
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    recorder: HttpRecorder


class HttpRecorder:
    """Context manager running the server in a thread; see the module docstring."""

    def __init__(
        self, script: list[Reply] | None = None, default: Reply | None = None, port: int = 0
    ) -> None:
        self.script = list(script or [])
        self.default = default or Reply()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.recorder = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self, script: list[Reply] | None = None, default: Reply | None = None) -> None:
        """Forget the requests and set a new script, so one server can serve many tests."""
        with self._lock:
            self.requests = []
            self.script = list(script or [])
            self.default = default or Reply()

    def _record_and_pick(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else self.default

    def __enter__(self) -> HttpRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
