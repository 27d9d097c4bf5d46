"""The opening request each of ``mod_audio_stream``'s WebSocket clients writes, byte
for byte, and the check each makes of the server's answer.

- **libwsc** (the module's current client): headers written ``Name:value`` with no
  space after the colon, ``Connection:upgrade`` in lower case, the port always in
  ``Host`` and in an ``http://`` ``Origin``, then a ``permessage-deflate`` offer (see
  :data:`LIBWSC_DEFLATE_OFFER`; whether real builds send it depends on an
  uninitialised flag in the module, so it is a switch here) and any extra headers.
  The answer must contain ``HTTP/1.1 101`` and a ``Sec-WebSocket-Accept:`` header
  (only their presence is checked).
- **IXWebSocket** (the client of releases up to mid-2025): ``Name: value``, a
  ``User-Agent: ixwebsocket/...`` header, ``Origin: ws://host:port`` (the URL's
  scheme), no extension offer (deflate is off unless enabled, and the module never
  enables it). The answer's status must be 101 and its accept key must match.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

__all__ = [
    "IXWEBSOCKET_USER_AGENT", "LIBWSC_DEFLATE_OFFER", "HandshakeRefused", "accept_key",
    "check_answer", "ixwebsocket_request", "libwsc_request",
]

LIBWSC_DEFLATE_OFFER = ("permessage-deflate; client_no_context_takeover; "
                        "server_no_context_takeover; client_max_window_bits=9")
# IXWebSocket 11.4.3 (the module's last IXWebSocket submodule) on Linux with OpenSSL
# and zlib; the version strings after "ixwebsocket/11.4.3 linux" vary by build.
IXWEBSOCKET_USER_AGENT = (
    "ixwebsocket/11.4.3 linux ssl/OpenSSL OpenSSL 3.0.15 3 Sep 2024 zlib 1.2.13")
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeRefused(Exception):
    """The server did not switch protocols; ``status`` is its HTTP status (0 if none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def libwsc_request(host: str, port: int, target: str, key: str, *, deflate: bool,
                   headers: Mapping[str, str] | None = None) -> bytes:
    """The request libwsc writes (``sendHandshakeRequest``)."""
    lines = [f"GET {target} HTTP/1.1", f"Host:{host}:{port}", "Upgrade:websocket",
             "Connection:upgrade", f"Sec-WebSocket-Key:{key}", "Sec-WebSocket-Version:13"]
    if deflate:
        lines.append(f"Sec-WebSocket-Extensions:{LIBWSC_DEFLATE_OFFER}")
    lines.append(f"Origin:http://{host}:{port}")
    extra = dict(headers or {})
    lines += [f"{name}:{extra[name]}" for name in sorted(extra)]  # a std::map's order
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ixwebsocket_request(host: str, port: int, target: str, key: str, *, secure: bool,
                        headers: Mapping[str, str] | None = None,
                        user_agent: str = IXWEBSOCKET_USER_AGENT) -> bytes:
    """The request IXWebSocket writes (``WebSocketHandshake::clientHandshake``); extra
    headers come in the order a ``std::map`` keeps them (byte order of the names, as
    IXWebSocket compares them case-insensitively: lower-cased here)."""
    extra = dict(headers or {})
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {key}"]
    if not any(name.lower() == "user-agent" for name in extra):
        lines.append(f"User-Agent: {user_agent}")
    if not any(name.lower() == "origin" for name in extra):
        lines.append(f"Origin: {'wss' if secure else 'ws'}://{host}:{port}")
    lines += [f"{name}: {extra[name]}" for name in sorted(extra, key=str.lower)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_answer(head: bytes, key: str, *, strict_accept: bool) -> dict[str, str]:
    """The answer's headers (lower-case names) if it switches protocols.

    Raises:
        HandshakeRefused: no 101 (with the HTTP status), or (``strict_accept``) a
            missing or wrong accept key.
    """
    text = head.decode("latin-1")
    status_line, _, rest = text.partition("\r\n")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers: dict[str, str] = {}
    for line in rest.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if not status_line.startswith("HTTP/1.1 101"):
        reason = parts[2] if len(parts) > 2 else ""
        raise HandshakeRefused(f"HTTP {status} {reason}".rstrip(), status)
    if "sec-websocket-accept" not in headers:
        raise HandshakeRefused("no Sec-WebSocket-Accept in the answer", status)
    if strict_accept and headers["sec-websocket-accept"] != accept_key(key):
        raise HandshakeRefused("a wrong Sec-WebSocket-Accept in the answer", status)
    return headers
