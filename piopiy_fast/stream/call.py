"""One call's stream as a state machine: frames and text in; decisions, audio and
events out. No socket, no event loop, no clock of its own.

A transport hands binary frames to the call's compiled ``FrameSink`` (``sink``) and
text frames to :meth:`CallCore.receive_text`. The core decides what the stream is
(listen mode, rate, layout: :mod:`.layout`), holding the first audio until it can
tell, then builds the native ingest and replays what it held, so nothing is lost and
nothing is misread. From then on a frame costs no Python: the sink ingests it
(decode, de-interleave, resample, ring write) and wakes readers as the delivery
state says. The core also keeps the call's identity (its id and numbers, from the
URL and the metadata), the events it received within their limits, and its counters.

The shell around it (:class:`~piopiy_fast.receiver.call.CallStream`) adds what needs
an event loop: readers that await, controls that send, and the connection.

Lifecycle::

    CallCore(...)        identity from the URL; hints from the URL and the defaults
      receive_text()     metadata: identity, hints; kept as events
      sink <- frames     held (StreamProbe) until the format is settled, then ingested
      settle(now)        the shell's deadline for a hold that no frame ends
      end()              the tail of the resampler pushed, rings closed, readers woken
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..analytics.call import AnalyticsSettings, CallAnalytics
from ..audio import CallDelivery, CallIngest, FrameSink, Recipient
from ..redaction import printable
from .events import (
    FormatHint,
    StreamEvent,
    call_id_from_params,
    format_from_params,
    parse_text_frame,
    resolve_format,
)
from .layout import HOLD_BYTES, HOLD_SECONDS, FormatDecision, StreamProbe, settle_format
from .timeline import Timeline
from .wire import LAYOUTS, StreamFormat

logger = logging.getLogger("piopiy_fast.receiver")

# Frames arriving while a reader waits that wake it without waiting for the delivery
# clock: 16 frames of 20 ms is 0.32 s, which only a burst brings within one interval.
BURST_FRAMES = 16
# Audio a call may send ahead of real time: the platform's client queues up to 1024
# frames of 20 ms (20.48 s) while it connects and sends them at once; with room for
# jitter on top. Past it, frames are dropped (counted in ``rate_limited_frames``).
MAX_AHEAD_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What the server fixes for every call it accepts.

    ``layout`` is ``auto`` (the stream decides, see :mod:`.layout`) or a layout every
    two-party call is taken to have (``stereo``, ``mixed``; ``mono`` takes every call as
    one party). ``hold_seconds`` / ``hold_bytes`` bound the audio held before the
    format is settled. Events kept per call are bounded in count (``max_events``) and in
    the memory they hold (``max_event_bytes``, an upper estimate of the parsed values).
    """

    target_rate: int = 16000
    ring_capacity: int = 32768
    policy: str = "drop_oldest"
    quality: str = "speech"
    default_format: StreamFormat = StreamFormat("caller", 8000)
    layout: str = "auto"
    swap_channels: bool = False
    late_after: float = 0.2
    max_events: int = 1000
    max_event_bytes: int = 256 * 1024
    max_format_changes: int = 16
    reply_batch_ms: float = 300.0
    hold_seconds: float = HOLD_SECONDS
    hold_bytes: int = HOLD_BYTES
    analytics: AnalyticsSettings | None = None
    max_ahead_seconds: float | None = MAX_AHEAD_SECONDS


class PolicyViolation(Exception):
    """A peer broke one of the call's limits: the call ends with close code 1008."""

    code = 1008


