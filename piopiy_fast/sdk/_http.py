"""JSON over HTTPS for the SDK: a timeout on every request, bounded retries, no secrets
in errors.

Standard library only (``urllib``), so placing calls loads nothing heavy.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Any

from ..errors import PiopiyAPIError, PiopiyNetworkError

log = logging.getLogger("piopiy_fast.sdk")

HIDDEN = "<hidden>"

try:
    _USER_AGENT = f"piopiy-fast/{importlib.metadata.version('piopiy-fast')}"
except importlib.metadata.PackageNotFoundError:  # run from a source tree
    _USER_AGENT = "piopiy-fast"

class Secret:
    """Holds the app token so that no repr, vars() dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return HIDDEN

    __str__ = __repr__


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without its body; an API that
    # redirects is an error to report, not to follow.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _redact(value: Any, token: str) -> Any:
    """``value`` with every occurrence of ``token`` in its strings replaced."""
    if isinstance(value, str):
        return value.replace(token, HIDDEN)
    if isinstance(value, dict):
        return {_redact(k, token): _redact(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, token) for v in value]
    return value


def _parse(raw: bytes) -> Any:
    """A response body: its JSON, else its text; None when empty."""
    if not raw.strip():
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class JsonPoster:
    """POSTs JSON with a timeout, bounded retries and token-free errors."""

    __slots__ = ("_token", "_timeout", "_retries", "_backoff", "_max_backoff", "_opener")

    def __init__(
        self, token: Secret, timeout: float, retries: int, backoff: float, max_backoff: float
    ) -> None:
        self._token = token
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self._backoff * 2.0**attempt
        if retry_after is not None:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        return min(delay, self._max_backoff)

    def post(self, url: str, payload: dict[str, Any]) -> Any:
        token = self._token.reveal()
        data = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        where = f"POST {url}"
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            retry_after = None
            try:
                with self._opener.open(request, timeout=self._timeout) as response:
                    status, raw = response.status, response.read()
            except urllib.error.HTTPError as err:
                status, retry_after = err.code, err.headers.get("Retry-After")
                try:
                    raw = err.read()
                except (OSError, HTTPException):
                    raw = b""
            except urllib.error.URLError as err:
                # Raised while connecting or sending: the server never saw a whole
                # request, so another try cannot act twice.
                reason = _redact(str(err.reason), token)
                # A certificate problem will not go away by asking again.
                if attempt < self._retries and not isinstance(err.reason, ssl.SSLError):
                    delay = self._delay(attempt, None)
                    log.info("%s: %s; retry %d in %.2f s", where, reason, attempt + 1, delay)
                    time.sleep(delay)
                    attempt += 1
                    continue
                raise PiopiyNetworkError(
                    f"{where}: cannot connect ({reason}) after {attempt + 1} attempt(s)"
                ) from None
            except (OSError, HTTPException) as err:
                # Sent, then no (whole) answer: the server may have acted on it.
                if isinstance(err, TimeoutError):
                    what = f"no answer within {self._timeout:g} s"
                else:
                    what = f"connection lost before the answer ({_redact(str(err), token)})"
                raise PiopiyNetworkError(
                    f"{where}: {what}; not retried, as the request may have been acted on"
                ) from None
            if 200 <= status < 300:
                return _parse(raw)
            if (status == 429 or status >= 500) and attempt < self._retries:
                delay = self._delay(attempt, retry_after)
                log.info("%s: HTTP %d; retry %d in %.2f s", where, status, attempt + 1, delay)
                time.sleep(delay)
                attempt += 1
                continue
            body = _redact(_parse(raw), token)
            message = f"{where} answered HTTP {status} after {attempt + 1} attempt(s)"
            if body is not None:
                snippet = body if isinstance(body, str) else json.dumps(body)
                message += f": {snippet[:200]}" + ("..." if len(snippet) > 200 else "")
            raise PiopiyAPIError(message, status, body)
