"""The WebSocket libraries the receiver runs on, behind one seam (:mod:`.base`).

``websockets`` is the default; ``picows`` (the ``fast`` extra, best on uvloop) is the
fast option. Each is imported only when chosen.
"""

from __future__ import annotations

from typing import Any

from ...errors import PiopiyValidationError
from .base import Transport

TRANSPORTS = ("websockets", "picows")


def make_transport(transport: Transport | str, **options: Any) -> Transport:
    """The transport named ``transport`` with ``options``, or ``transport`` itself when it
    is already an object with the :class:`~.base.Transport` interface."""
    if not isinstance(transport, str):
        return transport
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