@dataclass(frozen=True, slots=True)
class CallStats:
    """A snapshot of one call's counters.

    ``frames``/``bytes`` count the binary frames used; ``decode_errors`` the frames dropped
    because they held no whole samples (or sample pairs); ``overruns`` the samples lost
    because a ring was full, ``overruns_by_channel`` the same per channel (a channel
    nobody reads loses everything past its ring); ``late_frames`` the frames that
    arrived more than ``late_after`` seconds behind the real-time schedule of the audio
    before them. Times are wall-clock seconds (``time.time()``), None before the first
    frame. ``received_seconds`` is the audio received, measured at the source rate.
    ``callback_errors`` counts exceptions raised by the application's ``on_chunk`` /
    ``on_event`` callbacks. ``events`` counts text frames, ``unrecognised_events``
    those with no field we know (JSON nested too deep among them), ``events_dropped``
    those not kept in ``call.events`` because the call's event count or memory budget
    was spent. ``format_changes`` counts formats started after the first;
    ``hints_overruled`` the hints the stream itself contradicted; ``reconnects`` the
    connections that continued the call after its connection dropped.
    ``rate_limited_frames`` counts the frames dropped because the peer sent audio more
    than ``max_ahead_seconds`` ahead of real time.
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
    overruns_by_channel: Mapping[str, int]
    hints_overruled: int
    reconnects: int
    rate_limited_frames: int = 0


class CallCore:
    """One call's stream without I/O.

    Args:
        params: the connection's query parameters (or a signed URL's verified ones).
        settings: what the server fixes for every call.
        delivery: the call's compiled delivery state (its readers' wake-ups).
        readers: the reader of each channel name (``caller``, ``callee``, ``mix``).
        number: the server's count of calls, for a call that names no id.
        signed: whether ``params`` were verified (a signed URL): a ``layout`` among
            them is then explicit, not a hint.
        clock: monotonic seconds (``time.monotonic``; tests pass their own).
        on_audio: told once, when the format is settled, before the audio held until
            then reaches the readers.
    """

    __slots__ = (
        "call_id", "ref", "from_number", "to_number", "events", "sink", "decision",
        "_settings", "_delivery", "_readers", "_clock", "_on_audio", "_id_from_event",
        "_url_hint", "_start_hint", "_explicit", "_format", "_probe", "_held", "_held_bytes",
        "_first_at", "_ingest", "_retired_counts", "_retired_seconds", "_retired_overruns",
        "_format_changes",
        "_sec_per_byte", "_n_events", "_event_memory", "_events_dropped", "_unrecognised",
        "_callback_errors", "_overruled", "_logged", "_ended", "_reconnects", "_id_named",
        "_hold_bytes", "timeline", "analytics",
    )

    def __init__(self, params: Mapping[str, Any], settings: CallSettings,
                 delivery: CallDelivery, readers: Mapping[str, Recipient], *,
                 number: int = 0, signed: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 on_audio: Callable[[], None] | None = None) -> None:
        if settings.layout not in ("auto", *LAYOUTS):
            raise ValueError(f"layout must be auto or one of {', '.join(LAYOUTS)}")
        self._settings = settings
        self._delivery = delivery
        self._readers = readers
        self._clock = clock
        self._on_audio = on_audio
        self.ref = params.get("call_ref")
        # Until an event names it: the query's call id, the app's reference, a number.
        named = call_id_from_params(params) or (printable(str(self.ref)) if self.ref else None)
        self._id_named = named is not None
        self.call_id = named or f"call-{number}"
        self._id_from_event = False
        self.from_number: str | None = None
        self.to_number: str | None = None
        self.events: list[Any] = []
        self._url_hint = format_from_params(params)
        self._explicit: str | None = None
        if signed and self._url_hint.layout is not None:
            self._explicit = "signed URL"
        elif settings.layout != "auto":
            self._explicit = "setting"
        self._start_hint = FormatHint()
        self._format = self._hinted()
        self.decision: FormatDecision | None = None
        # The held audio must fit the readers' rings when it is replayed, read in the
        # way that makes the most samples of it (one channel at 8 kHz).
        self._hold_bytes = min(settings.hold_bytes,
                               settings.ring_capacity * 8000 // settings.target_rate)
        self._probe: StreamProbe | None = StreamProbe(self._hold_bytes)
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._first_at: float | None = None
        self._ingest: CallIngest | None = None
        self._retired_counts = [0, 0, 0]  # frames, bytes, decode errors of ended ingests
        self._retired_seconds = 0.0
        self._retired_overruns: Counter[str] = Counter()
        self._format_changes = 0
        self._sec_per_byte = 0.0
        self._n_events = 0
        self._event_memory = 0
        self._events_dropped = 0
        self._unrecognised = 0
        self._callback_errors = 0
        self._overruled = 0
        self._logged: set[str] = set()
        self._ended = False
        self._reconnects = 0
        # Where each delivered sample sits; gaps in the audio move it (see .timeline).
        self.timeline = Timeline(settings.target_rate)
        self.analytics = (None if settings.analytics is None else
                          CallAnalytics(settings.target_rate, settings.analytics,
                                        self.callback_failed))
        self.sink = FrameSink(delivery, self._pending, self._bad_frame,
                              late_after=settings.late_after, on_gap=self._gap,
                              max_ahead=settings.max_ahead_seconds,
                              on_rate_limited=self._rate_limited)

    # -- what the call is ---------------------------------------------------------------

    @property
    def format(self) -> StreamFormat:
        """The settled format once audio flows; until then what the hints say."""
        return self._format

    @property
    def settled(self) -> bool:
        """True once the format is settled (audio reaches the readers)."""
        return self.decision is not None

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def id_from_event(self) -> bool:
        """True once a text frame named the call's id."""
        return self._id_from_event

    @property
    def id_known(self) -> bool:
        """True when the id came from the URL or the metadata."""
        return self._id_named or self._id_from_event

    def reconnected(self) -> None:
        """The call goes on over a new connection: the gap is no lateness; it moves the
        timeline (a ``reconnect`` gap)."""
        self._reconnects += 1
        self.sink.mark_gap("reconnect")

    def resumed(self) -> None:
        """The stream was paused and resumes: the gap is no lateness; it moves the
        timeline (a ``pause`` gap)."""
        self.sink.mark_gap("pause")

    def _gap(self, kind: str, seconds: float) -> None:
        """The sink: the next frame comes ``seconds`` after the audio before it ran out."""
        samples = self.timeline.gap(kind, seconds)
        if samples and self.analytics is not None:
            self.analytics.gap(samples)

    @property
    def held_bytes(self) -> int:
        """Audio held while the format is not settled."""
        return self._held_bytes

    @property
    def stats(self) -> CallStats:
        """A snapshot of the call's counters (cheap; safe from any thread)."""
        frames, nbytes, errors = self._retired_counts
        seconds = self._retired_seconds
        overruns = Counter(self._retired_overruns)
        ingest = self._ingest
        if ingest is not None:
            frames += ingest.frames
            nbytes += ingest.bytes
            errors += ingest.decode_errors
            seconds += ingest.bytes * self._sec_per_byte
            for name, ring in zip(self._channel_names(self._format), ingest.rings, strict=True):
                overruns[name] += ring.overruns
        offset = time.time() - self._clock()
        sink = self.sink
        first, last = sink.first_frame, sink.last_frame
        return CallStats(
            frames=frames, bytes=nbytes, decode_errors=errors,
            overruns=sum(overruns.values()), late_frames=sink.late_frames,
            first_frame_time=None if first is None else first + offset,
            last_frame_time=None if last is None else last + offset,
            events=self._n_events, unrecognised_events=self._unrecognised,
            events_dropped=self._events_dropped,
            format_changes=self._format_changes, received_seconds=seconds,
            callback_errors=self._callback_errors,
            overruns_by_channel={**dict.fromkeys(self._named_channels(), 0), **overruns},
            hints_overruled=self._overruled,
            reconnects=self._reconnects,
            rate_limited_frames=sink.rate_limited_frames,
        )

    def callback_failed(self, what: str) -> None:
        """An application callback raised: counted, logged once per kind."""
        self._callback_errors += 1
        if what not in self._logged:
            self._logged.add(what)
            logger.exception("call %s: %s callback failed (logged once)", self.call_id, what)

    # -- text ---------------------------------------------------------------------------

    def receive_text(self, text: str) -> StreamEvent:
        """One text frame: identity and format hints taken, the event kept within the
        call's limits. Returns it parsed."""
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
            self._take_hint(event.format)
        if event.too_deep:
            self._log_once("deep", "call %s: a text frame nests JSON too deep; kept as text "
                           "(counted in unrecognised_events)", self.call_id)
        settings = self._settings
        if (len(self.events) < settings.max_events
                and self._event_memory + event.memory <= settings.max_event_bytes):
            self.events.append(event.data)
            self._event_memory += event.memory
        else:
            self._events_dropped += 1
            self._log_once("events", "call %s: more than %d events or %d bytes of them, not "
                           "keeping the rest (counted in events_dropped)", self.call_id,
                           settings.max_events, settings.max_event_bytes)
        return event

    def _take_hint(self, hint: FormatHint) -> None:
        if self.decision is None:
            # Before audio is settled: the latest event's fields win over earlier events'.
            old = self._start_hint
            self._start_hint = FormatHint(
                hint.listen_mode if hint.listen_mode is not None else old.listen_mode,
                hint.sample_rate if hint.sample_rate is not None else old.sample_rate,
                hint.channels if hint.channels is not None else old.channels,
                hint.layout if hint.layout is not None else old.layout,
            )
            self._format = self._hinted()
            return
        new = resolve_format(hint, default=self._format)
        if new != self._format:
            self._change_format(new)

    # -- audio --------------------------------------------------------------------------

    def _pending(self, frame: bytes) -> None:
        """A frame before the format is settled (the sink hands it over): held and
        measured until the stream shows its format or the hold is full."""
        if self._ended:
            return
        now = self._clock()
        if self._first_at is None:
            self._first_at = now
        self._held.append(frame)
        self._held_bytes += len(frame)
        probe = self._probe
        assert probe is not None
        probe.add(frame, now)
        full = (self._held_bytes >= self._hold_bytes
                or now - self._first_at >= self._settings.hold_seconds)
        self._try_settle(final=full)

    def settle(self, now: float | None = None) -> bool:
        """Settle the format with what is held if the hold has lasted its time (the
        shell's timer, for a stream that paused inside the hold); True if it did."""
        if self.decision is not None or self._first_at is None or self._ended:
            return False
        now = self._clock() if now is None else now
        if now - self._first_at < self._settings.hold_seconds:
            return False
        self._try_settle(final=True)
        return True

    def hold_left(self, now: float | None = None) -> float:
        """Seconds until the hold's time is up (the whole hold before the first frame)."""
        hold = self._settings.hold_seconds
        if self._first_at is None:
            return hold
        now = self._clock() if now is None else now
        return max(0.0, self._first_at + hold - now) + 0.001

    def _try_settle(self, *, final: bool) -> None:
        probe = self._probe
        assert probe is not None
        decision = settle_format(
            self._format, probe, rate_named=self._rate_named(),
            layout_named=self._layout_named(), explicit=self._explicit, final=final)
        if decision is not None:
            self._settle(decision)

    def _settle(self, decision: FormatDecision) -> None:
        fmt = decision.format
        self.decision = decision
        self._probe = None
        if decision.overruled:
            self._overruled += len(decision.overruled)
            logger.warning("call %s: the stream is %s; it overruled what was hinted",
                           self.call_id, decision.describe())
        else:
            logger.info("call %s: audio %s", self.call_id, decision.describe())
        ingest = self._new_ingest(fmt)
        self._format = fmt
        self._attach(ingest, fmt)
        if self._on_audio is not None:
            # Before the replay: what the application sets up on hearing of the audio
            # (a callback reader) gets the held audio too.
            self._on_audio()
        held, self._held, self._held_bytes = self._held, [], 0
        replay = self.sink.replay
        for frame in held:
            replay(frame)

    def _new_ingest(self, fmt: StreamFormat) -> CallIngest:
        s = self._settings
        return CallIngest(fmt.sample_rate, fmt.channels, s.target_rate,
                          ring_capacity=s.ring_capacity, policy=s.policy, quality=s.quality)

    def _channel_names(self, fmt: StreamFormat) -> tuple[str, ...]:
        names = fmt.channel_names
        if self._settings.swap_channels and fmt.layout == "stereo":
            names = names[::-1]
        return names

    def _named_channels(self) -> tuple[str, ...]:
        return self._format.channel_names if self.decision is not None else ()

    def _attach(self, ingest: CallIngest, fmt: StreamFormat) -> None:
        """Make ``ingest`` the one frames go to, and queue its rings to the readers."""
        names = self._channel_names(fmt)
        self._ingest = ingest
        self._sec_per_byte = 1.0 / fmt.bytes_per_second
        origin = self.timeline.attach(dict(zip(names, ingest.rings, strict=True)))
        vad = (None if self.analytics is None else
               self.analytics.detector(fmt.sample_rate, names, origin))
        self.sink.attach(ingest, self._sec_per_byte, vad)
        self._delivery.add_rings([(self._readers[name], ring)
                                  for name, ring in zip(names, ingest.rings, strict=True)])

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
        logger.info("call %s: format changed from %s %s/%d to %s %s/%d Hz", self.call_id,
                    self._format.listen_mode, self._format.layout, self._format.sample_rate,
                    new.listen_mode, new.layout, new.sample_rate)
        self._format = new
        # New rings are queued behind the old ones before those close, so a reader
        # moves on to them without seeing an end.
        self._attach(ingest, new)
        old.close()
        self._delivery.wake_all()

    def _retire(self, ingest: CallIngest) -> None:
        ingest.flush()
        self._delivery.deliver_taps()
        retired = self._retired_counts
        retired[0] += ingest.frames
        retired[1] += ingest.bytes
        retired[2] += ingest.decode_errors
        self._retired_seconds += ingest.bytes * self._sec_per_byte
        for name, ring in zip(self._channel_names(self._format), ingest.rings, strict=True):
            self._retired_overruns[name] += ring.overruns

    def _bad_frame(self, size: int) -> None:
        self._log_once("frame", "call %s: frame of %d bytes has no whole samples "
                       "(dropped, counted in decode_errors)", self.call_id, size)

    def _rate_limited(self, size: int) -> None:
        self._log_once("fast", "call %s: audio arrives faster than real time, more than "
                       "%g s ahead; dropping what is past that (counted in "
                       "rate_limited_frames)", self.call_id, self._settings.max_ahead_seconds)

    # -- the end --------------------------------------------------------------------------

    def end(self) -> None:
        """The connection is over: settle what is held, push the resampler's tail, close
        the rings, wake every reader. Idempotent."""
        if self._ended:
            return
        if self.decision is None and self._held:
            self._try_settle(final=True)
        self._ended = True
        ingest = self._ingest
        if ingest is not None:
            try:
                self._retire(ingest)
            finally:
                ingest.close()
            # The final counters stay readable through the retired totals.
            self._ingest = None
        if self.analytics is not None:
            self.analytics.retire()
        self._held = []
        self._probe = None
        self.sink.detach()
        self._delivery.end()

    # -- hints ------------------------------------------------------------------------------

    def _hinted(self) -> StreamFormat:
        """The format the hints resolve to: the metadata, then the URL, then the
        server's defaults; an explicit layout overrides theirs."""
        fmt = resolve_format(self._start_hint, self._url_hint,
                             default=self._settings.default_format)
        explicit = self._explicit_layout()
        if explicit is None or explicit == fmt.layout:
            return fmt
        if explicit == "mono":
            return StreamFormat(fmt.listen_mode if fmt.listen_mode != "both" else "caller",
                                fmt.sample_rate)
        return StreamFormat("both", fmt.sample_rate, explicit)

    def _explicit_layout(self) -> str | None:
        if self._explicit == "signed URL":
            return self._url_hint.layout
        if self._explicit == "setting":
            return self._settings.layout
        return None

    def _rate_named(self) -> bool:
        return self._start_hint.sample_rate is not None or self._url_hint.sample_rate is not None

    def _layout_named(self) -> bool:
        return any(h.layout is not None or h.channels is not None
                   for h in (self._start_hint, self._url_hint))

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)
