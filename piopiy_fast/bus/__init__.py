"""Call audio and events on a message bus, for analytics past one machine.

A receiver publishes every call (``StreamServer(publish="nats://bus:4222")``,
``piopiy-fast serve --publish nats://bus:4222``): per channel, chunks of
``chunk_ms`` of audio at the delivered rate, and the call's start, events and end.
Workers anywhere read them with the reader API of a live call::

    from piopiy_fast.bus import NatsSubscriber

    async with NatsSubscriber("nats://bus:4222", group="asr") as subscriber:
        async for call in subscriber.calls():
            ...  # async for chunk in call.caller

The subjects are in :mod:`.subjects`; the receiver side in :mod:`.publisher` (the seam
another bus would implement) and :mod:`.nats`; the workers' side in :mod:`.nats_worker`
and :mod:`.remote`. ``nats-py`` is needed for NATS (``pip install 'piopiy-fast[nats]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .subjects import DEFAULT_PREFIX, Subjects, call_token

if TYPE_CHECKING:
    from .nats import NatsPublisher, StreamLimits
    from .nats_worker import NatsSubscriber
    from .publisher import OutboxPublisher, Publisher
    from .remote import Gap, RemoteCall, RemoteChannel

__all__ = ["DEFAULT_PREFIX", "Gap", "NatsPublisher", "NatsSubscriber", "OutboxPublisher",
           "Publisher", "RemoteCall", "RemoteChannel", "StreamLimits", "Subjects",
           "call_token"]

_LAZY = {"NatsPublisher": ".nats", "StreamLimits": ".nats", "NatsSubscriber": ".nats_worker",
         "OutboxPublisher": ".publisher", "Publisher": ".publisher", "Gap": ".remote",
         "RemoteCall": ".remote", "RemoteChannel": ".remote"}


def __getattr__(name: str) -> Any:
    # Lazy: the subjects need neither numpy nor nats-py.
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
