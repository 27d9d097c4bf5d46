"""Play Piopiy's side of a stream: N concurrent calls into any WebSocket server.

Each simulated call connects, sends a JSON start event, then streams L16 audio
(speech-like synthetic audio, or a WAV file) in the chosen listen mode and rate,
either in real time (20 ms frames on a steady clock) or as fast as the socket takes
it, and closes normally. The report keeps exactly what was sent, sample for sample,
so a receiver's output can be checked against it; text messages the server sends
back (control messages, ``streamAudio``) are kept too.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import ssl as ssl_module
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from ..errors import PiopiyValidationError
from ..redaction import redacting_logger
from ..stream.wire import CHANNELS, LISTEN_MODES, SAMPLE_RATES, StreamFormat, start_event
from .conversation import default_script, scripted
from .synthetic import speech_like
from .wavfile import load_wav

# What each channel of a stream is called, in the order it is interleaved.
# The client traces its request (URL query, Authorization header) at debug level.
_CLIENT_LOGGER = redacting_logger("piopiy_fast.simulator.websockets")

CHANNEL_ORDER = {"caller": ("caller",), "callee": ("callee",), "both": CHANNELS}


# Synthetic audio is made for this long and played round: memory per call stays the
# same however long the call.
CYCLE_SECONDS = 10.0


@dataclass
class SentCall:
    """What one simulated call sent (and received back).

    ``audio`` maps each channel name to the int16 samples it plays, from the start and
    round again until ``total_samples`` per channel; in ``both`` mode the channels went
    out interleaved, caller first. ``sent(channel)`` is exactly what went out. ``error``
    says why a call failed: refused, dropped, or closed by the receiver before all its
    audio was sent (with the close code). ``stopped`` says the run was cancelled
    (Ctrl-C) before the call's end: it did not run its course, though nothing failed.
    """

    call_id: str
    listen_mode: str
    sample_rate: int
    audio: dict[str, np.ndarray]
    total_samples: int = 0
    frames: int = 0
    bytes: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    received: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def samples_sent(self) -> int:
        """Samples sent per channel (the audio may be longer if the call failed)."""
        channels = len(self.audio)
        return self.bytes // (2 * channels) if channels else 0

    @property
    def seconds(self) -> float:
        """Audio sent, in seconds."""
        return self.samples_sent / self.sample_rate

    def sent(self, channel: str) -> np.ndarray:
        """The samples of ``channel`` that actually went out."""
        return np.resize(self.audio[channel], self.samples_sent)

    def summary(self) -> dict[str, Any]:
        """Counts and a SHA-256 of each channel's sent samples (int16 little-endian)."""
        return {
            "call_id": self.call_id, "listen_mode": self.listen_mode,
            "sample_rate": self.sample_rate, "frames": self.frames, "bytes": self.bytes,
            "samples": self.samples_sent, "seconds": round(self.seconds, 6),
            "error": self.error, "stopped": self.stopped,
            "received_messages": len(self.received),
            "sha256": {name: hashlib.sha256(self.sent(name).astype("<i2").tobytes()).hexdigest()
                       for name in self.audio},
        }


@dataclass
class SimulationReport:
    """Everything a simulation sent: one :class:`SentCall` per connection."""

    calls: list[SentCall]
    wall_seconds: float
    realtime: bool

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.calls)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.calls)

    @property
    def seconds(self) -> float:
        """Audio seconds sent, all calls together."""
        return sum(c.seconds for c in self.calls)

    @property
    def failed(self) -> list[SentCall]:
        return [c for c in self.calls if c.error is not None]

    def to_json(self) -> str:
        return json.dumps({
            "realtime": self.realtime, "wall_seconds": round(self.wall_seconds, 6),
            "frames": self.frames, "bytes": self.bytes,
            "calls": [c.summary() for c in self.calls],
        }, indent=2)


