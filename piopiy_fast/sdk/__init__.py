"""The Piopiy call API: PCMO builders, the REST client, the stream webhooks.

Standard library only: placing calls loads neither numpy nor a WebSocket library.
"""

from .actions import Action, StreamAction
from .client import RestClient
from .webhooks import StreamWebhook, parse_stream_webhook

__all__ = ["Action", "RestClient", "StreamAction", "StreamWebhook", "parse_stream_webhook"]
