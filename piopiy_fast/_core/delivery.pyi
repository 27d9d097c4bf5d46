"""A call's delivery state, below Python: who waits for audio, who takes it by
callback, and whether the call has ended."""
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from .ringbuffer import RingBuffer

class Clock(Protocol):
    """What wakes waiting readers every so often (a ``DeliveryClock``)."""
    def watch(self, delivery: CallDelivery, /) -> None: ...

class Clocks(Protocol):
    """A server's clocks (``DeliveryClocks``)."""
    @property
    def latency(self) -> float: ...
    def clock(self, latency: float | None, /) -> Clock | None: ...

class Recipient:
    """A reader as its call's delivery sees it: woken, and handed new rings."""

class CallDelivery:
    """The delivery state a call shares with its FrameSink and its channel readers."""
    def __init__(self, clocks: Clocks, on_callback_error: Callable[[str], object], *,
                 burst_frames: int = 16) -> None: ...
    @property
    def ended(self) -> bool: ...
    @property
    def per_frame(self) -> int:
        """Waiting readers woken by each frame (latency 0)."""
    @property
    def unseen_frames(self) -> int:
        """Frames since the waiting readers were last woken."""
    @property
    def burst_frames(self) -> int: ...
    @property
    def clocks(self) -> Clocks:
        """The server's delivery clocks."""
    @property
    def waiting(self) -> int:
        """Readers waiting for audio in a ring they hold."""
    @property
    def ring_waiters(self) -> int:
        """Readers waiting for their first ring."""
    @property
    def taps(self) -> int:
        """Readers with a callback."""
    def after_frame(self) -> bool:
        """Taps get their audio; waiting readers are woken when one wants every frame
        or ``burst_frames`` frames are unseen. True if it woke a reader."""
    def wake_ready(self) -> bool:
        """Wake the waiting readers that have what they wait for; True if any."""
    def wake_all(self) -> None:
        """Wake every waiting reader to look again."""
    def deliver_taps(self) -> None:
        """Hand each callback reader what its ring holds."""
    def add_rings(self, pairs: Iterable[tuple[Recipient, RingBuffer]]) -> None:
        """Queue a new ring behind each reader's current ones, then wake every reader."""
    def end(self) -> None:
        """The call is over; every reader and the error hook are let go."""
    def thread_signal(self) -> threading.Condition:
        """The condition thread readers wait on for new rings or the end of the call."""
    def add_tap(self, reader: Recipient) -> None: ...
    def remove_tap(self, reader: Recipient) -> None: ...
    def callback_failed(self, what: str) -> None:
        """An application callback raised: tell the call (nothing once it has ended)."""
