"""The WebSocket libraries the receiver runs on, behind one seam (:mod:`.base`).

``picows`` (a Cython WebSocket library, best on uvloop, its frames handed to the core
without a Python object each) is the fast one; ``websockets`` is the pure-Python one.
``auto``, the default, takes picows when it is installed, except for an application
auth hook that is a coroutine function, which only ``websockets`` can await during the
handshake. Each library is imported only when chosen.
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import PiopiyValidationError
from .base import Transport

TRANSPORTS = ("auto", "picows", "websockets")

logger = logging.getLogger("piopiy_fast.transport")


def choose(transport: str, *, async_auth: bool = False) -> tuple[str, str | None]:
    """The library ``transport`` names, and why ``auto`` did not take picows.

    Args:
        transport: ``auto``, ``picows`` or ``websockets``.
        async_auth: Whether the application's auth hook is a coroutine function.

    Returns:
        The library's name, and the reason when ``auto`` became ``websockets`` (else
        None).
    """
    if transport != "auto":
        return transport, None
    if async_auth:
        return "websockets", ("the auth hook is a coroutine function, which only websockets "
                              "can await")
    try:
        import picows  # noqa: F401
    except ImportError as exc:
        return "websockets", f"picows cannot be imported ({exc})"
    return "picows", None


def resolve(transport: str, *, async_auth: bool = False) -> str:
    """The library ``transport`` names: ``auto`` becomes ``picows`` when it can be
    imported and the auth check never awaits, else ``websockets``.

    Args:
        transport: ``auto``, ``picows`` or ``websockets``.
        async_auth: Whether the application's auth hook is a coroutine function.
    """
    return choose(transport, async_auth=async_auth)[0]


def make_transport(transport: Transport | str, *, async_auth: bool = False,
                   **options: Any) -> Transport:
    """The transport named ``transport`` with ``options``, or ``transport`` itself when it
    is already an object with the :class:`~.base.Transport` interface. ``auto`` logs the
    library it took (and why, when not picows).

    Args:
        transport: A name from TRANSPORTS, or a transport object.
        async_auth: Whether the application's auth hook is a coroutine function.
        **options: The transport's options (:class:`~.base.TransportOptions`).

    Raises:
        PiopiyValidationError: An unknown name, or picows asked for and not installed.
    """
    if not isinstance(transport, str):
        return transport
    asked = transport
    transport, why = choose(transport, async_auth=async_auth)
    if asked == "auto":
        if why is None:
            logger.info("transport auto: %s", transport)
        else:
            logger.info("transport auto: %s, as %s", transport, why)
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
