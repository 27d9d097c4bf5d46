"""``RestClient``: place and control Piopiy calls over HTTPS, standard library only.

The API mirrors the official ``piopiy`` 1.0.x ``RestClient`` and posts the same JSON
to the same endpoints, with the sharp edges taken off:

- every request has a timeout (10 s by default);
- a request that never reached the server (connection refused, DNS failure, connect
  timeout) and an answer of 429 or 5xx are retried a bounded number of times with
  exponential backoff (``Retry-After`` is honoured up to ``max_backoff``);
- a request that was sent but got no answer in time is *not* retried: the server may
  have acted on it, and placing a call twice is worse than reporting a timeout;
- failures are typed: :class:`PiopiyValidationError` (names the argument),
  :class:`PiopiyNetworkError`, :class:`PiopiyAPIError` (status and parsed body);
- the app token never appears in an exception message, a repr or a log line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import PiopiyValidationError
from ._http import JsonPoster, Secret
from .actions import (
    BRIDGE_OPTIONS,
    Action,
    StreamAction,
    as_pcmo,
    bridge,
    check_number,
    check_options,
    digits_as_int,
    is_int,
)

__all__ = ["RestClient", "Voice"]

DEFAULT_BASE_URL = "https://rest.telecmi.com"
DEFAULT_ACTION_BASE_URL = "https://piopiy.telecmi.com"
IND_CALL_PATH = "/v2/ind_pcmo_make_call"
GLOBAL_CALL_PATH = "/v2/global_pcmo_make_call"
CALL_ACTION_PATH = "/v1/call/action"

CALL_OPTIONS = (*BRIDGE_OPTIONS, "extra_params")
# An Indian mobile number: 91, then 6, 7, 8 or 9, then nine digits.
_INDIAN_MOBILE = re.compile(r"91[6-9][0-9]{9}")

APP_ID_ENV = "PIOPIY_APP_ID"
APP_TOKEN_ENV = "PIOPIY_APP_TOKEN"
ERR_APP_ID = "app_id must be your Piopiy app ID (its digits, as an int or a str)"
ERR_APP_TOKEN = "app_token must be a non-empty str"
ERR_CMIUUID = "cmiuuid must be the call's non-empty id string"
ERR_PCMO_OR_NUMBER = (
    "pcmo_or_number must be a PCMO (a list of actions, its JSON string, or an Action / "
    "StreamAction) or a number / list of numbers to connect"
)
ERR_EXTRA_PARAMS = "extra_params must be a dict or a str"


def _from_env(name: str, argument: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise PiopiyValidationError(f"{argument} was not given and {name} is not set")
    return value


def _number(name: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise PiopiyValidationError(f"{name} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _base_url(name: str, value: object) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not (
        urlsplit(value).netloc
    ):
        raise PiopiyValidationError(f"{name} must be an http:// or https:// URL")
    return value.rstrip("/")


def _check_json(name: str, value: object) -> None:
    # Caught here, a set or a NaN in a hand-written PCMO names its argument instead
    # of surfacing as a TypeError from deep in the transport.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise PiopiyValidationError(f"{name} must be JSON-serialisable: {err}") from None


class Voice:
    """``client.voice``: place calls, and the call actions also found on the client."""

    __slots__ = ("_client",)

    def __init__(self, client: RestClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"Voice(app_id={self._client.app_id})"

    def call(
        self,
        to: int | str,
        piopiy_no: int | str,
        pcmo_or_number: Any,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Place an outbound call and run a PCMO on it, or connect it to a number.

        Parameters
        ----------
        to : int or str
            The number to call, international format without ``+`` (an int or a
            string of digits; sent as an int).
        piopiy_no : int
            Your Piopiy number (the caller ID). An Indian mobile number (91, then 6-9,
            then nine digits) is sent to the Indian endpoint, anything else to the
            global one.
        pcmo_or_number : list, str, Action, StreamAction, int or list of int
            A PCMO (a list of actions, the JSON string ``StreamAction.PCMO()``
            returns, or the builder itself), or the number(s) to connect the call to,
            which become one ``bridge`` action.
        options : dict, optional
            ``duration`` (max call seconds, default 5400) and ``extra_params`` (a dict
            or str sent back in the call's webhooks, default ``{}``); with numbers,
            also ``timeout``, ``loop`` and ``ring_type`` for the bridge (ignored with a
            PCMO, whose own actions carry them).

        Returns
        -------
        The API's answer, parsed from JSON.

        Raises
        ------
        PiopiyValidationError
            A bad argument, including a PCMO with no actions. Nothing is sent.
        PiopiyNetworkError, PiopiyAPIError
            See :class:`RestClient`.
        """
        to = check_number("to", to)
        piopiy_no = check_number("piopiy_no", piopiy_no)
        opts = check_options(options, CALL_OPTIONS)
        bridge_options = None
        if opts is not None:
            bridge_options = {k: opts[k] for k in BRIDGE_OPTIONS if k in opts}
        numbers = pcmo_or_number
        if is_int(numbers) or (
            isinstance(numbers, (list, tuple)) and numbers and all(is_int(n) for n in numbers)
        ):
            pcmo = [bridge(numbers, piopiy_no, bridge_options)]
        elif isinstance(pcmo_or_number, (list, tuple, str, bytes, Action, StreamAction)):
            pcmo = as_pcmo(pcmo_or_number)
            # A PCMO carries its own bridges; the bridge options are unused but still
            # checked, so a typo is reported the same way in both modes.
            bridge(to, piopiy_no, bridge_options)
        else:
            raise PiopiyValidationError(ERR_PCMO_OR_NUMBER)
        opts = opts or {}
        duration = opts.get("duration", 5400)
        if not is_int(duration) or duration < 1:
            raise PiopiyValidationError(f"duration must be an int >= 1, got {duration!r}")
        extra_params = opts.get("extra_params", {})
        if not isinstance(extra_params, (dict, str)):
            raise PiopiyValidationError(ERR_EXTRA_PARAMS)
        _check_json("pcmo_or_number", pcmo)
        _check_json("extra_params", extra_params)
        path = IND_CALL_PATH if _INDIAN_MOBILE.fullmatch(str(piopiy_no)) else GLOBAL_CALL_PATH
        client = self._client
        payload = {
            "appid": client.app_id,
            "secret": client._token.reveal(),
            "extra_params": extra_params,
            "from": piopiy_no,
            "duration": duration,
            "pcmo": pcmo,
            "to": to,
        }
        return client._transport.post(client.base_url + path, payload)

    def _action(self, cmiuuid: str, action: str) -> Any:
        if not isinstance(cmiuuid, str) or not cmiuuid:
            raise PiopiyValidationError(ERR_CMIUUID)
        client = self._client
        payload = {
            "appid": client.app_id,
            "secret": client._token.reveal(),
            "cmiuuid": cmiuuid,
            "action": action,
        }
        return client._transport.post(client.action_base_url + CALL_ACTION_PATH, payload)

    def hold(self, cmiuuid: str) -> Any:
        """Put the call ``cmiuuid`` on hold; returns the API's parsed answer."""
        return self._action(cmiuuid, "hold")

    def unhold(self, cmiuuid: str) -> Any:
        """Take the call ``cmiuuid`` off hold; returns the API's parsed answer."""
        return self._action(cmiuuid, "unhold")

    def toggle(self, cmiuuid: str) -> Any:
        """Toggle hold on the call ``cmiuuid`` (action ``holdToggle``)."""
        return self._action(cmiuuid, "holdToggle")

    def hangup(self, cmiuuid: str) -> Any:
        """Hang up the call ``cmiuuid``; returns the API's parsed answer."""
        return self._action(cmiuuid, "hangup")

    def transfer(self, cmiuuid: str) -> Any:
        """Send the ``transfer`` call action for ``cmiuuid``; returns the parsed answer."""
        return self._action(cmiuuid, "transfer")


