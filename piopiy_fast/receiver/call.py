"""One live call: its audio channels, its events, its counters and its controls.

The receive path is the call's native ``FrameSink``: per frame it ingests (decode,
de-interleave, resample and ring write inside ``CallIngest``), keeps the counters and
runs the call's ``CallDelivery`` (callback readers, and waking readers that must not
wait for the clock), below Python; it calls back into Python only at the first frame
(``_pending_frame`` settles the format) and at the first bad one. A transport calls
``_on_binary`` (the sink's ``feed``) per binary message, or hands frames to the sink
in C. Readers are woken by the server's delivery clock (:mod:`.clock`), except a
reader that asked for every frame (``latency = 0``) and, in a burst of frames faster
than real time, every ``BURST_FRAMES`` frames, so that readers run before their rings
fill. The readers, one per channel, are in :mod:`.channel`; the delivery state the
call shares with them and with the sink is the compiled ``CallDelivery``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

from ..audio import CallDelivery, CallIngest, FrameSink, RingBuffer
from ..errors import CallEnded, PiopiyValidationError
from ..redaction import printable
from ..wire import BREAK, CHANNELS, PAUSE, RESUME, STOP, StreamFormat
from .channel import ChannelReader
from .clock import DeliveryClocks
from .events import (
    FormatHint,
    call_id_from_params,
    format_from_params,
    parse_text_frame,
    resolve_format,
)
from .latch import Latch
from .replies import ReplyBatcher, as_mono_int16

if TYPE_CHECKING:
    from .transports.base import CloseInfo, Link

logger = logging.getLogger("piopiy_fast.receiver")

# Frames arriving while a reader waits that wake it without waiting for the clock:
# 16 frames of 20 ms is 0.32 s, which only a burst brings within one clock interval.
BURST_FRAMES = 16


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What the server fixes for every call it accepts."""

    target_rate: int = 16000
    ring_capacity: int = 32768
    policy: str = "drop_oldest"
    quality: str = "speech"
    default_format: StreamFormat = StreamFormat("caller", 8000)
    swap_channels: bool = False
    late_after: float = 0.2
    max_events: int = 1000
    max_event_bytes: int = 256 * 1024
    max_format_changes: int = 16
    reply_batch_ms: float = 300.0


class PolicyViolation(Exception):
    """A peer broke one of the call's limits: the call ends with close code 1008."""

    code = 1008


@dataclass(frozen=True, slots=True)
class CallStats:
    """A snapshot of one call's counters.

    ``frames``/``bytes`` count the binary frames used; ``decode_errors`` the frames dropped
    because they held no whole samples (or sample pairs); ``overruns`` the samples lost
    because a ring was full; ``late_frames`` the frames that arrived more than
    ``late_after`` seconds behind the real-time schedule of the audio before them. Times are
    wall-clock seconds (``time.time()``), None before the first frame. ``received_seconds``
    is the audio received, measured at the source rate. ``callback_errors`` counts
    exceptions raised by the application's ``on_chunk`` / ``on_event`` callbacks.
    ``events`` counts text frames, ``unrecognised_events`` those with no field we know
    (JSON nested too deep among them), ``events_dropped`` those not kept in
    ``call.events`` because the call's event count or byte budget was spent.
    """

    frames: int
    bytes: int
    decode_errors: int
    overruns: int
    late_frames: int
    first_frame_time: float | None
    last_frame_time: float | None
    events: int
    unrecognised_events: int
    events_dropped: int
    format_changes: int
    received_seconds: float
    callback_errors: int


@dataclass(slots=True)
class IngestTotals:
    """Counters of the native ingests a call has finished with (format changes, the end)."""

    frames: int = 0
    bytes: int = 0
    decode_errors: int = 0
    overruns: int = 0
    seconds: float = 0.0

    def add(self, ingest: CallIngest, seconds_per_byte: float) -> None:
        self.frames += ingest.frames
        self.bytes += ingest.bytes
        self.decode_errors += ingest.decode_errors
        self.overruns += ingest.overruns
        self.seconds += ingest.bytes * seconds_per_byte


