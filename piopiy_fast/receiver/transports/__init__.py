"""The WebSocket libraries the receiver runs on, behind one seam (:mod:`.base`).

``picows`` (a Cython WebSocket library, best on uvloop, its frames handed to the core
without a Python object each) is the fast one; ``websockets`` is the pure-Python one.
``auto``, the default, takes picows when it is installed, except for an application
auth hook that is a coroutine function, which only ``websockets`` can await during the
handshake. Each library is imported only when chosen.
"""

from __future__ import annotations

from typing import Any

from ...errors import PiopiyValidationError
from .base import Transport

TRANSPORTS = ("auto", "picows", "websockets")


def resolve(transport: str, *, async_auth: bool = False) -> str:
    """The library ``transport`` names: ``auto`` becomes ``picows`` when it can be
    imported and the auth check never awaits, else ``websockets``."""
    if transport != "auto":
        return transport
    if async_auth:
        return "websockets"
    try:
        import picows  # noqa: F401
    except ImportError:
        return "websockets"
    return "picows"


def make_transport(transport: Transport | str, *, async_auth: bool = False,
                   **options: Any) -> Transport:
    """The transport named ``transport`` with ``options``, or ``transport`` itself when it
    is already an object with the :class:`~.base.Transport` interface."""
    if not isinstance(transport, str):
        return transport
    transport = resolve(transport, async_auth=async_auth)
    if transport == "websockets":
        from .websockets import WebsocketsTransport
        return WebsocketsTransport(**options)
    if transport == "picows":
        try:
            from .picows import PicowsTransport
        except ImportError as exc:
            raise PiopiyValidationError(
                "transport 'picows' needs picows: pip install 'piopiy-fast[fast]'") from exc
        return PicowsTransport(**options)
    raise PiopiyValidationError(
        f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
