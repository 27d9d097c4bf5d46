"""piopiy_fast: Piopiy (TeleCMI) call API, WebSocket stream receiver and native audio core.

The package is layered; each layer is a subpackage:

- :mod:`.sdk`: PCMO builders (``Action``, ``StreamAction``), ``RestClient``, webhooks;
- :mod:`.stream`: the Piopiy stream without I/O: its vocabulary and messages, text
  frames, format and layout decisions, the call state machine, reply batching;
- :mod:`.receiver`: ``StreamServer``, ``CallStream`` and its readers, auth, recording,
  and the WebSocket transports behind one seam;
- :mod:`.audio`: the native core (decode, resample, ring buffers);
- :mod:`.simulator` and :mod:`.cli`: Piopiy's side of a call, and the command line.

The names below load on first use (PEP 562), so ``from piopiy_fast import RestClient``
loads neither numpy nor a WebSocket library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY = {
    "Action": ".sdk.actions",
    "StreamAction": ".sdk.actions",
    "RestClient": ".sdk.client",
    "StreamWebhook": ".sdk.webhooks",
    "parse_stream_webhook": ".sdk.webhooks",
    "SignedURL": ".signing",
    "PiopiyError": ".errors",
    "PiopiyValidationError": ".errors",
    "PiopiyNetworkError": ".errors",
    "PiopiyAPIError": ".errors",
    "SignatureError": ".errors",
    "SignatureMissingError": ".errors",
    "SignatureMismatchError": ".errors",
    "SignatureExpiredError": ".errors",
    "FrameError": ".errors",
    "CallEnded": ".errors",
    "StreamServer": ".receiver.server",
    "ServerStats": ".receiver.stats",
    "CallStream": ".receiver.call",
    "CallStats": ".stream.call",
    "ChannelReader": ".receiver.channel",
    "Recorder": ".receiver.recorder",
    "Simulator": ".simulator.simulator",
    "SimulationReport": ".simulator.simulator",
}

__all__ = [
    "Action",
    "StreamAction",
    "RestClient",
    "SignedURL",
    "PiopiyError",
    "PiopiyValidationError",
    "PiopiyNetworkError",
    "PiopiyAPIError",
    "SignatureError",
    "SignatureMissingError",
    "SignatureMismatchError",
    "SignatureExpiredError",
    "FrameError",
    "CallEnded",
    "StreamServer",
    "CallStream",
    "ChannelReader",
    "CallStats",
    "ServerStats",
    "Recorder",
    "Simulator",
    "SimulationReport",
    "StreamWebhook",
    "parse_stream_webhook",
]

if TYPE_CHECKING:
    from .errors import (
        CallEnded,
        FrameError,
        PiopiyAPIError,
        PiopiyError,
        PiopiyNetworkError,
        PiopiyValidationError,
        SignatureError,
        SignatureExpiredError,
        SignatureMismatchError,
        SignatureMissingError,
    )
    from .receiver.call import CallStream
    from .receiver.channel import ChannelReader
    from .receiver.recorder import Recorder
    from .receiver.server import StreamServer
    from .receiver.stats import ServerStats
    from .sdk.actions import Action, StreamAction
    from .sdk.client import RestClient
    from .sdk.webhooks import StreamWebhook, parse_stream_webhook
    from .signing import SignedURL
    from .simulator.simulator import SimulationReport, Simulator
    from .stream.call import CallStats


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'piopiy_fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
