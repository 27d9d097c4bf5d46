"""The stream webhooks: ``stream_connected`` / ``STREAM_DISCONNECTED`` HTTP callbacks.

Piopiy reports a stream's lifecycle to the app's callback URL as well as on the
socket; :func:`parse_stream_webhook` reads those bodies so an app can join them to
its ``CallStream`` by call id.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PiopiyValidationError
from ..stream.wire import int_of, text_of


@dataclass(frozen=True, slots=True)
class StreamWebhook:
    """A ``stream_connected`` / ``STREAM_DISCONNECTED`` webhook, joined to calls by ``call_id``.

    ``event`` is ``"connected"``, ``"disconnected"`` or the lower-cased status as sent;
    ``code`` and ``reason`` come from ``ws_status`` when it carries a close message.
    """

    event: str
    call_id: str | None
    leg: str | None
    ws_status: str | None
    code: int | None
    reason: str | None
    raw: dict[str, Any]

    @property
    def connected(self) -> bool:
        return self.event == "connected"


def parse_stream_webhook(payload: Mapping[str, Any] | str | bytes) -> StreamWebhook:
    """Read a stream webhook body: a dict, JSON text, or a form-encoded body.

    Raises ``PiopiyValidationError`` when the body is neither JSON nor a form.
    """
    if isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload).decode("utf-8", "replace")
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = dict(urllib.parse.parse_qsl(payload, keep_blank_values=True))
            if not parsed:
                raise PiopiyValidationError("webhook body is neither JSON nor a form") from None
        payload = parsed
    if not isinstance(payload, Mapping):
        raise PiopiyValidationError("webhook body must be a JSON object")
    raw = dict(payload)
    status = str(raw.get("status", raw.get("event", ""))).lower()
    event = {"stream_connected": "connected", "stream_disconnected": "disconnected"}.get(
        status, status)
    ws = raw.get("ws_status")
    if isinstance(ws, str):
        try:
            ws = json.loads(ws)
        except ValueError:
            ws = {"status": ws}
    ws_state = code = reason = None
    if isinstance(ws, Mapping):
        ws_state = text_of(ws.get("status"))
        message = ws.get("message")
        if isinstance(message, Mapping):
            code = int_of(message.get("code"))
            reason = text_of(message.get("reason"))
    return StreamWebhook(event=event, call_id=text_of(raw.get("cmiuuid")),
                         leg=text_of(raw.get("leg")), ws_status=ws_state, code=code,
                         reason=reason, raw=raw)