class Simulator:
    """N concurrent simulated Piopiy streams into ``url``.

    ``frame_samples`` (per channel) defaults to ``frame_ms`` of audio; a sequence of
    sizes is used in turn, to send frames of awkward sizes. ``start_event`` sends a
    JSON start event naming the call id and format first. ``headers`` are added to
    each opening request (an ``Authorization`` header, say). ``ssl`` is the TLS context
    for a ``wss://`` URL (one that trusts a private certificate, say; the system's
    defaults when None). ``wav`` streams a file instead of synthetic audio (all its
    length when ``seconds`` is None).
    """

    def __init__(self, url: str, *, calls: int = 1, listen_mode: str = "caller",
                 sample_rate: int = 8000, seconds: float | None = 1.0, realtime: bool = False,
                 frame_ms: float = 20.0, frame_samples: int | Sequence[int] | None = None,
                 wav: str | Path | None = None, seed: int = 0, start_event: bool = True,
                 call_id_prefix: str = "sim", headers: Mapping[str, str] | None = None,
                 open_timeout: float = 10.0, ssl: ssl_module.SSLContext | None = None) -> None:
        if listen_mode not in LISTEN_MODES:
            raise PiopiyValidationError(
                f"listen_mode must be one of {', '.join(LISTEN_MODES)}, not {listen_mode!r}")
        if sample_rate not in SAMPLE_RATES:
            raise PiopiyValidationError(
                f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}, "
                f"not {sample_rate!r}")
        if calls < 1:
            raise PiopiyValidationError(f"calls must be at least 1, not {calls}")
        if seconds is None and wav is None:
            raise PiopiyValidationError("seconds is needed for synthetic audio")
        if frame_samples is None:
            frame_samples = max(1, int(round(sample_rate * frame_ms / 1000)))
        sizes = [frame_samples] if isinstance(frame_samples, int) else list(frame_samples)
        if not sizes or min(sizes) < 1:
            raise PiopiyValidationError("frame sizes must be positive")
        self.url = url
        self.calls = calls
        self.format = StreamFormat(listen_mode, sample_rate)
        self.seconds = seconds
        self.realtime = realtime
        self.frame_sizes = sizes
        self.seed = seed
        self.start_event = start_event
        self.call_id_prefix = call_id_prefix
        self.headers = dict(headers or {})
        self.open_timeout = open_timeout
        self.ssl = ssl
        self._wav = None if wav is None else load_wav(wav, sample_rate, seconds)
        self._sent: list[SentCall] = []
        self._started = time.perf_counter()

    def call_id(self, index: int) -> str:
        return f"{self.call_id_prefix}-{index + 1:03d}"

    def audio_for(self, index: int) -> tuple[dict[str, np.ndarray], int]:
        """The channels call ``index`` plays (deterministic: seed, call, channel) and how
        many samples of each it sends: a WAV file's channels once (a mono file on every
        channel), or at most ``CYCLE_SECONDS`` of synthetic speech played round. In
        ``both`` mode the two parties take turns (a scripted conversation, see
        :func:`~.conversation.default_script`) rather than talk at once."""
        names = CHANNEL_ORDER[self.format.listen_mode]
        if self._wav is not None:
            channels = {name: self._wav[min(i, len(self._wav) - 1)]
                        for i, name in enumerate(names)}
            return channels, len(self._wav[0])
        assert self.seconds is not None  # checked in __init__
        rate = self.format.sample_rate
        cycle = min(self.seconds, CYCLE_SECONDS)
        if len(names) == 2:
            talk = scripted(default_script(cycle, (self.seed, index)), rate, cycle,
                            (self.seed, index))
            return {"caller": talk.caller, "callee": talk.callee}, int(round(self.seconds * rate))
        return ({name: speech_like(cycle, rate, (self.seed, index, i))
                 for i, name in enumerate(names)}, int(round(self.seconds * rate)))

    @property
    def progress(self) -> tuple[int, float]:
        """(calls finished, audio seconds sent so far), readable while running."""
        finished = sum(1 for c in self._sent if c.finished is not None)
        return finished, sum(c.seconds for c in self._sent)

    def prepare(self) -> None:
        """Make every call's audio now (``run`` does it otherwise)."""
        self._sent = [SentCall(self.call_id(i), self.format.listen_mode,
                               self.format.sample_rate, *self.audio_for(i))
                      for i in range(self.calls)]

    async def run(self) -> SimulationReport:
        """Run every call concurrently; return what was sent."""
        if len(self._sent) != self.calls or any(c.started for c in self._sent):
            self.prepare()
        self._started = time.perf_counter()
        await asyncio.gather(*(self._run_call(call) for call in self._sent))
        return self.report()

    def report(self) -> SimulationReport:
        """What has been sent so far (all of it once ``run`` has returned; after a
        cancelled run, everything up to the cancellation)."""
        return SimulationReport(list(self._sent), time.perf_counter() - self._started,
                                self.realtime)

    async def _run_call(self, call: SentCall) -> None:
        sources = [call.audio[name] for name in CHANNEL_ORDER[call.listen_mode]]
        total = call.total_samples
        rate = call.sample_rate
        # websockets takes no ssl argument for ws:// and makes its own default for wss://
        tls: dict[str, Any] = {} if self.ssl is None else {"ssl": self.ssl}
        call.started = time.time()
        try:
            async with connect(self.url, additional_headers=self.headers, compression=None,
                               logger=_CLIENT_LOGGER, open_timeout=self.open_timeout,
                               max_size=None, **tls) as ws:
                reader = asyncio.ensure_future(_collect(ws, call.received))
                if self.start_event:
                    await ws.send(start_event(call.call_id, self.format))
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                position = 0  # samples per channel sent so far
                for size in itertools.cycle(self.frame_sizes):
                    if position >= total or ws.close_code is not None:
                        break
                    if self.realtime:
                        # Absolute deadlines on the loop's monotonic clock: no drift.
                        delay = t0 + position / rate - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    count = min(size, total - position)
                    frame = _frame(sources, position, count)  # made as it is sent
                    # Counted before the await: a send cancelled while it waits for the
                    # socket to drain has already handed its frame to the transport.
                    call.frames += 1
                    call.bytes += len(frame)
                    try:
                        await ws.send(frame)
                    except ConnectionClosedOK:
                        call.frames -= 1  # refused before anything was written
                        call.bytes -= len(frame)
                        break
                    except ConnectionClosed:
                        call.frames -= 1
                        call.bytes -= len(frame)
                        raise
                    position += count
                if position < total:
                    call.error = (f"closed by the receiver ({ws.close_code} "
                                  f"{ws.close_reason or ''}".rstrip() + f") after "
                                  f"{position / rate:.2f} of {total / rate:.2f} s")
                await ws.close()
                await reader
        except asyncio.CancelledError:
            call.stopped = True  # Ctrl-C: the call did not run its course
            raise
        except Exception as exc:  # refused, reset, timed out, answered 401/403/503...
            call.error = f"{type(exc).__name__}: {exc}"
        finally:
            call.finished = time.time()


