"""N calls streamed the way FreeSWITCH's ``mod_audio_stream`` streams them, into any
WebSocket server, with a report in the same shape as :class:`~.simulator.Simulator`'s.

Each call plays a two-party conversation (a script with known turns, or a stereo
WAV) through :class:`~.mod_audio_stream.AudioStream` with the chosen client
generation, layout and rate. The metadata text is what the platform would pass on
the start command: by default ``{"call_id": "<id>"}``, and the module adds nothing
to it (a given text may hold ``{call_id}``, replaced per call).
"""

from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import PiopiyValidationError
from .conversation import Conversation, default_script, from_wav, scripted
from .mod_audio_stream import AudioStream, StreamStart
from .simulator import SentCall, SimulationReport

__all__ = ["PeerSimulator", "describe_outcome"]


def describe_outcome(stream: AudioStream) -> str | None:
    """What went wrong with a call's stream, in words; None when it closed normally
    (at its end, or when the run was stopped)."""
    events = stream.events
    total = stream.frames_total * stream.frame_samples / stream.start.rate
    done = stream.position * stream.frame_samples / stream.start.rate
    problems = []
    for code, reason in events.closes_sent:
        if code != 1000:
            problems.append(f"closed {code} {reason}".rstrip())
    for code, reason, who in events.closed_by:
        if who == "server":
            problems.append(f"closed by the receiver ({code} {reason}".rstrip() + ")")
        elif who == "transport":
            problems.append("connection lost (1006 Abnormal closure)")
    if events.connections == 0:
        problems.append(events.errors[-1] if events.errors else "never connected")
    elif events.connections > 1:
        problems.append(f"reconnected {events.connections - 1} time(s)")
    if not stream.stopped_early and stream.position < stream.frames_total:
        problems.append(f"stream ended after {done:.2f} of {total:.2f} s")
    if events.dropped and not problems:
        problems.append(f"{events.dropped} frame(s) dropped")
    return "; ".join(problems) or None


class PeerSimulator:
    """``calls`` concurrent mod_audio_stream streams into ``url``.

    Args:
        url: the stream URL as the platform passes it (checked as the module does).
        calls: how many calls, each with its own conversation (seeded by index).
        client: ``"current"`` (libwsc) or ``"ixwebsocket"``.
        layout: ``"mono"``, ``"mixed"`` or ``"stereo"``.
        rate: the start command's rate argument (``"8k"``, ``"16000"``...).
        party: whose leg a ``mono`` stream reads.
        seconds: length of each call (a WAV's length when None and ``wav`` is given).
        realtime: pace on the clock, or send as fast as the socket takes.
        script: turns ``(party, start, end)`` in seconds (a natural exchange by default).
        wav: a stereo WAV (left caller, right callee) instead of synthetic speech.
        metadata: the start command's metadata (``{call_id}`` is replaced).
        Other keywords go to :class:`AudioStream` (``pauses``, ``heartbeat``,
        ``deflate``, ``reconnect``, ``headers``, ``stop_text``, ``buffer_ms``...).

    Raises:
        InvalidStart: the module would refuse the start command.
    """

    def __init__(self, url: str, *, calls: int = 1, client: str = "current",
                 layout: str = "mono", rate: str = "8000", party: str = "caller",
                 seconds: float | None = 10.0, realtime: bool = True,
                 script: Sequence[tuple[str, float, float]] | None = None,
                 wav: str | Path | None = None, seed: int = 0, metadata: str | None = None,
                 call_id_prefix: str = "sim", headers: Mapping[str, str] | None = None,
                 ssl: ssl_module.SSLContext | None = None, **stream_options: object) -> None:
        if calls < 1:
            raise PiopiyValidationError(f"calls must be at least 1, not {calls}")
        if seconds is None and wav is None:
            raise PiopiyValidationError("seconds is needed for synthetic audio")
        self.start = StreamStart.parse(url, layout, rate, "")
        self.url = url
        self.calls = calls
        self.client = client
        self.party = party
        self.seconds = seconds
        self.realtime = realtime
        self.script = list(script) if script is not None else None
        self.seed = seed
        self.metadata = metadata
        self.call_id_prefix = call_id_prefix
        self.headers = dict(headers or {})
        self.ssl = ssl
        self.stream_options = stream_options
        self._wav = None if wav is None else from_wav(wav, self.start.rate, seconds)
        self.streams: list[AudioStream] = []
        self._started = time.perf_counter()

    def call_id(self, index: int) -> str:
        return f"{self.call_id_prefix}-{index + 1:03d}"

    def conversation(self, index: int) -> Conversation:
        """Call ``index``'s conversation (the same for the same seed and index)."""
        if self._wav is not None:
            return self._wav
        assert self.seconds is not None
        script = self.script if self.script is not None else default_script(
            self.seconds, (self.seed, index))
        return scripted(script, self.start.rate, self.seconds, (self.seed, index))

    def _metadata(self, call_id: str) -> str:
        if self.metadata is None:
            return json.dumps({"call_id": call_id})
        return self.metadata.replace("{call_id}", call_id)

    def prepare(self) -> None:
        """Make every call's stream (``run`` does it otherwise)."""
        self.streams = []
        for i in range(self.calls):
            start = StreamStart(self.url, self.start.layout, self.start.rate,
                                self._metadata(self.call_id(i)))
            self.streams.append(AudioStream(
                start, self.conversation(i), client=self.client, party=self.party,
                realtime=self.realtime, headers=self.headers, ssl=self.ssl,
                **self.stream_options))  # type: ignore[arg-type]

    async def run(self) -> SimulationReport:
        """Run every call concurrently; return what was sent."""
        if len(self.streams) != self.calls or any(s.started for s in self.streams):
            self.prepare()
        self._started = time.perf_counter()
        await asyncio.gather(*(s.run() for s in self.streams))
        return self.report()

    @property
    def progress(self) -> tuple[int, float]:
        """(calls finished, audio seconds sent so far), readable while running."""
        finished = sum(1 for s in self.streams if s.finished is not None)
        return finished, sum(len(s.events.sent_tags) * s.frame_samples / s.start.rate
                             for s in self.streams)

    def report(self) -> SimulationReport:
        """What each call sent: exactly the samples written, per channel."""
        calls = []
        for i, s in enumerate(self.streams):
            audio = s.sent_audio()
            call = SentCall(self.call_id(i), s.start.layout, s.start.rate, audio,
                            total_samples=s.frames_total * s.frame_samples,
                            frames=s.events.frames, bytes=s.events.bytes,
                            started=s.started, finished=s.finished,
                            error=describe_outcome(s), received=list(s.events.received),
                            stopped=s.stopped_early)
            calls.append(call)
        return SimulationReport(calls, time.perf_counter() - self._started, self.realtime)
