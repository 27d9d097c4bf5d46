# cython: language_level=3, embedsignature=True
"""How an ``async`` channel reader waits, below Python.

Every ``async for chunk in call.caller`` step goes through here: look at the ring,
hand over what is there, or register a wait with the call's wake-ups and hand the
event loop a future; when the delivery clock wakes the reader, read the ring in the
reader task's own turn. Waking a reader is most of what a call costs a server at
library defaults, so this path runs no Python frame of its own: ``ReaderCore`` keeps a
reader's wait state, ``NextChunk`` is one step of ``async for``.

``ReaderCore`` knows the call's wake-ups object (a ``CallWakeups``) only through its
Python attributes: ``waiting`` and ``ring_waiters`` (lists it joins while it waits;
they are never replaced), ``ended``, ``clocks`` (``clock(latency)`` gives the reader's
delivery clock, or None when it wants every frame) and ``frames.per_frame`` (how many
waiting readers want every frame, counted in the call's FrameSink).
"""
from cpython.list cimport PyList_GET_SIZE

from piopiy_fast._core.ringbuffer cimport RingBuffer, pf_ring_available, pf_ring_closed

import asyncio

cdef object _running_loop = asyncio.get_running_loop
cdef object _NO_CLOCK_YET = object()


cdef class ReaderCore:
    """The wait state of one channel reader (the Python class ``ChannelReader`` adds
    the rest). ``_segments``: the rings it reads, oldest first (more than one only
    after a format change); ``_latency``: its own delivery latency, None for the
    server's."""

    cdef public object _wakeups
    cdef public list _segments
    cdef public object _latency
    # The pending wait: its future, the samples it waits for, the list of the
    # wake-ups that holds this reader, whether it counts as per frame, its clock.
    cdef public object _waiter
    cdef public Py_ssize_t _want
    cdef object _listed_in
    cdef bint _per_frame
    cdef object _clock

    def __init__(self, wakeups):
        self._wakeups = wakeups
        self._segments = []
        self._latency = None
        self._waiter = None
        self._want = 1
        self._listed_in = None
        self._per_frame = False
        self._clock = _NO_CLOCK_YET

    def _forget_clock(self):
        """The latency changed: look the clock up again at the next wait."""
        self._clock = _NO_CLOCK_YET

    # -- what the call's wake-ups ask of a reader -------------------------------------

    def append_ring(self, RingBuffer ring not None):
        """Read ``ring`` after the ones before it (a new format's ring)."""
        self._segments.append(ring)

    cpdef bint wake_if_ready(self) except -1:
        """Wake this reader's wait if what it waits for is there; True if woke."""
        cdef RingBuffer ring
        future = self._waiter
        if future is None or future.done():
            return False
        if PyList_GET_SIZE(self._segments):
            ring = <RingBuffer>self._segments[0]
            if <Py_ssize_t>pf_ring_available(&ring.ring) < self._want and not pf_ring_closed(
                    &ring.ring):
                return False
        future.set_result(None)
        return True

    def wake(self):
        """Wake this reader's wait, if any, to look again."""
        future = self._waiter
        if future is not None and not future.done():
            future.set_result(None)

    # -- waiting ----------------------------------------------------------------------

    cpdef object _head(self):
        """The ring to read next, dropping rings that are closed and drained; None when
        there is none."""
        cdef list segments = self._segments
        cdef RingBuffer ring
        while PyList_GET_SIZE(segments):
            ring = <RingBuffer>segments[0]
            # closed first: once closed, nothing more is written, so available is final.
            if not pf_ring_closed(&ring.ring) or pf_ring_available(&ring.ring):
                return ring
            del segments[0]
        return None

    cpdef object _enlist(self, Py_ssize_t want):
        """Start a wait for ``want`` samples; returns its future. Woken by the clock (or
        by each frame, at latency 0) once this reader has a ring, else when a ring is
        added."""
        if self._waiter is not None:
            self._release()  # an earlier wait, given up
        wakeups = self._wakeups
        future = _running_loop().create_future()
        self._waiter = future
        self._want = want
        if not PyList_GET_SIZE(self._segments):
            self._listed_in = wakeups.ring_waiters
            self._listed_in.append(self)
            return future
        self._listed_in = wakeups.waiting
        self._listed_in.append(self)
        if self._clock is _NO_CLOCK_YET:
            self._clock = wakeups.clocks.clock(self._latency)
        if self._clock is not None:
            self._clock.watch(wakeups)
        else:
            self._per_frame = True
            wakeups.frames.per_frame += 1
        return future

    cpdef _release(self):
        """The wait is over (woken or given up): out of the wake-up lists."""
        if self._listed_in is not None:
            self._listed_in.remove(self)
            self._listed_in = None
        if self._per_frame:
            self._per_frame = False
            self._wakeups.frames.per_frame -= 1
        self._waiter = None

    cpdef _release_if(self, future):
        """End the wait if ``future`` is still its future."""
        if future is not None and self._waiter is future:
            self._release()

    # -- async for ----------------------------------------------------------------------

    def __aiter__(self):
        return self

    def __anext__(self):
        """``async for``: the next chunk, all the audio there is once there is some."""
        return NextChunk(self)


cdef class NextChunk:
    """One step of ``async for`` over a reader, awaitable without a coroutine frame.

    Awaiting it hands the reader's wait future to the task until the clock wakes it,
    then reads the ring in the task's own turn. So a wait given up (``asyncio.wait_for``
    around ``anext``, a cancelled task) leaves the audio in the ring and the reader
    usable: unlike an async generator's, this iteration survives it.
    """

    cdef ReaderCore _reader
    cdef object _future

    def __cinit__(self, ReaderCore reader not None):
        self._reader = reader
        self._future = None

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef ReaderCore reader = self._reader
        cdef RingBuffer ring
        if self._future is not None:  # woken: the wait is over
            reader._release_if(self._future)
            self._future = None
        head = reader._head()
        if head is not None:
            ring = <RingBuffer>head
            if pf_ring_available(&ring.ring):
                raise StopIteration(ring.read())
        elif reader._wakeups.ended:
            raise StopAsyncIteration
        future = self._future = reader._enlist(1)
        future._asyncio_future_blocking = True  # what a task looks for in what is yielded
        return future

    def send(self, value):
        return self.__next__()

    def throw(self, typ, val=None, tb=None):
        self.close()
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        elif not isinstance(val, BaseException):
            val = typ(val)
        if tb is not None:
            val = val.with_traceback(tb)
        raise val

    def close(self):
        self._reader._release_if(self._future)
        self._future = None