class RestClient:
    """Client of the Piopiy REST API, as in the official SDK: ``client.voice.call``,
    ``client.hold`` / ``unhold`` / ``toggle`` / ``hangup`` / ``transfer``.

    Parameters
    ----------
    app_id : int or str
        Your Piopiy app ID, as an int or a string of digits (sent as an int). When
        left out, ``PIOPIY_APP_ID`` from the environment.
    app_token : str
        Your app's secret token; when left out, ``PIOPIY_APP_TOKEN``. It is sent in
        request bodies and nowhere else: no repr, exception message or log line
        contains it.
    base_url : str, optional
        Where calls are placed (``https://rest.telecmi.com``). When given without
        ``action_base_url``, call actions go there too, so one test server can stand
        in for both hosts.
    action_base_url : str, optional
        Where call actions go (``https://piopiy.telecmi.com``).
    timeout : float
        Seconds each attempt may wait to connect, and then for each read of the
        answer; default 10.
    retries : int
        Further attempts after a connection failure, a 429 or a 5xx; default 2.
    backoff : float
        Seconds before the first retry, doubling each time; default 0.5.
    max_backoff : float
        Upper bound of one wait, ``Retry-After`` included; default 8.

    Every method returns the API's answer parsed from JSON (its text when not
    JSON, None when empty) and raises :class:`PiopiyValidationError` before
    sending anything for a bad argument, :class:`PiopiyNetworkError` when no answer
    came, :class:`PiopiyAPIError` for an error status (4xx at once; 429 and 5xx
    once the retries are spent).
    """

    __slots__ = ("app_id", "base_url", "action_base_url", "voice", "_token", "_transport")

    def __init__(
        self,
        app_id: int | str | None = None,
        app_token: str | None = None,
        *,
        base_url: str | None = None,
        action_base_url: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        if app_id is None:
            app_id = _from_env(APP_ID_ENV, "app_id")
        if app_token is None:
            app_token = _from_env(APP_TOKEN_ENV, "app_token")
        number = digits_as_int(app_id)
        if number is None:
            raise PiopiyValidationError(f"{ERR_APP_ID}, got {app_id!r}")
        app_id = number
        if not isinstance(app_token, str) or not app_token:
            raise PiopiyValidationError(ERR_APP_TOKEN)
        if not is_int(retries) or retries < 0:
            raise PiopiyValidationError(f"retries must be an int >= 0, got {retries!r}")
        timeout = _number("timeout", timeout, 0.001)
        backoff = _number("backoff", backoff, 0)
        max_backoff = _number("max_backoff", max_backoff, 0)
        self.app_id = app_id
        self._token = Secret(app_token)
        if base_url is None:
            self.base_url = DEFAULT_BASE_URL
            self.action_base_url = DEFAULT_ACTION_BASE_URL
        else:
            self.base_url = _base_url("base_url", base_url)
            self.action_base_url = self.base_url
        if action_base_url is not None:
            self.action_base_url = _base_url("action_base_url", action_base_url)
        self._transport = JsonPoster(self._token, timeout, retries, backoff, max_backoff)
        self.voice = Voice(self)

    def __repr__(self) -> str:
        return (
            f"RestClient(app_id={self.app_id}, base_url={self.base_url!r}, "
            f"action_base_url={self.action_base_url!r})"
        )

    def hold(self, cmiuuid: str) -> Any:
        """Put the call ``cmiuuid`` on hold (same as ``voice.hold``)."""
        return self.voice.hold(cmiuuid)

    def unhold(self, cmiuuid: str) -> Any:
        """Take the call ``cmiuuid`` off hold (same as ``voice.unhold``)."""
        return self.voice.unhold(cmiuuid)

    def toggle(self, cmiuuid: str) -> Any:
        """Toggle hold on the call ``cmiuuid`` (same as ``voice.toggle``)."""
        return self.voice.toggle(cmiuuid)

    def hangup(self, cmiuuid: str) -> Any:
        """Hang up the call ``cmiuuid`` (same as ``voice.hangup``)."""
        return self.voice.hangup(cmiuuid)

    def transfer(self, cmiuuid: str) -> Any:
        """Send the ``transfer`` call action for ``cmiuuid`` (same as ``voice.transfer``)."""
        return self.voice.transfer(cmiuuid)
