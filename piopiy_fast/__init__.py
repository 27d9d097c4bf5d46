"""piopiy_fast: Piopiy (TeleCMI) call API, WebSocket stream receiver and native audio core."""

from .actions import Action, StreamAction
from .callstream import CallStats, CallStream
from .channel import ChannelReader
from .client import RestClient
from .errors import (
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
from .protocol import StreamWebhook, parse_stream_webhook
from .receiver import ServerStats, StreamServer
from .recorder import Recorder
from .signing import SignedURL
from .simulate import SimulationReport, Simulator

__version__ = "0.1.0"

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
