"""Signed stream URLs: an HMAC-SHA256 over a URL's path and query, with an expiry time.

Piopiy documents no authentication of the WebSocket its media server opens, and some
platforms strip headers, so the proof travels in the URL the app itself puts in the
PCMO. :meth:`SignedURL.sign` appends ``expires`` (Unix seconds) and ``signature``;
:meth:`SignedURL.verify` recomputes the HMAC during the handshake, compares it in
constant time and checks the expiry time. A verifier also caps how far ahead that time
may be (``max_lifetime``, a day by default): a URL that leaked, signed to live for
years, is refused rather than good until then.

The HMAC covers this canonical form, as UTF-8::

    <path>?<name>=<value>&<name>=<value>...

where the path is percent-decoded then re-encoded (``/`` kept, ``/`` when empty) and
the parameters are every query parameter except ``signature``, percent-decoded, then
re-encoded with nothing left unescaped, sorted by name. The host is not covered
(tunnels and proxies rewrite it), and a URL re-encoded in transit (``+`` or ``%20``,
``~`` or ``%7E``) still verifies. A parameter name given twice is refused on both
sides, so the dict :meth:`~SignedURL.verify` returns is exactly what was signed.

This module needs nothing but the standard library; the WebSocket server calls
:meth:`SignedURL.verify` with the request path it received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import (
    PiopiyValidationError,
    SignatureExpiredError,
    SignatureMismatchError,
    SignatureMissingError,
)

__all__ = ["SignedURL", "with_query"]

SIGNATURE_PARAM = "signature"
EXPIRES_PARAM = "expires"
_RESERVED = (SIGNATURE_PARAM, EXPIRES_PARAM)

ERR_SECRET = "secret must be a non-empty str or bytes"
ERR_EXPIRES_IN = "expires_in must be a positive number of seconds"
ERR_MAX_LIFETIME = "max_lifetime must be a positive number of seconds, or None for no cap"

DEFAULT_MAX_LIFETIME = 24 * 3600.0
# A URL signed on one machine and verified on another: their clocks may differ this much
# before a URL signed for the whole max_lifetime is refused as living too long.
CLOCK_SKEW = 60
ERR_FRAGMENT = "url must not have a #fragment: it is never sent to the server"
ERR_MISSING = "the URL has no signature parameter"
ERR_MISMATCH = "the URL's signature does not match its path and parameters"
ERR_NO_EXPIRY = "the URL has no valid expires parameter"


def _check_value(name: str, value: object) -> str:
    # bool is an int; "True" in a URL is never what was meant.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PiopiyValidationError(
            f"query parameter {name!r} must be a str or an int, got {type(value).__name__}"
        )
    return str(value)


def _pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def _repeated(pairs: list[tuple[str, str]]) -> str | None:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            return name
        seen.add(name)
    return None


def with_query(url: str, params: Mapping[str, object]) -> str:
    """Return ``url`` with ``params`` set in its query string.

    Parameters already in the URL keep their place; one named in ``params`` is
    replaced by the new value, and new names are appended in the order given. Values
    must be str or int.
    """
    parts = urlsplit(url)
    new = {name: _check_value(name, value) for name, value in params.items()}
    kept = [(k, v) for k, v in _pairs(parts.query) if k not in new]
    query = urlencode(kept + list(new.items()), quote_via=quote)
    return urlunsplit(parts._replace(query=query))


def _canonical(path: str, pairs: list[tuple[str, str]]) -> bytes:
    path = quote(unquote(path), safe="/") or "/"
    query = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}"
        for k, v in sorted(pairs)
        if k != SIGNATURE_PARAM
    )
    return f"{path}?{query}".encode()


class SignedURL:
    """Signs URLs with HMAC-SHA256 and an expiry time, and verifies them.

    Parameters
    ----------
    secret : str or bytes
        The shared key; a str is encoded as UTF-8. Use something like
        ``secrets.token_urlsafe(32)``. It never appears in a repr or an error message.
    clock : callable, optional
        Returns the current Unix time in seconds (``time.time`` by default); tests
        inject their own.
    max_lifetime : float or None, optional
        The longest a URL may stay valid, in seconds (default 86400, a day).
        :meth:`sign` refuses a longer ``expires_in``, and :meth:`verify` refuses a URL
        whose expiry is further ahead than this (plus 60 s for clocks that differ), so
        a leaked URL signed to live for years is not accepted. ``None``: no cap.

    Examples
    --------
    >>> signer = SignedURL("k" * 32, clock=lambda: 1000.0)
    >>> url = signer.sign("wss://example.com/stream", {"listen_mode": "both"}, 60)
    >>> signer.verify(url.split("example.com", 1)[1])["listen_mode"]
    'both'
    """

    __slots__ = ("_key", "_clock", "max_lifetime")

    SIGNATURE_PARAM = SIGNATURE_PARAM
    EXPIRES_PARAM = EXPIRES_PARAM

    def __init__(self, secret: str | bytes, *, clock: Callable[[], float] = time.time,
                 max_lifetime: float | None = DEFAULT_MAX_LIFETIME) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, (bytes, bytearray)) or not secret:
            raise PiopiyValidationError(ERR_SECRET)
        if max_lifetime is not None and not _positive_seconds(max_lifetime):
            raise PiopiyValidationError(ERR_MAX_LIFETIME)
        self._key = bytes(secret)
        self._clock = clock
        self.max_lifetime = max_lifetime

    def __repr__(self) -> str:
        return "SignedURL(secret=<hidden>)"

    def _mac(self, message: bytes) -> str:
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(
        self,
        url: str,
        params: Mapping[str, object] | None = None,
        expires_in: float = 3600,
    ) -> str:
        """Return ``url`` with ``params``, ``expires`` and ``signature`` in its query.

        Parameters
        ----------
        url : str
            Any absolute URL (``wss://host/path?x=1``) or a path with a query. Its
            existing query parameters are kept and signed too; an old ``expires`` or
            ``signature`` is replaced.
        params : mapping of str to str or int, optional
            Extra parameters to add (replacing any of the same name) and sign.
        expires_in : float
            Seconds from now until the URL stops verifying; default one hour, at most
            ``max_lifetime``.

        Raises
        ------
        PiopiyValidationError
            ``expires_in`` not positive or beyond ``max_lifetime``, a value not
            str/int, a reserved name in
            ``params``, a parameter name repeated in ``url``, or a ``#fragment``.
        """
        if not _positive_seconds(expires_in):
            raise PiopiyValidationError(ERR_EXPIRES_IN)
        if self.max_lifetime is not None and expires_in > self.max_lifetime:
            raise PiopiyValidationError(
                f"expires_in {expires_in:g} s is beyond max_lifetime {self.max_lifetime:g} s: "
                "a verifier with the same cap would refuse the URL")
        params = dict(params or {})
        for name in _RESERVED:
            if name in params:
                raise PiopiyValidationError(
                    f"params must not contain {name!r}: sign() sets it itself"
                )
        parts = urlsplit(url)
        if parts.fragment:
            raise PiopiyValidationError(ERR_FRAGMENT)
        existing = [(k, v) for k, v in _pairs(parts.query) if k not in _RESERVED]
        repeated = _repeated(existing)
        if repeated is not None:
            raise PiopiyValidationError(
                f"url repeats the query parameter {repeated!r}; a signed URL names each once"
            )
        params[EXPIRES_PARAM] = int(self._clock() + expires_in)
        new = {name: _check_value(name, value) for name, value in params.items()}
        pairs = [(k, v) for k, v in existing if k not in new] + list(new.items())
        pairs.append((SIGNATURE_PARAM, self._mac(_canonical(parts.path, pairs))))
        return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote)))

    def verify(self, path_with_query: str) -> dict[str, str]:
        """Check a signed URL and return its parameters.

        Parameters
        ----------
        path_with_query : str
            What the WebSocket handshake received (``/stream?listen_mode=both&...``);
            a full URL works too. Only its path and query are used.

        Returns
        -------
        dict of str to str
            Every query parameter except ``signature``, including ``expires``, with
            values as strings.

        Raises
        ------
        SignatureMissingError
            No ``signature`` parameter (answer 401).
        SignatureMismatchError
            The signature does not match: the path or a parameter was altered, one was
            added, removed or repeated, or the secret differs (answer 403).
        SignatureExpiredError
            The signature matches but ``expires`` has passed, or is further ahead than
            ``max_lifetime`` allows (answer 403).
        """
        parts = urlsplit(path_with_query)
        pairs = _pairs(parts.query)
        given = [v for k, v in pairs if k == SIGNATURE_PARAM]
        if not given:
            raise SignatureMissingError(ERR_MISSING)
        if len(given) > 1 or _repeated(pairs) is not None:
            raise SignatureMismatchError(ERR_MISMATCH)
        expected = self._mac(_canonical(parts.path, pairs))
        # Compare bytes: compare_digest refuses non-ASCII str, and the given value
        # comes from the network.
        if not hmac.compare_digest(expected.encode(), given[0].encode()):
            raise SignatureMismatchError(ERR_MISMATCH)
        verified = {k: v for k, v in pairs if k != SIGNATURE_PARAM}
        try:
            expires = int(verified[EXPIRES_PARAM])
        except (KeyError, ValueError):
            # Only reachable with a correctly signed URL made without sign().
            raise SignatureMismatchError(ERR_NO_EXPIRY) from None
        now = self._clock()
        if now > expires:
            raise SignatureExpiredError(f"the signed URL expired {now - expires:.0f} s ago")
        if self.max_lifetime is not None and expires - now > self.max_lifetime + CLOCK_SKEW:
            raise SignatureExpiredError(
                f"the signed URL is valid for {expires - now:.0f} s more, beyond the "
                f"{self.max_lifetime:g} s this verifier accepts (max_lifetime)")
        return verified


def _positive_seconds(value: object) -> bool:
    # bool is an int; NaN is not greater than 0.
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and value > 0 and value != float("inf"))
