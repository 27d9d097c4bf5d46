"""One live call as the application sees it: the asyncio shell over the call core.

What the call decides (format, layout, identity, events, counters) is in
:class:`~piopiy_fast.stream.call.CallCore`, which does no I/O. ``CallStream`` adds what
needs the event loop: its readers (:mod:`.channel`), waiting for audio or the end,
event callbacks, and the controls sent back over the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..audio import CallDelivery, FrameSink
from ..errors import PiopiyValidationError
from ..stream.call import BURST_FRAMES, CallCore, CallSettings, CallStats
from ..stream.events import StreamEvent
from ..stream.layout import FormatDecision
from ..stream.replies import ReplyBatcher
from ..stream.wire import MIX, StreamFormat
from .channel import ChannelReader
from .clock import DeliveryClocks
from .controls import CallControls
from .latch import Latch

if TYPE_CHECKING:
    from ..analytics.call import CallAnalytics
    from ..stream.timeline import Timeline
    from .transports.base import CloseInfo, Link

logger = logging.getLogger("piopiy_fast.receiver")


class CallStream(CallControls):
    """One Piopiy stream connection: a call's audio, events and controls.

    Created by :class:`~piopiy_fast.receiver.server.StreamServer` for each accepted
    connection and handed to the application before its first audio reaches a reader.
    What is known then: the URL's call id and format hints, and any text that came
    first. What may still change until ``await call.wait_audio()`` returns: the format
    (``listen_mode``, ``source_rate``, ``layout``: the stream's first half second
    settles them, see :mod:`piopiy_fast.stream.layout`) and, when the metadata comes
    after the first audio, ``call_id`` and the numbers.

    Channels: ``caller`` and ``callee`` for a two-party ``stereo`` stream (or the one
    party of a one-party stream); ``mix`` for a ``mixed`` stream, whose one channel holds
    both parties summed (then ``caller`` and ``callee`` get no audio and end with the
    call). ``channels`` names those the settled format fills.

    Attributes:
        remote: the peer's address.
        route: the request path, without its query.
        opened_at: when the connection opened (``time.time()``; every call time is
            wall-clock).
        paused: True between ``pause()`` and ``resume()``.
        resumed_at: ``time.time()`` of the last ``resume()``.
        close_info: how the connection ended, once it has.
        error: what ended the call, when it failed.
    """

    __slots__ = (
        "remote", "route", "target_rate", "opened_at", "paused", "resumed_at",
        "caller", "callee", "mix", "close_info", "error",
        "_core", "_link", "_settings", "_delivery", "_replies", "_event_waiters",
        "_event_callbacks", "_done", "_audio", "_known", "_opened", "_hold_timer",
        "closed_by_receiver", "discarded", "_on_known", "_announced", "_dispatched",
    )

    def __init__(self, link: Link, params: Mapping[str, Any], settings: CallSettings,
                 clocks: DeliveryClocks, *, number: int = 0, signed: bool = False,
                 on_known: Callable[[CallStream], None] | None = None) -> None:
        self._link = link
        self._settings = settings
        self.opened_at = time.time()
        self._opened = time.monotonic()
        self.paused = False
        self.resumed_at: float | None = None
        self.remote = link.handshake.remote
        self.route = link.handshake.route
        self.target_rate = settings.target_rate
        self.close_info: CloseInfo | None = None
        self.error: str | None = None
        self._replies: ReplyBatcher | None = None
        self._event_waiters: list[asyncio.Future[None]] = []
        self._event_callbacks: list[Callable[[Any], Any]] = []
        self._done = Latch()
        self._audio = Latch()
        self._known = Latch()
        self.closed_by_receiver: str | None = None
        self.discarded = False
        self._on_known = on_known
        self._announced = False
        self._dispatched = 0  # events kept that callbacks have been given
        self._delivery = CallDelivery(clocks, self._callback_failed, burst_frames=BURST_FRAMES)
        rate = settings.target_rate
        self.caller = ChannelReader(self._delivery, "caller", rate)
        self.callee = ChannelReader(self._delivery, "callee", rate)
        self.mix = ChannelReader(self._delivery, MIX, rate)
        self._core = CallCore(params, settings, self._delivery,
                              {"caller": self.caller, "callee": self.callee, MIX: self.mix},
                              number=number, signed=signed, on_audio=self._audio_flows)
        for reader in (self.caller, self.callee, self.mix):
            reader.timeline = self._core.timeline
        self._hold_timer: asyncio.TimerHandle | None = None
        self._watch_hold(settings.hold_seconds)

    def __repr__(self) -> str:
        return (f"<CallStream {self.call_id} {self.listen_mode} {self.layout} "
                f"{self.source_rate}->{self.target_rate} Hz{' ended' if self.ended else ''}>")

    # -- what the call is -----------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """From the first event naming one, else the URL's ``call_id``, else its
        ``call_ref``, else ``call-<n>``."""
        return self._core.call_id

    @property
    def ref(self) -> Any:
        """The URL's ``call_ref`` (the application's own reference), if any."""
        return self._core.ref

    @property
    def from_number(self) -> str | None:
        return self._core.from_number

    @property
    def to_number(self) -> str | None:
        return self._core.to_number

    @property
    def events(self) -> list[Any]:
        """Text frames in order (a dict when JSON, else the raw string), within the
        call's limits."""
        return self._core.events

    @property
    def format(self) -> StreamFormat:
        """Listen mode, source rate and layout (settled once audio flows)."""
        return self._core.format

    @property
    def listen_mode(self) -> str:
        """``caller``, ``callee`` or ``both``."""
        return self._core.format.listen_mode

    @property
    def source_rate(self) -> int:
        """The rate the platform sends at (its ``voice_quality``)."""
        return self._core.format.sample_rate

    @property
    def layout(self) -> str:
        """``mono`` (one party), ``mixed`` (both parties in one channel, read from
        ``mix``) or ``stereo`` (both parties, read from ``caller`` and ``callee``)."""
        return self._core.format.layout

    @property
    def format_decision(self) -> FormatDecision | None:
        """How the format was settled (and which hints the stream overruled); None
        before audio."""
        return self._core.decision

    @property
    def channels(self) -> tuple[str, ...]:
        """Names of the channels the current format fills."""
        return self._core.format.channel_names

    @property
    def audio_started(self) -> bool:
        """True once the format is settled and audio reaches the readers."""
        return self._core.settled

    @property
    def ended(self) -> bool:
        """True once the connection is over (readers may still hold unread audio)."""
        return self._core.ended

    @property
    def stats(self) -> CallStats:
        """A snapshot of the call's counters (cheap; safe from any thread)."""
        return self._core.stats

    @property
    def timeline(self) -> Timeline:
        """Where each delivered sample sits, and the gaps that moved it (see
        :mod:`piopiy_fast.stream.timeline`)."""
        return self._core.timeline

    @property
    def analytics(self) -> CallAnalytics | None:
        """The call's voice activity and conversation metrics, when the server has
        analytics on (see :mod:`piopiy_fast.analytics`)."""
        return self._core.analytics

    def channel(self, name: str) -> ChannelReader:
        """The reader of ``caller``, ``callee`` or ``mix``."""
        if name == "caller":
            return self.caller
        if name == "callee":
            return self.callee
        if name == MIX:
            return self.mix
        raise PiopiyValidationError(f"channel must be caller, callee or mix, not {name!r}")

    # -- what the server drives --------------------------------------------------------

    @property
    def sink(self) -> FrameSink:
        """Where the transport hands this call's binary frames."""
        return self._core.sink

    @property
    def id_from_metadata(self) -> bool:
        """True once a text frame named the call's id."""
        return self._core.id_from_event

    @property
    def id_known(self) -> bool:
        """True when the call's id is its own (from the URL or the metadata), not a
        number the receiver gave it."""
        return self._core.id_known

    @property
    def format_summary(self) -> str:
        """The format in a few words, with what settled it."""
        decision = self._core.decision
        if decision is None:
            return "no audio"
        return decision.describe()

    async def wait_known(self) -> None:
        """Wait until the call has been handed to the application: what identifies it
        has arrived (the metadata, or the audio, which settles the format), or
        ``hold_seconds`` passed, or it ended."""
        await self._known.wait()

    def announce(self) -> None:
        """Hand the call to the application (once): the server's ``on_known``."""
        if self._announced or self.discarded:
            return
        self._announced = True
        self._known.set()
        if self._on_known is not None:
            self._on_known(self)

    def receive_text(self, text: str) -> StreamEvent:
        """A text frame from the platform, into the call's core (identity, hints, the
        events kept). The server then hands the call over if it was not, and
        :meth:`dispatch` gives the event to callbacks and iterators."""
        return self._core.receive_text(text)

    def dispatch(self, event: StreamEvent) -> None:
        """Hand an event to the ``on_event`` callbacks and wake the event iterators."""
        for callback in self._event_callbacks:
            try:
                callback(event.data)
            except Exception:
                self._core.callback_failed("event")
        self._dispatched = len(self._core.events)
        if self._event_waiters:
            self._wake_event_waiters()

    def finish(self, close_info: CloseInfo | None, error: str | None = None) -> None:
        """The connection is over: audio held is settled and delivered, the resampler's
        tail pushed, the rings closed, every waiter woken."""
        if self._core.ended:
            return
        self.close_info = close_info
        self.error = error
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self._core.end()
        self.announce()
        if self._core.analytics is not None:
            self._core.analytics.stop_callbacks()
        self._wake_event_waiters()
        self._event_callbacks.clear()
        self._audio.set()
        self._done.set()

    def suspend(self, close_info: CloseInfo | None) -> None:
        """The connection dropped but the call may go on over another (the readers
        wait): remember how it ended, in case none comes."""
        self.close_info = close_info

    def reconnect(self, link: Link) -> None:
        """Go on over a new connection (the gap is marked, not counted as lateness)."""
        self._link = link
        self.remote = link.handshake.remote
        self.close_info = None
        self._core.reconnected()

    def discard(self) -> None:
        """This connection turned out to continue another call: end this one quietly
        (it was never handed to the application)."""
        self.discarded = True
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self._core.end()
        self._known.set()

    def _audio_flows(self) -> None:
        self.announce()
        self._audio.set()

    def _watch_hold(self, after: float) -> None:
        """Settle a held format when the hold's time is up even if no frame comes to
        say so (a pause inside the first half second)."""
        self._hold_timer = asyncio.get_running_loop().call_later(after, self._hold_due)

    def _hold_due(self) -> None:
        self._hold_timer = None
        self.announce()
        core = self._core
        if not core.settled and not core.ended:
            core.settle()
            if not core.settled:
                self._watch_hold(core.hold_left())

    def _callback_failed(self, what: str) -> None:
        self._core.callback_failed(what)

    def _wake_event_waiters(self) -> None:
        waiters, self._event_waiters = self._event_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    # -- events -------------------------------------------------------------------------

    def on_event(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(event)`` on the event loop for each text frame, in order: at
        once for those the call kept before, then as they arrive."""
        for data in self._core.events[:self._dispatched]:
            try:
                callback(data)
            except Exception:
                self._core.callback_failed("event")
        if not self.ended:
            self._event_callbacks.append(callback)

    async def iter_events(self) -> AsyncIterator[Any]:
        """Yield every event (from the first) in order, ending when the call ends."""
        index = 0
        while True:
            events = self._core.events
            while index < len(events):
                yield events[index]
                index += 1
            if self._core.ended:
                return
            future = asyncio.get_running_loop().create_future()
            self._event_waiters.append(future)
            await future

    async def wait_audio(self) -> bool:
        """Wait until the format is settled and audio flows, or the call ends; True if
        audio arrived."""
        await self._audio.wait()
        return self.audio_started

    async def wait_closed(self) -> None:
        """Wait until the connection is over."""
        await self._done.wait()

    # -- for the server's limits --------------------------------------------------------

    @property
    def age(self) -> float:
        """Seconds since the connection opened."""
        return time.monotonic() - self._opened
