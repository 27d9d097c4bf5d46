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

Received frames go through the same call core as the receiver's
(:class:`~piopiy_fast.stream.call.CallCore`): it settles what the stream is (listen
mode, rate, layout: ``mono``, ``mixed`` or ``stereo``) from the stream itself, the
serializer's parameters being hints, so a stream is never misread because a hint was
wrong. While it cannot tell yet (the first half second at most) the audio is held and
``deserialize`` returns None; the first audio frame after the decision carries
everything held. Then each frame goes through the native ingest (decode,
de-interleave, resample to the pipeline's input rate) and out of the call's channel
readers as one ``InputAudioRawFrame``. The resampler's state lives as long as the
call and is never cleared on silence or pauses, so the first word after a pause is
not clipped.

In a two-party ``stereo`` stream the pipeline gets the channel asked for: the caller,
the callee, or both as two interleaved channels. A ``mixed`` stream holds both
parties summed in one channel, so the pipeline gets that mix, whatever ``channel``
asks (logged once): it is never passed off as the caller alone.

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
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

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

from ..audio import CallDelivery, int16_to_l16, interleave
from ..errors import PiopiyValidationError
from ..receiver.channel import ChannelReader
from ..receiver.clock import DeliveryClocks
from ..sdk.client import RestClient
from ..stream.call import CallCore, CallSettings, CallStats, PolicyViolation
from ..stream.events import StreamEvent, parse_text_frame
from ..stream.layout import FormatDecision
from ..stream.replies import DEFAULT_BATCH_MS, ReplyBatcher, reply_rate_for
from ..stream.wire import BREAK, MIX, SAMPLE_RATES, STOP, StreamFormat

logger = logging.getLogger("piopiy_fast.pipecat")

Int16Array = npt.NDArray[np.int16]

# Each channel's ring, in samples at the pipeline's rate. The serializer empties the
# rings after every frame, so only the held audio, replayed at once when the format is
# settled, needs the room: the core holds no more than fits (at 16 kHz, 1 s of 8 kHz
# audio, 0.5 s of 16 kHz stereo).
RING_SAMPLES = 1 << 16

_EMPTY: Int16Array = np.empty(0, dtype=np.int16)


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
        Hints of the stream's format, the channel(s) the pipeline gets, the reply
        batching.
    clock : callable, optional
        Monotonic seconds, which the frames' pacing is measured in while the format
        is settled (``time.monotonic``; tests pass their own).

    Received frames: binary -> ``InputAudioRawFrame`` at the pipeline's input rate,
    once the call core has settled the stream's format (None before: the audio is
    held, then the first frame after the decision carries all of it; a frame without
    whole samples is counted in ``decode_errors`` and skipped); text that is JSON ->
    ``InputTransportMessageFrame``; other text is ignored. Nothing received ever
    raises. A JSON message naming the format (``listen_mode``, ``sample_rate``,
    ``channels``, ``layout``) is a hint, as the parameters are; the stream itself
    decides what it contradicts (see :attr:`format_decision`).

    What the pipeline gets: the one party of a one-party stream; from a ``stereo``
    two-party stream the ``channel`` asked for (``both`` as two interleaved
    channels, caller first); from a ``mixed`` two-party stream the mix of both
    parties, one channel, whatever ``channel`` asks (logged once): a mixed stream is
    never delivered as if it were the caller alone.

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
                action: 8000, 12000 or 16000 (any rate the native core supports). A
                hint: given, it is the rate the stream is measured against (as the
                URL's ``voice_quality`` is for the receiver); left out, 8000 is only
                what the call falls back to when the stream cannot tell.
            listen_mode: The stream action's ``listen_mode``: caller, callee or both. A
                hint: a two-channel stream is read as both parties whatever it says,
                and a one-channel ``both`` stream as the mix.
            layout: ``"auto"`` (default: the stream decides) or the layout every call
                is taken to have: ``"mono"`` (one party), ``"mixed"`` (both parties in
                one channel) or ``"stereo"`` (both, interleaved).
            channel: What the pipeline gets of a ``stereo`` two-party stream:
                ``"caller"`` (default), ``"callee"``, or ``"both"`` as two channels
                (caller first). A one-party stream is delivered as it comes, and a
                ``mixed`` one as its mix (one channel), whatever this says.
            swap_channels: In a ``stereo`` stream, take channel 1 as the caller.
            sample_rate: The pipeline's input rate; by default the pipeline's own
                (before setup, the hinted stream rate).
            batch_ms: Duration of one reply message (at most 50 KiB of audio).
            quality: Resampler preset, ``"speech"`` or ``"strict"``.
            auto_hang_up: Hang up through the REST client on EndFrame/CancelFrame.
            resampler_clear_after_secs: Not used: the resampler's state is kept for
                the whole call (clearing it on pauses clips the next word).
        """

        piopiy_sample_rate: int = 8000
        listen_mode: Literal["caller", "callee", "both"] = "caller"
        layout: Literal["auto", "mono", "mixed", "stereo"] = "auto"
        channel: Literal["caller", "callee", "both"] = "caller"
        swap_channels: bool = False
        sample_rate: int | None = None
        batch_ms: float = DEFAULT_BATCH_MS
        quality: Literal["speech", "strict"] = "speech"
        auto_hang_up: bool = True
        resampler_clear_after_secs: float | None = None

    def __init__(self, call_id: str | None = None, *, rest_client: RestClient | None = None,
                 params: InputParams | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        params = params or PiopiyFrameSerializer.InputParams()
        for name in ("piopiy_sample_rate", "sample_rate"):
            rate = getattr(params, name)
            if rate is not None and rate not in SAMPLE_RATES:
                raise PiopiyValidationError(
                    f"{name} must be one of {', '.join(map(str, SAMPLE_RATES))}, not {rate!r}")
        super().__init__(params)
        self._params: PiopiyFrameSerializer.InputParams = params
        self._call_id = call_id
        self._rest_client = rest_client
        self._clock = clock
        self._sample_rate = params.sample_rate  # the pipeline's, known at setup
        self._core: CallCore | None = None  # built at setup (or at the first message)
        self._readers: dict[str, _FrameReader] = {}
        self._target_rate = 0
        # What a frame's audio is read from: the readers of the channels delivered, and
        # those of the channels read only to be dropped; for the format they were
        # chosen for.
        self._planned: StreamFormat | None = None
        self._delivered: tuple[_FrameReader, ...] = ()
        self._dropped: tuple[_FrameReader, ...] = ()
        # Of two channels delivered together: the samples one has beyond the other
        # (the tail of an earlier format's ring), delivered with the next frame.
        self._uneven: tuple[Int16Array, Int16Array] | None = None
        self._replies = ReplyBatcher(params.piopiy_sample_rate, batch_ms=params.batch_ms,
                                     quality=params.quality)
        self._out_rate: int | None = None  # the pipeline's output rate, known at setup
        self._ended = False
        self._logged: set[str] = set()

    # -- what the call is ----------------------------------------------------------------

    @property
    def call_id(self) -> str | None:
        """The id given, else the first one a text message named; None until then."""
        if self._call_id is not None:
            return self._call_id
        core = self._core
        return core.call_id if core is not None and core.id_from_event else None

    @call_id.setter
    def call_id(self, value: str | None) -> None:
        self._call_id = value

    @property
    def format(self) -> StreamFormat:
        """The stream's format: settled once audio flows, until then what the hints say."""
        return self._call().format

    @property
    def format_decision(self) -> FormatDecision | None:
        """How the format was settled (and which hints the stream overruled); None
        while the audio is held."""
        return None if self._core is None else self._core.decision

    @property
    def stats(self) -> CallStats:
        """The call's counters, as the receiver keeps them."""
        return self._call().stats

    @property
    def frames(self) -> int:
        """Binary frames used (held ones included)."""
        return 0 if self._core is None else self._core.stats.frames

    @property
    def decode_errors(self) -> int:
        """Binary frames dropped because they held no whole samples (or sample pairs)."""
        return 0 if self._core is None else self._core.stats.decode_errors

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
        """Learn the pipeline's rates and build the call core (its ingest is made when
        the stream's format is settled) and the reply resampler.

        Raises:
            PiopiyValidationError: The pipeline's input rate is one the native core
                does not resample to.
        """
        if self._params.sample_rate is None:
            rate = setup.audio_in_sample_rate
            if rate not in SAMPLE_RATES:
                raise PiopiyValidationError(
                    f"the pipeline's input rate must be one of "
                    f"{', '.join(map(str, SAMPLE_RATES))}, not {rate!r}")
            self._sample_rate = rate
        if self._core is not None and self._target_rate != self._sample_rate:
            used = self._core.stats
            if not (used.frames or used.events):
                self._core = None  # made before the pipeline's rate was known, unused
        self._call()
        self._out_rate = setup.audio_out_sample_rate
        if self._out_rate in SAMPLE_RATES:
            self._replies.prepare(self._out_rate)

    def _call(self) -> CallCore:
        core = self._core
        if core is None:
            core = self._core = self._new_core()
        return core

    def _new_core(self) -> CallCore:
        """The call core, fed the parameters as the receiver is fed a stream's URL: those
        given are named hints, those left out only the defaults."""
        params = self._params
        given = params.model_fields_set
        query: dict[str, Any] = {}
        if "listen_mode" in given:
            query["listen_mode"] = params.listen_mode
        if "piopiy_sample_rate" in given:
            query["voice_quality"] = params.piopiy_sample_rate
        if self._call_id is not None:
            query["call_id"] = self._call_id
        target = self._target_rate = self._sample_rate or params.piopiy_sample_rate
        settings = CallSettings(
            target_rate=target, ring_capacity=RING_SAMPLES, quality=params.quality,
            default_format=StreamFormat(params.listen_mode, params.piopiy_sample_rate),
            layout=params.layout, swap_channels=params.swap_channels,
            # Pipecat's transport paces what it hands over; audio fed faster than real
            # time (a file, a test) is not a peer flooding a receiver.
            max_ahead_seconds=None)
        # No reader here waits or takes callbacks: the serializer empties them after
        # each frame, so the delivery's clocks never run.
        delivery = CallDelivery(DeliveryClocks(), self._callback_failed)
        self._readers = {name: _FrameReader(delivery, name, target)
                         for name in ("caller", "callee", MIX)}
        return CallCore(query, settings, delivery, self._readers, clock=self._clock)

    def _callback_failed(self, what: str) -> None:  # pragma: no cover - no callbacks
        logger.error("call %s: %s callback failed", self.call_id, what)

    # -- received from Piopiy ------------------------------------------------------------

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """A received message as a frame: audio, a transport message, or None."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._audio_frame(data)
        return self._text_frame(data)

    def _audio_frame(self, data: bytes | bytearray | memoryview) -> Frame | None:
        core = self._core or self._call()
        core.sink.feed(data)
        if core.decision is None:
            return None  # held until the format is settled
        if core.format is not self._planned:
            self._plan(core.format)
        for reader in self._dropped:
            reader.take()
        delivered = self._delivered
        if len(delivered) == 1:
            samples = delivered[0].take()
            if not samples.size:
                return None
            return InputAudioRawFrame(audio=int16_to_l16(samples),
                                      sample_rate=self._target_rate, num_channels=1)
        pairs = self._two_channels()
        if not pairs.size:
            return None
        return InputAudioRawFrame(audio=int16_to_l16(pairs), sample_rate=self._target_rate,
                                  num_channels=2)

    def _plan(self, fmt: StreamFormat) -> None:
        """Which channels a frame of ``fmt`` gives the pipeline."""
        channel = self._params.channel
        if fmt.layout == "stereo":
            wanted: tuple[str, ...] = ("caller", "callee") if channel == "both" else (channel,)
        elif fmt.layout == "mixed":
            wanted = (MIX,)
            self._log_once("mixed", "call %s: the stream is mixed (both parties in one "
                           "channel): the pipeline gets the mix, one channel, not %s",
                           self.call_id, "the caller alone" if channel == "caller"
                           else "the callee alone" if channel == "callee"
                           else "two channels")
        else:
            wanted = (fmt.listen_mode,)
        readers = self._readers
        self._delivered = tuple(readers[name] for name in wanted)
        # Every other reader is emptied too: of the channels this format fills (nobody
        # reads them), and of what an earlier format left in the others.
        self._dropped = tuple(reader for name, reader in readers.items() if name not in wanted)
        self._uneven = None
        self._planned = fmt
        self._follow_rate(fmt.sample_rate)

    def _two_channels(self) -> Int16Array:
        """The two delivered channels' new samples, interleaved."""
        first, second = self._delivered
        a, b = first.take(), second.take()
        uneven = self._uneven
        if uneven is None and a.size == b.size:
            return interleave(a, b)
        if uneven is not None:
            a, b = np.concatenate((uneven[0], a)), np.concatenate((uneven[1], b))
        n = min(a.size, b.size)
        self._uneven = (a[n:], b[n:]) if a.size != b.size else None
        return interleave(a[:n], b[:n])

    def _text_frame(self, text: str) -> Frame | None:
        core = self._call()
        try:
            event = core.receive_text(text)
        except PolicyViolation as exc:
            # The receiver closes such a call; a serializer cannot, so the format stays.
            self._log_once("changes", "call %s: %s; a format named later is ignored",
                           self.call_id, exc)
            event = parse_text_frame(text)
        self._follow_rate(core.format.sample_rate)
        if _not_json(event, text):
            return None  # a plain metadata string: nothing for the pipeline
        return InputTransportMessageFrame(message=event.data)

    def _follow_rate(self, call_rate: int) -> None:
        """Replies go out at the rate the call's format asks for (pending audio at
        another rate is dropped)."""
        if reply_rate_for(call_rate) == self._replies.reply_rate:
            return
        dropped = self._replies.pending
        if dropped:
            logger.debug("call %s: the call's rate changed; %d reply samples dropped",
                         self.call_id, dropped)
        params = self._params
        self._replies = ReplyBatcher(call_rate, batch_ms=params.batch_ms,
                                     quality=params.quality)
        if self._out_rate in SAMPLE_RATES:
            self._replies.prepare(self._out_rate)

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

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
        if self._core is not None:
            self._core.end()
        dropped = self._replies.clear()
        if dropped:
            logger.debug("call %s: %d reply samples pending at the end, dropped",
                         self.call_id, dropped)
        call_id = self.call_id
        if self._params.auto_hang_up and self._rest_client is not None and call_id:
            try:
                # The REST client blocks; a thread keeps the event loop free.
                await asyncio.to_thread(self._rest_client.hangup, call_id)
            except Exception as exc:
                logger.warning("call %s: hang-up failed: %s", call_id, exc)
        return STOP


class _FrameReader(ChannelReader):
    """A channel reader emptied after each frame by the serializer that feeds its
    call, with no event loop and no wait."""

    __slots__ = ()

    def take(self) -> Int16Array:
        """Every sample the channel holds now, through the rings a format change left
        behind, oldest first."""
        ring = self._head()
        if ring is None:
            return _EMPTY
        closed = ring.closed  # before reading: a closed ring gets nothing more
        chunk = ring.read()
        if not closed:
            return chunk
        parts = [chunk]
        ring = self._head()
        while ring is not None:
            closed = ring.closed
            parts.append(ring.read())
            if not closed:
                break
            ring = self._head()
        return np.concatenate(parts)


def _not_json(event: StreamEvent, text: str) -> bool:
    """True when ``text`` was kept as it is: not JSON (or nested too deep to parse).
    A JSON string is never equal to its own text (that has quotes around it)."""
    return event.too_deep or (isinstance(event.data, str) and event.data == text)
