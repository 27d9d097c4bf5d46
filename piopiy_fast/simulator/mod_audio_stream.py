"""FreeSWITCH's ``mod_audio_stream`` streaming one call: the start command's checks,
the media clock, pauses, the layout, and one of its two WebSocket clients.

``uuid_audio_stream <uuid> start <url> <mono|mixed|stereo> <8k|16k|rate> [metadata]``
checks the mix type, the URL (``validate_ws_uri``) and the rate (a multiple of 8000),
then attaches a media bug that hands over one frame of audio every 20 ms
(``STREAM_BUFFER_SIZE``, a multiple of 20 ms, joins several into one message). The
metadata is any text the platform passes; the module sends it as it is, adding
nothing. ``pause`` discards audio until ``resume``: nothing is sent meanwhile.
``stop [text]`` sends the text, then closes with 1000 "Normal closure".
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .conversation import Conversation
from .ixwebsocket import IxWebSocketClient
from .layouts import LAYOUTS, channel_names, frame_bytes
from .libwsc import LibwscClient
from .peer_events import PeerEvents
from .ws_uri import InvalidStart, parse_sampling, split_ws_uri

__all__ = ["CLIENTS", "AudioStream", "StreamStart"]

CLIENTS = ("current", "ixwebsocket")


@dataclass(frozen=True)
class StreamStart:
    """A start command the module accepted."""

    url: str
    layout: str
    rate: int
    metadata: str

    @classmethod
    def parse(cls, url: str, mix: str, rate: str | None = None,
              metadata: str | None = None) -> StreamStart:
        """Check the arguments as the module does, in its order: the mix type, then
        the URL, then the rate.

        Raises:
            InvalidStart: with the module's message.
        """
        if mix not in LAYOUTS:
            raise InvalidStart(f"invalid mix type: {mix}, must be mono, mixed, or stereo")
        split_ws_uri(url)
        return cls(url, mix, parse_sampling(rate), metadata or "")


class AudioStream:
    """One call's stream of ``conversation`` (at the start's rate) to ``start.url``.

    Args:
        start: the accepted start command.
        conversation: both parties' audio at ``start.rate``.
        client: ``"current"`` (libwsc) or ``"ixwebsocket"`` (releases up to mid-2025).
        party: whose leg a ``mono`` stream reads (the bugged leg; caller by default).
        buffer_ms: ``STREAM_BUFFER_SIZE``: audio per message, a multiple of 20.
        realtime: pace frames on the clock (else as fast as the socket takes them).
        pauses: ``(start, end)`` seconds of the call during which the module is paused.
        preconnect_frames: frames the media bug hands over before the connection had
            a chance to open (without real time, how long "connecting" lasted).
        heartbeat: seconds between pings (0: none).
        deflate: libwsc offers permessage-deflate.
        reconnect: IXWebSocket's automatic reconnection.
        headers: ``STREAM_EXTRA_HEADERS``.
        stop_text: the text ``stop`` sends before closing.
        mask_key: a source of 4-byte mask keys (random when None).
    """

    def __init__(self, start: StreamStart, conversation: Conversation, *,
                 client: str = "current", party: str = "caller", buffer_ms: int = 20,
                 realtime: bool = True, pauses: Sequence[tuple[float, float]] = (),
                 preconnect_frames: int = 0, heartbeat: float = 0, deflate: bool = False,
                 reconnect: bool = True, headers: Mapping[str, str] | None = None,
                 stop_text: str | None = None, connect_timeout: float = 1.0,
                 ssl: ssl_module.SSLContext | None = None,
                 mask_key: Callable[[], bytes] | None = None) -> None:
        if client not in CLIENTS:
            raise InvalidStart(f"client must be one of {', '.join(CLIENTS)}, not {client!r}")
        if conversation.rate != start.rate:
            raise InvalidStart(f"the conversation is at {conversation.rate} Hz, "
                               f"the stream at {start.rate} Hz")
        if buffer_ms < 20 or buffer_ms % 20:
            raise InvalidStart(f"buffer_ms must be a multiple of 20, not {buffer_ms}")
        self.start = start
        self.conversation = conversation
        self.party = party
        self.channels = channel_names(start.layout, party)
        self.frame_samples = start.rate // 50 * (buffer_ms // 20)
        self.realtime = realtime
        self.pauses = [(int(a * start.rate), int(b * start.rate)) for a, b in pauses]
        self.preconnect_frames = preconnect_frames
        self.stop_text = stop_text
        target = split_ws_uri(start.url)
        self.client: LibwscClient | IxWebSocketClient
        if client == "current":
            self.client = LibwscClient(target, start.metadata, deflate=deflate,
                                       heartbeat=heartbeat, connect_timeout=connect_timeout,
                                       headers=headers, ssl=ssl, mask_key=mask_key)
        else:
            self.client = IxWebSocketClient(target, start.metadata, heartbeat=heartbeat,
                                            reconnect=reconnect, headers=headers, ssl=ssl,
                                            mask_key=mask_key)
        self.frames_total = conversation.samples // self.frame_samples
        self.position = 0  # frames handed over by the media bug so far
        self.paused_frames = 0
        self.started: float | None = None
        self.finished: float | None = None
        self.stopped_early = False

    @property
    def events(self) -> PeerEvents:
        return self.client.events

    def frame(self, index: int) -> bytes:
        """Message ``index`` as the module sends it."""
        a = index * self.frame_samples
        b = a + self.frame_samples
        if self.start.layout == "mono":
            return frame_bytes("mono", self.conversation.party(self.party)[a:b])
        return frame_bytes(self.start.layout, self.conversation.caller[a:b],
                           self.conversation.callee[a:b])

    def sent_audio(self) -> dict[str, np.ndarray]:
        """Per channel, exactly the samples written to the server, in order."""
        tags = self.events.sent_tags
        out = {}
        for name in self.channels:
            if name == "mixed":
                source = np.clip(self.conversation.caller.astype(np.int32)
                                 + self.conversation.callee, -32768, 32767).astype(np.int16)
            else:
                source = self.conversation.party(name)
            n = self.frame_samples
            pieces = [source[t * n:(t + 1) * n] for t in tags]
            out[name] = np.concatenate(pieces) if pieces else np.zeros(0, np.int16)
        return out

    def _paused(self, index: int) -> bool:
        a = index * self.frame_samples
        return any(p0 <= a < p1 for p0, p1 in self.pauses)

    async def run(self) -> None:
        """Stream the whole conversation, then stop (also when cancelled: the module's
        cleanup runs when the call ends, however it ends)."""
        self.started = time.time()
        self.client.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            if not self.realtime:
                for _ in range(min(self.preconnect_frames, self.frames_total)):
                    self._hand_over()
                await self.events.opened.wait()
            while self.position < self.frames_total:
                if self.client.state in ("failed", "stopped") or (
                        self.client.generation == "current" and self.client.state == "closed"):
                    break  # the stream has ended (libwsc: nothing more will go out)
                if self.realtime:
                    # The media bug hands a frame over once its audio has been heard.
                    delay = t0 + (self.position + 1) * self.frame_samples / self.start.rate
                    delay -= loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                self._hand_over()
                ws = getattr(self.client, "_ws", None)
                if ws is not None and not ws.writer.is_closing():
                    try:
                        await ws.drain()
                    except (ConnectionError, OSError):
                        pass
        except asyncio.CancelledError:
            self.stopped_early = True
            await self.client.stop(self.stop_text)
            self.finished = time.time()
            raise
        await self.client.stop(self.stop_text)
        self.finished = time.time()

    def _hand_over(self) -> None:
        index = self.position
        self.position += 1
        if self._paused(index):
            self.paused_frames += 1
            return
        self.client.send_audio(self.frame(index), index)
