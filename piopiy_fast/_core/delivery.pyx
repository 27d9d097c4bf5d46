# cython: language_level=3, embedsignature=True
"""A call's delivery state, below Python: who waits for audio, who takes it by
callback, and whether the call has ended.

One ``CallDelivery`` per call, shared by the call, its FrameSink and its readers.
Readers are woken by time, not by frame: Piopiy sends one 20 ms frame per call every
20 ms, and waking a reader task costs more than the audio work on that frame, so a
waiting ``async`` reader is woken by its server's delivery clock (one timer for every
call), which every ``latency`` seconds wakes together the readers whose audio is there
(``wake_ready``). After each frame the sink runs ``after_frame``, in C: callback
readers (taps) get their audio, and the waiting readers are woken at once only when
one of them wants every frame (``latency = 0``) or ``burst_frames`` frames arrived
since they were last woken (a burst faster than real time would fill the rings
before the clock comes). Thread readers wait in their ring, or on ``thread_signal()``
for their first ring.

The delivery knows a reader as a ``Recipient``; the clock is any object with
``clock(latency)`` giving one with ``watch(delivery)``. ``end()`` drops every
reference to a reader and to the call, so an ended call is freed by reference
counting alone.
"""
from cpython.list cimport PyList_GET_SIZE

from piopiy_fast._core.ringbuffer cimport RingBuffer

import threading

_MAKING_SIGNALS = threading.Lock()  # two thread readers of one call make one condition


cdef class Recipient:
    """A reader as its call's delivery sees it: woken, and handed new rings. The base
    does nothing; ``ReaderCore`` is the reader."""

    cdef bint wake_if_ready(self) except -1:
        return False

    cdef int wake(self) except -1:
        return 0

    cdef int queue_ring(self, RingBuffer ring) except -1:
        return 0

    cdef int call_ended(self) except -1:
        return 0


