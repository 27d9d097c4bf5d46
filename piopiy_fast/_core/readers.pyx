# cython: language_level=3, embedsignature=True
"""How an ``async`` channel reader waits, below Python.

Every ``async for chunk in call.caller`` step goes through here: look at the ring,
hand over what is there, or register a wait with the call's delivery (``CallDelivery``)
and hand the event loop a future; when the delivery clock wakes the reader, read the
ring in the reader task's own turn. Waking a reader is most of what a call costs a
server at library defaults, so this path runs no Python frame of its own:
``ReaderCore`` keeps a reader's wait state, ``NextChunk`` is one step of ``async for``.

``ReaderCore`` is what the delivery calls a ``Recipient``: it joins and leaves the
delivery's waits through the delivery's C methods (both are declared in
``delivery.pxd``), and the delivery wakes it and hands it new rings through the
Recipient methods it overrides here.
"""
from cpython.list cimport PyList_GET_SIZE

from piopiy_fast._core.delivery cimport CallDelivery, Recipient
from piopiy_fast._core.ringbuffer cimport RingBuffer, pf_ring_available, pf_ring_closed

import asyncio

cdef object _running_loop = asyncio.get_running_loop
cdef object _NO_CLOCK_YET = object()


cdef class ReaderCore(Recipient):
    """The wait state of one channel reader (the Python class ``ChannelReader`` adds
    the rest). ``_delivery``: its call's delivery; ``_segments``: the rings it reads,
    oldest first (more than one only after a format change); ``_latency``: its own
    delivery latency, None for the server's."""

    cdef readonly CallDelivery _delivery
    cdef public list _segments
    cdef public object _latency
    # The pending wait: its future, the samples it waits for, its clock (where it is
    # listed is the delivery's business, in the Recipient's fields).
    cdef public object _waiter
    cdef public Py_ssize_t _want
    cdef object _clock
    # ChannelReader's on_chunk callback, here so that the end of the call lets go of it.
    cdef public object _callback

    def __init__(self, CallDelivery delivery not None):
        self._delivery = delivery
        self._segments = []
        self._latency = None
        self._waiter = None
        self._want = 1
        self._clock = _NO_CLOCK_YET
        self._callback = None

    def _forget_clock(self):
        """The latency changed: look the clock up again at the next wait."""
        self._clock = _NO_CLOCK_YET

    # -- what the call's delivery asks of a reader --------------------------------------

    cdef int queue_ring(self, RingBuffer ring) except -1:
        self._segments.append(ring)
        return 0

    def append_ring(self, RingBuffer ring not None):
        """Read ``ring`` after the ones before it (what ``CallDelivery.add_rings`` does,
        without waking anyone)."""
        self.queue_ring(ring)

    cdef bint wake_if_ready(self) except -1:
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

    cdef int wake(self) except -1:
        future = self._waiter
        if future is not None and not future.done():
            future.set_result(None)
        return 0

    cdef int call_ended(self) except -1:
        # No audio is delivered by callback after the end; the callback may hold the
        # call (a lambda over it), which holds this reader.
        self._callback = None
        return 0

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
        cdef CallDelivery delivery = self._delivery
        if self._waiter is not None:
            self._release()  # an earlier wait, given up
        future = _running_loop().create_future()
        self._waiter = future
        self._want = want
        if not PyList_GET_SIZE(self._segments):
            delivery.wait_for_ring(self)
            return future
        if self._clock is _NO_CLOCK_YET:
            self._clock = delivery.clocks.clock(self._latency)
        delivery.wait_for_audio(self, self._clock)
        return future

    cpdef _release(self):
        """The wait is over (woken or given up): out of the delivery's waits."""
        self._delivery.stop_waiting(self)
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
        elif reader._delivery.ended:
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
