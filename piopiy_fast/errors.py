"""Exceptions raised by piopiy_fast.

    PiopiyError                      base of everything raised on purpose
    ├── PiopiyValidationError        a bad argument (also a ValueError); names it
    ├── PiopiyNetworkError           no usable HTTP answer: refused, reset, timed out
    ├── PiopiyAPIError               the REST API answered with an error status
    ├── SignatureError               a signed stream URL failed verification
    │   ├── SignatureMissingError    no signature in the URL (answer 401)
    │   ├── SignatureMismatchError   altered URL or wrong secret (answer 403)
    │   └── SignatureExpiredError    valid signature, expiry time passed (answer 403)
    ├── FrameError                   one received audio frame could not be used
    │                                (also a ValueError); the call goes on
    ├── CallEnded                    the call is over: nothing more can be sent on it
    └── ReplyTimeout                 the peer read no reply audio in time (also a
                                     TimeoutError); the rest of that reply is dropped
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


class SignatureError(PiopiyError):
    """A signed stream URL failed verification; see the three subclasses.

    Messages never contain the secret or the expected signature.
    """


class SignatureMissingError(SignatureError):
    """The URL carries no signature parameter at all."""


class SignatureMismatchError(SignatureError):
    """The signature does not match: a parameter or the path was altered, or the secret differs."""


class SignatureExpiredError(SignatureError):
    """The signature is valid but the URL's expiry time has passed."""


class FrameError(PiopiyError, ValueError):
    """One received frame could not be decoded (odd byte count, half a sample pair...).

    Only that frame is lost; the stream it came from is still usable.
    """


class CallEnded(PiopiyError):
    """The call's connection is closed or closing: audio and controls can no longer be sent.

    Playback racing a hang-up is routine for a voice agent: catch this where replies
    are sent. Whatever was read from the call stays readable.
    """


class ReplyTimeout(PiopiyError, TimeoutError):
    """The peer read none of the reply audio being sent for ``timeout`` seconds.

    The message in flight is sent whole or not at all; the rest of the reply (and what
    waited for a full batch) is dropped, so a later reply does not play stale audio.
    The call itself goes on (a peer that stays silent is ended by the ping timeout).
    """
