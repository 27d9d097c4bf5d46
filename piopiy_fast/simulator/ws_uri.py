"""The start command's checks, as FreeSWITCH's ``mod_audio_stream`` makes them.

``uuid_audio_stream <uuid> start <url> <mix> <rate> [metadata]`` refuses a URL that
its ``validate_ws_uri`` rejects ("invalid websocket uri") and a rate that is not a
multiple of 8000 ("invalid sample rate"); either way no stream starts. The URL check
is narrower than RFC 3986: the host runs from the scheme to the first ``:`` or ``/``
and may hold only letters, digits, ``-`` and ``.``, so ``wss://host?x=1`` (a query
with no path before it) is refused, as are IPv6 literals and user info; a port, when
present, is digits up to the first ``/``. Nothing after the first ``/`` is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PiopiyValidationError

__all__ = ["InvalidStart", "WsTarget", "parse_sampling", "split_ws_uri", "validate_ws_uri"]


class InvalidStart(PiopiyValidationError):
    """The module refused the start command; the message is the module's log line."""


def _host_char(c: str) -> bool:
    # isalnum in the C locale: ASCII letters and digits only.
    return c.isascii() and (c.isalnum() or c in "-.")


def validate_ws_uri(url: str) -> bool:
    """True when ``mod_audio_stream`` accepts ``url`` as a stream target."""
    if url.startswith("ws://"):
        rest = url[5:]
    elif url.startswith("wss://"):
        rest = url[6:]
    else:
        return False
    end = 0
    while end < len(rest) and rest[end] not in ":/":
        if not _host_char(rest[end]):
            return False
        end += 1
    if end == 0:
        return False
    if end < len(rest) and rest[end] == ":":
        port = rest[end + 1:].split("/", 1)[0]
        # An empty port ("ws://host:/x") passes, as it does in the module.
        if not all(c in "0123456789" for c in port):
            return False
    return True


@dataclass(frozen=True)
class WsTarget:
    """Where the client connects and what it asks for, as the WebSocket clients split
    a URL: the port defaults to 80/443 and the request target to ``/``."""

    secure: bool
    host: str
    port: int
    target: str  # path and query, as written in the request line


def split_ws_uri(url: str) -> WsTarget:
    """Split a URL that :func:`validate_ws_uri` accepts.

    Raises:
        InvalidStart: the URL is refused, or its port is empty or out of range.
    """
    if not validate_ws_uri(url):
        raise InvalidStart(f"invalid websocket uri: {url}")
    secure = url.startswith("wss://")
    rest = url[6:] if secure else url[5:]
    slash = rest.find("/")
    hostport, target = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, _, port_text = hostport.partition(":")
    if ":" in hostport and not port_text:
        raise InvalidStart(f"invalid websocket uri: {url} (empty port)")
    port = int(port_text) if port_text else (443 if secure else 80)
    if not 0 < port < 65536:
        raise InvalidStart(f"invalid websocket uri: {url} (port out of range)")
    return WsTarget(secure, host, port, target)


def parse_sampling(arg: str | None) -> int:
    """The rate argument of the start command: ``8k``, ``16k``, or a number read as C's
    ``atoi`` reads it (leading digits; none is 0); default 8000.

    Raises:
        InvalidStart: "invalid sample rate" for anything not a multiple of 8000
            (12000, 11025...). 0 passes the module's check but could never stream, so it
            is refused here too.
    """
    if arg is None:
        return 8000
    if arg == "16k":
        return 16000
    if arg == "8k":
        return 8000
    text = arg.lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in "+-" else text
    digits = ""
    for c in text:
        if not c.isascii() or not c.isdigit():
            break
        digits += c
    rate = sign * int(digits) if digits else 0
    if rate % 8000 != 0 or rate <= 0:
        raise InvalidStart(f"invalid sample rate: {arg}")
    return rate
