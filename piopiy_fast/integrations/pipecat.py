# mypy: disallow-subclassing-any=False
# (Pipecat's classes are Any to mypy when pipecat-ai is not installed.)
"""A Piopiy stream in a Pipecat pipeline: :class:`PiopiyFrameSerializer`.

Use it with any of Pipecat's WebSocket transports (the server transport, or the
FastAPI one behind your own endpoint) on the socket Piopiy opens to ``ws_url``::

    serializer = PiopiyFrameSerializer(params=PiopiyFrameSerializer.InputParams(
        piopiy_sample_rate=8000, listen_mode="caller"))
    transport = SingleClientWebsocketServerTransport(
        SingleClientWebsocketServerParams(
            serializer=serializer, audio_in_enabled=True, audio_out_enabled=True,
            audio_out_10ms_chunks=serializer.audio_out_10ms_chunks),
        host="0.0.0.0", port=8765)

Received audio (binary L16 frames) goes through the native resampler to the
pipeline's input rate. Its state lives as long as the call and is never cleared
on silence or pauses, so the first word after a pause is not clipped. In ``both``
mode the serializer delivers the channel asked for: the caller, the callee, or
both as two interleaved channels.

Replies are batched (see :class:`~piopiy_fast.stream.replies.ReplyBatcher`): the
platform plays every ``streamAudio`` message as a whole, so Pipecat's 40 ms
chunks, sent one by one, would play with a gap after each. One Pipecat output
chunk gives at most one message, so the end of an utterance goes out without
waiting only when the transport's chunks are at least a batch long: set the
transport's ``audio_out_10ms_chunks`` to :attr:`audio_out_10ms_chunks` (30 for
the default 300 ms). Shorter chunks are collected until a batch is full.

Pipecat's transports send one message per frame they serialize. So an
``EndFrame`` or ``CancelFrame`` gives ``{"action": "stop"}`` and nothing else:
audio still pending then is dropped. By then Pipecat has already sent its end
silence (``audio_out_end_silence_secs``, 2 s by default) through the serializer,
which carries every audible sample out before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

import numpy as np

try:
    from pipecat.frames.frames import (
        CancelFrame,
        EndFrame,
        Frame,
        InputAudioRawFrame,
        InputTransportMessageFrame,
        InterruptionFrame,
        OutputAudioRawFrame,
        OutputTransportMessageFrame,
        OutputTransportMessageUrgentFrame,
    )
    from pipecat.processors.frame_processor import FrameProcessorSetup
    from pipecat.serializers.base_serializer import FrameSerializer
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "piopiy_fast.integrations.pipecat needs pipecat-ai: "
        "pip install 'piopiy-fast[pipecat]'") from exc

from ..audio import Resampler, int16_to_l16, l16_deinterleave, l16_to_int16
from ..errors import PiopiyValidationError
from ..sdk.client import RestClient
from ..stream.events import parse_text_frame
from ..stream.replies import DEFAULT_BATCH_MS, ReplyBatcher
from ..stream.wire import BREAK, SAMPLE_RATES, STOP

logger = logging.getLogger("piopiy_fast.pipecat")


class PiopiyFrameSerializer(FrameSerializer):
    """Serializer between Pipecat frames and a Piopiy (TeleCMI) live stream.

    Parameters
    ----------
    call_id : str, optional
        The call's ``cmiuuid``. When not given, it is taken from the first text
        message that names one.
    rest_client : RestClient, optional
        With a call id, an ``EndFrame`` or ``CancelFrame`` also hangs the call up
        through the REST API (once; failures are logged, never raised).
    params : PiopiyFrameSerializer.InputParams, optional
        The stream's format and the reply batching.

    Received frames: binary -> ``InputAudioRawFrame`` at the pipeline's input rate
    (a frame without whole samples is counted in ``decode_errors`` and skipped);
    text that is JSON -> ``InputTransportMessageFrame``; other text is ignored.
    Nothing received ever raises. A JSON message naming the format (``listen_mode``,
    ``sample_rate``) before the first audio frame sets it.

    Sent frames: ``OutputAudioRawFrame`` -> batched ``streamAudio`` at 8000 or
    16000 Hz; ``InterruptionFrame`` -> ``{"action": "break"}``, pending audio
    dropped; ``EndFrame`` / ``CancelFrame`` -> ``{"action": "stop"}`` (and the
    optional hang-up); transport message frames -> their message as JSON text, a
    string as it is (a PCMO from ``StreamAction.PCMO()`` hands the call over).
    """

    class InputParams(FrameSerializer.InputParams):
        """Configuration of :class:`PiopiyFrameSerializer`.

        Parameters:
            piopiy_sample_rate: The stream's rate, the ``voice_quality`` of the stream
                action: 8000, 12000 or 16000 (any rate the native core supports).
            listen_mode: The stream action's ``listen_mode``: caller, callee or both.
            channel: In ``both`` mode, what the pipeline gets: ``"caller"`` (default),
                ``"callee"``, or ``"both"`` as two channels (caller first). A mono
                stream is delivered as it comes.
            swap_channels: In ``both`` mode, take channel 1 as the caller.
            sample_rate: The pipeline's input rate; by default the pipeline's own.
            batch_ms: Duration of one reply message (at most 50 KiB of audio).
            quality: Resampler preset, ``"speech"`` or ``"strict"``.
            auto_hang_up: Hang up through the REST client on EndFrame/CancelFrame.
            resampler_clear_after_secs: Not used: the resampler's state is kept for
                the whole call (clearing it on pauses clips the next word).
        """

        piopiy_sample_rate: int = 8000
        listen_mode: Literal["caller", "callee", "both"] = "caller"
        channel: Literal["caller", "callee", "both"] = "caller"
        swap_channels: bool = False
        sample_rate: int | None = None
        batch_ms: float = DEFAULT_BATCH_MS
        quality: Literal["speech", "strict"] = "speech"
        auto_hang_up: bool = True
        resampler_clear_after_secs: float | None = None

    def __init__(self, call_id: str | None = None, *, rest_client: RestClient | None = None,
                 params: InputParams | None = None) -> None:
        params = params or PiopiyFrameSerializer.InputParams()
        for name in ("piopiy_sample_rate", "sample_rate"):
            rate = getattr(params, name)
            if rate is not None and rate not in SAMPLE_RATES:
                raise PiopiyValidationError(
                    f"{name} must be one of {', '.join(map(str, SAMPLE_RATES))}, not {rate!r}")
        super().__init__(params)
        self._params: PiopiyFrameSerializer.InputParams = params
        self.call_id = call_id
        self._rest_client = rest_client
        self._source_rate = params.piopiy_sample_rate
        self._listen_mode: str = params.listen_mode
        self._sample_rate = params.sample_rate  # the pipeline's, known at setup
        self._input: _InputPath | None = None  # built at setup (or the first frame)
        self._audio_started = False
        self._replies = ReplyBatcher(params.piopiy_sample_rate, batch_ms=params.batch_ms,
                                     quality=params.quality)
        self._out_rate: int | None = None  # the pipeline's output rate, known at setup
        self._ended = False
        self.frames = 0
        self.decode_errors = 0

    @property
    def reply_rate(self) -> int:
        """The rate replies go out at: 8000 or 16000."""
        return self._replies.reply_rate

    @property
    def audio_out_10ms_chunks(self) -> int:
        """The transport's ``audio_out_10ms_chunks`` that makes each of its output
        chunks one reply message (so an utterance's end is never held back)."""
        return max(1, round(self._replies.batch_seconds * 100))

    @property
    def pending_reply_samples(self) -> int:
        """Reply samples waiting for their batch to fill (at the reply rate)."""
        return self._replies.pending

    # Pipecat's FrameSerializer.setup takes a FrameProcessorSetup where its own base
    # takes a task manager; the ignore holds only when mypy follows pipecat.
    async def setup(  # type: ignore[override, unused-ignore]
            self, setup: FrameProcessorSetup) -> None:
        """Learn the pipeline's rates and build both resamplers now: the first filter
        design in a process takes a moment, better spent before the call than on its
        first frame."""
        if self._params.sample_rate is None:
            self._sample_rate = setup.audio_in_sample_rate
        self._input = self._input_path()
        self._out_rate = setup.audio_out_sample_rate
        if self._out_rate in SAMPLE_RATES:
            self._replies.prepare(self._out_rate)

    def _input_path(self) -> _InputPath:
        return _InputPath(self._source_rate, self._listen_mode, self._params.channel,
                          self._params.swap_channels, self._sample_rate or self._source_rate,
                          self._params.quality)

    # -- received from Piopiy ------------------------------------------------------------

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """A received message as a frame: audio, a transport message, or None."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._audio_frame(data)
        return self._text_frame(data)

    def _audio_frame(self, data: bytes | bytearray | memoryview) -> Frame | None:
        path = self._input
        if path is None:
            path = self._input = self._input_path()
        self._audio_started = True
        if len(data) % path.frame_bytes:
            self.decode_errors += 1
            if self.decode_errors == 1:
                logger.warning("call %s: a frame of %d bytes holds no whole samples; skipped",
                               self.call_id, len(data))
            return None
        self.frames += 1
        audio = path.convert(data)
        if not audio:
            return None
        return InputAudioRawFrame(audio=audio, sample_rate=path.target_rate,
                                  num_channels=path.channels_out)

    def _text_frame(self, text: str) -> Frame | None:
        try:
            message = json.loads(text)
        except (ValueError, TypeError, RecursionError):
            return None  # a plain metadata string: nothing for the pipeline
        if isinstance(message, dict):
            self._learn(text)
        return InputTransportMessageFrame(message=message)

    def _learn(self, text: str) -> None:
        """Take the call id, and the format while no audio has come, from a JSON message."""
        event = parse_text_frame(text)
        if self.call_id is None and event.call_id is not None:
            self.call_id = event.call_id
        hint = event.format
        mode = self._listen_mode
        if hint.listen_mode is not None:
            mode = hint.listen_mode
        elif hint.channels is not None:
            mode = "both" if hint.channels == 2 else ("caller" if mode == "both" else mode)
        rate = self._source_rate if hint.sample_rate is None else hint.sample_rate
        if (mode, rate) == (self._listen_mode, self._source_rate):
            return
        if self._audio_started:
            logger.info("call %s: a format named after the audio started is ignored",
                        self.call_id)
            return
        self._listen_mode = mode
        if rate != self._source_rate:
            self._source_rate = rate
            self._replies = ReplyBatcher(rate, batch_ms=self._params.batch_ms,
                                         quality=self._params.quality)
            if self._out_rate in SAMPLE_RATES:
                self._replies.prepare(self._out_rate)
        if self._input is not None:  # set up already: rebuilt for the new format
            self._input = self._input_path()


    # -- sent to Piopiy ------------------------------------------------------------------

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """A frame as the message to send, or None (nothing to send, or audio held
        until its batch is full)."""
        if isinstance(frame, OutputAudioRawFrame):
            return self._reply(frame)
        if isinstance(frame, InterruptionFrame):
            self._replies.clear()
            return BREAK
        if isinstance(frame, (EndFrame, CancelFrame)):
            return await self._end()
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            message = frame.message
            if isinstance(message, dict) and self.should_ignore_frame(frame):
                return None
            return message if isinstance(message, str) else json.dumps(message)
        return None

    def _reply(self, frame: OutputAudioRawFrame) -> str | None:
        audio: Any = frame.audio
        if frame.num_channels > 1:
            # Mixed down: the platform plays one channel.
            samples = np.frombuffer(frame.audio, dtype="<i2").reshape(-1, frame.num_channels)
            audio = samples.mean(axis=1).round().astype(np.int16)
        replies = self._replies
        replies.feed(audio, frame.sample_rate)
        # One message per frame at most (the transport sends one per frame): all
        # that is pending once a batch is there.
        if replies.pending >= replies.batch_samples:
            return replies.take()
        return None

    async def _end(self) -> str | None:
        if self._ended:
            return None
        self._ended = True
        dropped = self._replies.clear()
        if dropped:
            logger.debug("call %s: %d reply samples pending at the end, dropped",
                         self.call_id, dropped)
        if self._params.auto_hang_up and self._rest_client is not None and self.call_id:
            try:
                # The REST client blocks; a thread keeps the event loop free.
                await asyncio.to_thread(self._rest_client.hangup, self.call_id)
            except Exception as exc:
                logger.warning("call %s: hang-up failed: %s", self.call_id, exc)
        return STOP


class _InputPath:
    """One call's received frames to the pipeline's rate: pick the channel(s), resample."""

    __slots__ = ("frame_bytes", "pick", "swap", "channels_out", "target_rate", "resampler")

    def __init__(self, source_rate: int, listen_mode: str, channel: str, swap: bool,
                 target_rate: int, quality: str) -> None:
        stereo = listen_mode == "both"
        self.frame_bytes = 4 if stereo else 2
        # Which de-interleaved channel to keep; None keeps both (or the only one).
        self.pick: int | None = None
        if stereo and channel != "both":
            self.pick = (0 if channel == "caller" else 1) ^ int(swap)
        self.swap = stereo and channel == "both" and swap
        self.channels_out = 2 if stereo and channel == "both" else 1
        self.target_rate = target_rate
        # One resampler for the whole call, never cleared.
        self.resampler = None if source_rate == target_rate else Resampler(
            source_rate, target_rate, channels=self.channels_out, quality=quality)

    def convert(self, data: bytes | bytearray | memoryview) -> bytes:
        samples: Any
        if self.pick is not None:
            samples = l16_deinterleave(data)[self.pick]
        elif self.resampler is None and not self.swap:
            return bytes(data)
        else:
            samples = l16_to_int16(data)
            if self.channels_out == 2:
                samples = samples.reshape(-1, 2)
                if self.swap:
                    samples = np.ascontiguousarray(samples[:, ::-1])
        if self.resampler is not None:
            samples = self.resampler.process(samples)
        return int16_to_l16(samples)
