"""Exceptions raised by piopiy_fast.

    PiopiyError                      base of everything raised on purpose
    ├── PiopiyValidationError        a bad argument (also a ValueError); names it
    ├── PiopiyNetworkError           no usable HTTP answer: refused, reset, timed out
    ├── PiopiyAPIError               the REST API answered with an error status
    └── FrameError                   one received audio frame could not be used
                                     (also a ValueError); the call goes on
"""


class PiopiyError(Exception):
    """Base class of every error piopiy_fast raises on purpose."""


class PiopiyValidationError(PiopiyError, ValueError):
    """An argument is outside what is allowed; the message names it and the allowed values."""


class PiopiyNetworkError(PiopiyError):
    """The request got no usable answer (connection refused or reset, timeout)."""


class PiopiyAPIError(PiopiyError):
    """The REST API answered with an error status.

    ``status`` is the HTTP status code and ``body`` the parsed JSON body (or the raw
    text when it is not JSON).
    """

    def __init__(self, message: str, status: int, body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class FrameError(PiopiyError, ValueError):
    """One received frame could not be decoded (odd byte count, half a sample pair...).

    Only that frame is lost; the stream it came from is still usable.
    """