class CallStream:
    """One Piopiy stream connection: a call's audio, events and controls.

    Created by :class:`~piopiy_fast.receiver.server.StreamServer` for each accepted connection
    and handed to the application before its first frame. ``listen_mode`` and
    ``source_rate`` are settled by the first audio frame (a start event, then the
    query string, then the server's defaults, field by field); until then they show
    what is known so far. A start event naming another format later starts a new
    resampler (counted in ``stats.format_changes``); readers go on seamlessly.

    Attributes: ``call_id`` (from the first event that names one, else the query's
    ``call_id``, else the URL's ``call_ref``, else ``call-<n>``); ``ref`` (the URL's
    ``call_ref``); ``from_number`` and ``to_number`` (from the first event naming
    them, None until then); ``remote`` (peer address); ``route`` (request path, no query);
    ``events`` (text frames in order: a dict when JSON, else the raw string);
    ``close_info`` and ``error`` (how the connection ended, once it has); ``opened_at``
    (``time.monotonic()`` at connection); ``paused`` (between ``pause()`` and
    ``resume()``) and ``resumed_at`` (``time.time()`` of the last ``resume()``).
    """

    __slots__ = (
        "call_id", "from_number", "to_number", "ref", "remote", "route", "target_rate",
        "opened_at", "paused", "resumed_at", "_replies",
        "caller", "callee", "events", "close_info", "error",
        "_link", "_settings", "_query_hint", "_start_hint", "_format", "_id_from_event",
        "_ingest", "_retired", "_format_changes", "_sec_per_byte", "_sink", "_on_binary",
        "_n_events", "_event_bytes", "_events_dropped", "_unrecognised", "_logged",
        "_delivery", "_event_waiters", "_event_callbacks", "_done", "_audio", "_callback_errors",
    )

    def __init__(self, link: Link, params: dict[str, Any], settings: CallSettings,
                 number: int, clocks: DeliveryClocks) -> None:
        self._link = link
        self.opened_at = _monotonic()
        self.paused = False
        self.resumed_at: float | None = None
        self._replies: ReplyBatcher | None = None
        self._settings = settings
        self.remote = link.handshake.remote
        self.route = link.handshake.route
        self.target_rate = settings.target_rate
        self.ref = params.get("call_ref")
        # Until a start event names it: the query's call id, the app's reference, a number.
        self.call_id = (call_id_from_params(params)
                        or (printable(str(self.ref)) if self.ref else f"call-{number}"))
        self._id_from_event = False
        self.from_number: str | None = None
        self.to_number: str | None = None
        self._query_hint = format_from_params(params)
        self._start_hint = FormatHint()
        self._format = resolve_format(self._query_hint, default=settings.default_format)
        self._ingest: CallIngest | None = None
        self._retired = IngestTotals()
        self._format_changes = 0
        self._sec_per_byte = 0.0
        self._n_events = 0
        self._event_bytes = 0
        self._events_dropped = 0
        self._unrecognised = 0
        self._callback_errors = 0
        self._logged: set[str] = set()
        self._delivery = CallDelivery(clocks, self._callback_failed, burst_frames=BURST_FRAMES)
        self._sink = FrameSink(self._delivery, self._pending_frame, self._bad_frame,
                               late_after=settings.late_after)
        # What a transport calls with each binary message.
        self._on_binary = self._sink.feed
        self.caller = ChannelReader(self._delivery, "caller", settings.target_rate)
        self.callee = ChannelReader(self._delivery, "callee", settings.target_rate)
        self.events: list[Any] = []
        self.close_info: CloseInfo | None = None
        self.error: str | None = None
        self._event_waiters: list[asyncio.Future[None]] = []
        self._event_callbacks: list[Callable[[Any], Any]] = []
        self._done = Latch()
        self._audio = Latch()

    def __repr__(self) -> str:
        return (f"<CallStream {self.call_id} {self.listen_mode} {self.source_rate}->"
                f"{self.target_rate} Hz{' ended' if self.ended else ''}>")

    # -- what the call is -----------------------------------------------------------------

    @property
    def listen_mode(self) -> str:
        """``caller``, ``callee`` or ``both``."""
        return self._format.listen_mode

    @property
    def source_rate(self) -> int:
        """The rate the platform sends at (its ``voice_quality``)."""
        return self._format.sample_rate

    @property
    def format(self) -> StreamFormat:
        """Listen mode and source rate together."""
        return self._format

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the channels the current format fills."""
        if self._format.listen_mode == "both":
            return CHANNELS
        return (self._format.listen_mode,)

    @property
    def audio_started(self) -> bool:
        """True once the first audio frame has arrived (the format is settled)."""
        return self._sink.first_frame is not None

    @property
    def ended(self) -> bool:
        """True once the connection is over (readers may still hold unread audio)."""
        return self._delivery.ended

    def channel(self, name: str) -> ChannelReader:
        """The reader of ``caller`` or ``callee``."""
        if name == "caller":
            return self.caller
        if name == "callee":
            return self.callee
        raise PiopiyValidationError(f"channel must be caller or callee, not {name!r}")

    @property
    def stats(self) -> CallStats:
        """A snapshot of the call's counters (cheap; safe from any thread)."""
        ingest = self._ingest
        r = self._retired
        frames, nbytes, errors, overruns, seconds = (
            r.frames, r.bytes, r.decode_errors, r.overruns, r.seconds)
        if ingest is not None:
            frames += ingest.frames
            nbytes += ingest.bytes
            errors += ingest.decode_errors
            overruns += ingest.overruns
            seconds += ingest.bytes * self._sec_per_byte
        offset = time.time() - _monotonic()
        sink = self._sink
        first, last = sink.first_frame, sink.last_frame
        return CallStats(
            frames=frames, bytes=nbytes, decode_errors=errors, overruns=overruns,
            late_frames=sink.late_frames,
            first_frame_time=None if first is None else first + offset,
            last_frame_time=None if last is None else last + offset,
            events=self._n_events, unrecognised_events=self._unrecognised,
            events_dropped=self._events_dropped,
            format_changes=self._format_changes, received_seconds=seconds,
            callback_errors=self._callback_errors,
        )

    # -- receive path (event loop) ------------------------------------------------------

    def _bad_frame(self, size: int) -> None:
        self._log_once("frame", "call %s: frame of %d bytes has no whole samples "
                       "(dropped, counted in decode_errors)", self.call_id, size)

    def _on_text(self, text: str) -> None:
        event = parse_text_frame(text)
        self._n_events += 1
        if not event.recognised:
            self._unrecognised += 1
        if event.call_id is not None and not self._id_from_event:
            self.call_id = event.call_id
            self._id_from_event = True
        if event.from_ is not None and self.from_number is None:
            self.from_number = event.from_
        if event.to is not None and self.to_number is None:
            self.to_number = event.to
        if event.format:
            self._use_format_hint(event.format)
        if event.too_deep:
            self._log_once("deep", "call %s: a text frame nests JSON too deep; kept as text "
                           "(counted in unrecognised_events)", self.call_id)
        settings = self._settings
        if (len(self.events) < settings.max_events
                and self._event_bytes + len(text) <= settings.max_event_bytes):
            self.events.append(event.data)
            self._event_bytes += len(text)
        else:
            self._events_dropped += 1
            self._log_once("events", "call %s: more than %d events or %d bytes of them, not "
                           "keeping the rest (counted in events_dropped)", self.call_id,
                           settings.max_events, settings.max_event_bytes)
        for callback in self._event_callbacks:
            try:
                callback(event.data)
            except Exception:
                self._callback_failed("event")
        if self._event_waiters:
            self._wake_event_waiters()

    def _use_format_hint(self, hint: FormatHint) -> None:
        if self._ingest is None:
            # Before audio: the latest event's fields win over earlier events'.
            old = self._start_hint
            self._start_hint = FormatHint(
                hint.listen_mode if hint.listen_mode is not None else old.listen_mode,
                hint.sample_rate if hint.sample_rate is not None else old.sample_rate,
                hint.channels if hint.channels is not None else old.channels,
            )
            self._format = resolve_format(self._start_hint, self._query_hint,
                                          default=self._settings.default_format)
            return
        new = resolve_format(hint, default=self._format)
        if new != self._format:
            self._change_format(new)

    def _pending_frame(self, data: bytes) -> bool:
        """First frame (the sink asks): settle the format, build the native ingest and
        send the frame through it; True when that woke a reader."""
        self._format = resolve_format(self._start_hint, self._query_hint,
                                      default=self._settings.default_format)
        ingest = self._new_ingest(self._format)
        self._attach(ingest, self._format)
        self._audio.set()
        logger.debug("call %s: audio %s at %d Hz", self.call_id, self.listen_mode,
                     self.source_rate)
        return self._sink.replay(data)

    def _new_ingest(self, fmt: StreamFormat) -> CallIngest:
        s = self._settings
        return CallIngest(fmt.sample_rate, fmt.channels, s.target_rate,
                              ring_capacity=s.ring_capacity, policy=s.policy,
                              quality=s.quality)

    def _attach(self, ingest: CallIngest, fmt: StreamFormat) -> None:
        """Make ``ingest`` the one frames go to, and queue its rings to the readers."""
        swap = self._settings.swap_channels
        rings = ingest.rings
        names: tuple[str, ...] = (fmt.listen_mode,)
        if fmt.listen_mode == "both":
            names = CHANNELS[::-1] if swap else CHANNELS
        pairs: list[tuple[ChannelReader, RingBuffer]] = [
            (self.channel(name), ring) for name, ring in zip(names, rings, strict=True)]
        self._ingest = ingest
        self._sec_per_byte = 1.0 / (fmt.sample_rate * 2 * fmt.channels)
        self._sink.attach(ingest, self._sec_per_byte)
        self._delivery.add_rings(pairs)

    def _change_format(self, new: StreamFormat) -> None:
        """A format change mid-call: finish the old resampler, start a new one (counted)."""
        old = self._ingest
        assert old is not None
        if self._format_changes >= self._settings.max_format_changes:
            raise PolicyViolation(
                f"more than {self._settings.max_format_changes} format changes")
        ingest = self._new_ingest(new)  # first: if this fails, nothing has changed
        self._retire(old)
        self._format_changes += 1
        logger.info("call %s: format changed from %s/%d to %s/%d Hz", self.call_id,
                    self._format.listen_mode, self._format.sample_rate, new.listen_mode,
                    new.sample_rate)
        self._format = new
        # New rings are queued behind the old ones before those close, so a reader
        # moves on to them without seeing an end.
        self._attach(ingest, new)
        old.close()
        self._delivery.wake_all()

    def _retire(self, ingest: CallIngest) -> None:
        ingest.flush()
        self._delivery.deliver_taps()
        self._retired.add(ingest, self._sec_per_byte)

    def _wake_event_waiters(self) -> None:
        waiters, self._event_waiters = self._event_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

    def _callback_failed(self, what: str) -> None:
        self._callback_errors += 1
        if what not in self._logged:
            self._logged.add(what)
            logger.exception("call %s: %s callback failed (logged once)", self.call_id, what)

    def _end(self, close_info: CloseInfo | None, error: str | None = None) -> None:
        """The connection is over: push the resampler tail, close the rings, wake all."""
        if self._delivery.ended:
            return
        self.close_info = close_info
        self.error = error
        ingest = self._ingest
        if ingest is not None:
            try:
                self._retire(ingest)
            finally:
                ingest.close()
            # The final counters stay readable through _retired.
            self._ingest = None
        self._sink.detach()
        self._delivery.end()
        self._wake_event_waiters()
        self._audio.set()
        self._done.set()

    # -- events -------------------------------------------------------------------------

    def on_event(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(event)`` on the event loop for each text frame, in order."""
        self._event_callbacks.append(callback)

    async def iter_events(self) -> AsyncIterator[Any]:
        """Yield every event (from the first) in order, ending when the call ends."""
        index = 0
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self._delivery.ended:
                return
            future = asyncio.get_running_loop().create_future()
            self._event_waiters.append(future)
            await future

    async def wait_audio(self) -> bool:
        """Wait for the first audio frame (the format is then settled) or the end of the
        call; True if audio arrived."""
        await self._audio.wait()
        return self.audio_started

    async def wait_closed(self) -> None:
        """Wait until the connection is over."""
        await self._done.wait()

    # -- controls (towards the platform) ------------------------------------------------

    async def send_audio(self, pcm: Any, rate: int | None = None, *,
                         flush: bool = False) -> int:
        """Play audio into the call, in ``streamAudio`` messages the platform plays well.

        ``pcm`` is mono int16 or float (-1.0..1.0) samples, or L16 bytes, at ``rate``
        (the call's rate when None). It is resampled to the reply rate (the call's rate
        when it is 8000 or 16000, else 16000) and sent in batches of
        ``reply_batch_ms`` (300 ms by default, at most 50 KiB each): the platform plays
        each message as a whole, so many small ones would play with gaps. Audio short of
        a batch waits for more, or for :meth:`flush` (or ``flush=True``) at the end of
        an utterance. Returns the number of input samples taken.
        """
        if self.ended:
            raise CallEnded(f"call {self.call_id} has ended")
        replies = self._replies_for_call()
        samples = as_mono_int16(pcm)
        for message in replies.add(samples, rate):
            await self._send(message)
        if flush:
            await self.flush()
        return int(samples.size)

    async def flush(self) -> None:
        """End of an utterance: send the audio still waiting for a full batch."""
        if self._replies is not None:
            for message in self._replies.flush():
                await self._send(message)

    async def send_pcmo(self, pcmo: Any) -> None:
        """Hand the live call a PCMO (to bridge it, say): an ``Action`` or
        ``StreamAction``, a list of actions, or its JSON text, sent as one text message."""
        if isinstance(pcmo, str):
            text = pcmo
        else:
            from ..sdk.actions import as_pcmo
            text = json.dumps(as_pcmo(pcmo))
        await self._send(text)

    def _replies_for_call(self) -> ReplyBatcher:
        rate = self.source_rate
        replies = self._replies
        if replies is None or replies.call_rate != rate:
            replies = self._replies = ReplyBatcher(rate, batch_ms=self._settings.reply_batch_ms,
                                                   quality=self._settings.quality)
        return replies

    async def pause(self) -> None:
        """Ask the platform to pause the stream (the server's silence timeout waits)."""
        await self._send(PAUSE)
        self.paused = True

    async def resume(self) -> None:
        """Ask the platform to resume a paused stream."""
        # The gap a pause leaves is not lateness: restart the real-time schedule.
        self._sink.restart_schedule()
        await self._send(RESUME)
        self.paused = False
        self.resumed_at = time.time()

    async def stop(self) -> None:
        """Ask the platform to stop streaming."""
        await self._send(STOP)

    async def interrupt(self) -> None:
        """Stop the audio being played into the call (the ``break`` action) and drop the
        reply audio not sent yet."""
        if self._replies is not None:
            self._replies.clear()
        await self._send(BREAK)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; the call ends as after a normal close. Closing an ended
        call does nothing."""
        if not self.ended:
            await self._link.close(code, reason)

    async def _send(self, text: str) -> None:
        if self.ended:
            raise CallEnded(f"call {self.call_id} has ended")
        try:
            await self._link.send_text(text)
        except ConnectionError:
            raise CallEnded(f"call {self.call_id} has ended") from None
