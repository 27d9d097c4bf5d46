"""Who may open a stream: the handshake check behind ``StreamServer(auth=...)``.

Three forms, checked before any audio flows:

- a ``SignedURL`` (anything with ``verify(path_with_query) -> dict``): the URL's
  signature and expiry are checked and the verified parameters replace the raw query;
- a plain token string, sent as ``Authorization: Bearer <token>`` or ``?token=<token>``;
- a callable ``auth(handshake)`` (sync or async) returning True or a mapping of
  parameters to accept, False or None to refuse.

A missing credential is 401, a wrong one 403. Secrets never reach a log or a
response body. Anyone can make the server refuse them, as often as they like: the
refusal lines are rate limited (:mod:`.logs`) and show the request path escaped.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..errors import PiopiyError, SignatureMissingError
from ..redaction import printable
from ..stream.events import query_params
from .logs import RateLimitedLog
from .transports.base import Handshake, Rejection

logger = logging.getLogger("piopiy_fast.receiver")

BAD_REQUEST = Rejection(400, "Bad Request\n")
UNAUTHORIZED = Rejection(401, "Unauthorized\n")
FORBIDDEN = Rejection(403, "Forbidden\n")


Verdict = dict[str, Any] | Rejection


class Authenticator:
    """Turns ``auth=`` into one check: handshake in, params dict or Rejection out.

    The check is synchronous; only a user hook that is a coroutine function makes it
    return an awaitable, which the transport then awaits (or, on picows, which cannot
    wait inside the socket read, drives without the loop).
    """

    def __init__(self, auth: Any = None) -> None:
        self._auth = auth
        self.refusals = RateLimitedLog(logger)
        self._check: Callable[[Handshake], Verdict | Awaitable[Verdict]]
        if auth is None:
            self._check = self._open
        elif isinstance(auth, str):
            if not auth:
                raise ValueError("auth token must not be empty")
            self._token = auth.encode()
            self._check = self._by_token
        elif callable(getattr(auth, "verify", None)):
            self._check = self._by_signature
        elif callable(auth):
            self._check = self._by_hook
        else:
            raise TypeError("auth must be None, a token string, a SignedURL or a callable")

    def __call__(self, handshake: Handshake) -> Verdict | Awaitable[Verdict]:
        return self._check(handshake)

    def _open(self, handshake: Handshake) -> Verdict:
        return query_params(handshake.path)

    def _by_token(self, handshake: Handshake) -> Verdict:
        params = query_params(handshake.path)
        given = None
        header = authorization(handshake.headers)
        if isinstance(header, Rejection):
            self.refusals.info("stream %s from %s refused: malformed Authorization header",
                               printable(handshake.route), handshake.remote)
            return header
        if header and header[:7].lower() == "bearer ":
            given = header[7:].strip()
        elif "token" in params:
            given = params["token"]
        if not given:
            return UNAUTHORIZED
        if not hmac.compare_digest(given.encode(), self._token):
            self.refusals.warning("stream %s from %s refused: wrong token",
                                  printable(handshake.route), handshake.remote)
            return FORBIDDEN
        params.pop("token", None)
        return params

    def _by_signature(self, handshake: Handshake) -> Verdict:
        try:
            verified = self._auth.verify(handshake.path)
        except SignatureMissingError:
            return UNAUTHORIZED
        except PiopiyError as exc:
            # Altered, expired or signed with another secret. The error's name only:
            # its message is safe, but the path it came from may not be.
            self.refusals.warning("stream %s from %s refused: %s", printable(handshake.route),
                                  handshake.remote, type(exc).__name__)
            return FORBIDDEN
        return dict(verified)

    def _by_hook(self, handshake: Handshake) -> Verdict | Awaitable[Verdict]:
        try:
            verdict = self._auth(handshake)
        except Exception:
            return self._hook_failed(handshake)
        if inspect.isawaitable(verdict):
            return self._await_hook(handshake, verdict)
        return self._judge(handshake, verdict)

    async def _await_hook(self, handshake: Handshake, pending: Awaitable[Any]) -> Verdict:
        try:
            verdict = await pending
        except Exception:
            return self._hook_failed(handshake)
        return self._judge(handshake, verdict)

    def _judge(self, handshake: Handshake, verdict: Any) -> Verdict:
        if isinstance(verdict, Rejection):
            return verdict
        if isinstance(verdict, Mapping):
            return dict(verdict)
        if verdict is True:
            return query_params(handshake.path)
        self.refusals.warning("stream %s from %s refused by auth hook",
                              printable(handshake.route), handshake.remote)
        return FORBIDDEN

    def _hook_failed(self, handshake: Handshake) -> Verdict:
        self.refusals.exception("stream %s from %s refused: auth hook failed",
                                printable(handshake.route), handshake.remote)
        return FORBIDDEN


def authorization(headers: Any) -> str | Rejection | None:
    """The request's one ``Authorization`` header; 400 when there are several or it is
    not ASCII (never an exception: each WebSocket library answers those with a 500)."""
    get_all = getattr(headers, "get_all", None) or getattr(headers, "getall", None)
    if get_all is not None:
        try:
            values = list(get_all("Authorization"))
        except KeyError:  # multidict's getall without a default
            values = []
    else:
        value = headers.get("Authorization")
        values = [] if value is None else [value]
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str) or not values[0].isascii():
        return BAD_REQUEST
    return values[0]