cdef class CallDelivery:
    """The delivery state a call shares with its FrameSink and its channel readers.

    Args:
        clocks: The server's delivery clocks (``DeliveryClocks``): ``clock(latency)``
            gives the clock that wakes a waiting reader, None for every frame.
        on_callback_error: Called with what failed (a channel's name) when an
            application callback raises; dropped at ``end()``.
        burst_frames: Frames that arrive while readers wait and wake them without
            waiting for the clock.

    Raises:
        TypeError: ``on_callback_error`` is not callable.
        ValueError: ``burst_frames`` is less than 1.
    """

    def __init__(self, clocks, on_callback_error, *, Py_ssize_t burst_frames=16):
        if not callable(on_callback_error):
            raise TypeError("on_callback_error must be callable")
        if burst_frames < 1:
            raise ValueError("burst_frames must be at least 1")
        self._waiting = []
        self._ring_waiters = []
        self._taps = []
        self.ended = False
        self.per_frame = 0
        self.unseen_frames = 0
        self.burst_frames = burst_frames
        self.clocks = clocks
        self._on_callback_error = on_callback_error
        self._changed = None

    # -- after each frame ---------------------------------------------------------------

    cpdef bint after_frame(self) except -1:
        """What the sink runs after each frame: hand the taps their audio; count the
        frame while readers wait, and wake those that are ready when one of them wants
        every frame or ``burst_frames`` frames are unseen. True if it woke a reader."""
        if PyList_GET_SIZE(self._taps):
            self.deliver_taps()
        if not PyList_GET_SIZE(self._waiting):
            return False
        self.unseen_frames += 1
        if self.per_frame > 0 or self.unseen_frames >= self.burst_frames:
            return self.wake_ready()
        return False

    cpdef bint wake_ready(self) except -1:
        """Wake the waiting readers that now have what they wait for (a clock's tick,
        or a frame); True if any."""
        cdef Recipient reader
        cdef bint woke = False
        self.unseen_frames = 0
        # Waking sets a future's result, which only schedules its task: the list does
        # not change during the loop (and a list loop here re-reads its length anyway).
        for reader in self._waiting:
            if reader.wake_if_ready():
                woke = True
        return woke

    cpdef wake_all(self):
        """Wake every waiting reader to look again (rings changed, or the call ended)."""
        cdef Recipient reader
        for reader in self._waiting + self._ring_waiters:
            reader.wake()

    cpdef deliver_taps(self):
        """Hand each callback reader what its ring holds (its ``deliver()``)."""
        # A copy: a callback may remove its own tap (on_chunk(None)).
        for tap in tuple(self._taps):
            tap.deliver()

    # -- what the call does --------------------------------------------------------------

    def add_rings(self, pairs):
        """Queue a new ring behind each reader's current ones, then wake every reader.

        Args:
            pairs: ``(reader, ring)`` pairs: a ``Recipient`` and a ``RingBuffer``.

        Raises:
            TypeError: A pair is not a reader and a ring (then no ring is added).
        """
        cdef Recipient reader
        cdef RingBuffer ring
        checked = [(<Recipient?>reader, <RingBuffer?>ring) for reader, ring in pairs]
        for reader, ring in checked:
            reader.queue_ring(ring)
        self._signal_threads()
        self.wake_all()

    def end(self):
        """The call is over: waiting readers and thread readers see it. The delivery
        lets go of every reader and of the error hook, and each reader it knows of
        lets go of its callback, so nothing here keeps the call alive."""
        cdef Recipient reader
        cdef list woken = self._waiting + self._ring_waiters
        cdef list taps = self._taps
        self.ended = True
        for reader in woken:
            reader._listed = NOT_LISTED
            reader._per_frame = False
        self._waiting = []
        self._ring_waiters = []
        self._taps = []
        self.per_frame = 0
        self.unseen_frames = 0
        self._on_callback_error = None
        self._signal_threads()
        for reader in taps:
            reader.call_ended()
        for reader in woken:
            reader.call_ended()
            reader.wake()

    def thread_signal(self):
        """The condition thread readers wait on for new rings or the end of the call,
        signalled by ``add_rings`` and ``end``; made by the first thread reader (most
        calls have none)."""
        with _MAKING_SIGNALS:
            if self._changed is None:
                self._changed = threading.Condition()
            return self._changed

    cdef int _signal_threads(self) except -1:
        # The change is made before the condition is looked at: a thread reader that
        # makes the condition after this look finds the change when it checks under it.
        changed = self._changed
        if changed is not None:
            with changed:
                changed.notify_all()
        return 0

    # -- what readers do ---------------------------------------------------------------

    def add_tap(self, Recipient reader not None):
        """``reader`` has a callback: ``deliver_taps`` hands it audio. Nothing after
        the end (no audio is delivered then)."""
        if not self.ended and reader not in self._taps:
            self._taps.append(reader)

    def remove_tap(self, Recipient reader not None):
        """``reader`` has no callback any more."""
        if reader in self._taps:
            self._taps.remove(reader)

    def callback_failed(self, str what not None):
        """An application callback raised: tell the call (nothing once it has ended)."""
        if self._on_callback_error is not None:
            self._on_callback_error(what)

    cdef int wait_for_ring(self, Recipient reader) except -1:
        self.stop_waiting(reader)
        self._ring_waiters.append(reader)
        reader._listed = FOR_RING
        return 0

    cdef int wait_for_audio(self, Recipient reader, object clock) except -1:
        self.stop_waiting(reader)
        self._waiting.append(reader)
        reader._listed = FOR_AUDIO
        if clock is None:
            reader._per_frame = True
            self.per_frame += 1
        else:
            clock.watch(self)
        return 0

    cdef int stop_waiting(self, Recipient reader) except -1:
        if reader._listed == FOR_RING:
            self._ring_waiters.remove(reader)
        elif reader._listed == FOR_AUDIO:
            self._waiting.remove(reader)
        reader._listed = NOT_LISTED
        if reader._per_frame:
            reader._per_frame = False
            self.per_frame -= 1
        return 0

    # -- what the clock and tests read --------------------------------------------------

    @property
    def waiting(self):
        """Readers waiting for audio in a ring they hold."""
        return PyList_GET_SIZE(self._waiting)

    @property
    def ring_waiters(self):
        """Readers waiting for their first ring."""
        return PyList_GET_SIZE(self._ring_waiters)

    @property
    def taps(self):
        """Readers with a callback."""
        return PyList_GET_SIZE(self._taps)
