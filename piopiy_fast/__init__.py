"""piopiy_fast: Piopiy (TeleCMI) call API, WebSocket stream receiver and native audio core."""

__version__ = "0.1.0"
