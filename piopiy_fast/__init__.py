"""piopiy_fast: Piopiy (TeleCMI) call API, WebSocket stream receiver and native audio core."""

from .actions import Action, StreamAction
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
from .signing import SignedURL

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
]