def _frame(sources: list[np.ndarray], start: int, count: int) -> bytes:
    """``count`` samples of each channel from ``start`` (round the end of each source
    again), interleaved as L16."""
    where = np.arange(start, start + count)
    if len(sources) == 1:
        return np.take(sources[0], where, mode="wrap").astype("<i2").tobytes()
    pairs = np.empty((count, len(sources)), dtype="<i2")
    for channel, source in enumerate(sources):
        pairs[:, channel] = np.take(source, where, mode="wrap")
    return pairs.tobytes()


async def _collect(ws: Any, into: list[str]) -> None:
    try:
        async for message in ws:
            if isinstance(message, str):
                into.append(message)
    except ConnectionClosed:
        pass


async def simulate(url: str, **options: Any) -> SimulationReport:
    """Run a :class:`Simulator` with ``options`` and return its report."""
    return await Simulator(url, **options).run()


def write_sent(report: SimulationReport, directory: str | Path) -> list[Path]:
    """Write what each call sent as mono WAVs (``<call id>.<channel>.wav``; a mixed
    stream's one channel is ``mixed``)."""
    from ..receiver.recorder import Recorder
    recorder = Recorder(directory)
    paths = []
    for call in report.calls:
        for name in call.audio:
            if name not in CHANNELS:
                paths.append(_write_wav(Path(directory) / f"{call.call_id}.{name}.wav",
                                        call.sent(name), call.sample_rate))
                continue
            with recorder.open(call.call_id, name, call.sample_rate) as sink:
                sink.write(call.sent(name))
            paths.append(sink.path)
    return paths



def _write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    import wave
    with open(path, "xb") as file, wave.open(file, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path
