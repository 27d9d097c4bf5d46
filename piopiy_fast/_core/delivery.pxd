# cython: language_level=3
"""CallDelivery for other core modules to cimport: the one owner of a call's delivery
state. The call's FrameSink runs ``after_frame`` after each frame; a reader (a
``Recipient``: ReaderCore is the one there is) joins and leaves the waits through
``wait_for_ring``, ``wait_for_audio`` and ``stop_waiting``. Nothing else touches the
lists: their entries and the readers' ``_listed``/``_per_frame`` change together."""
cimport cython

from piopiy_fast._core.ringbuffer cimport RingBuffer

# Where a Recipient waits (its _listed).
cdef enum Listed:
    NOT_LISTED = 0
    FOR_RING = 1      # in _ring_waiters: it has no ring yet
    FOR_AUDIO = 2     # in _waiting: audio in the ring it holds


cdef class Recipient:
    """A reader as its call's delivery sees it. The delivery keeps ``_listed`` and
    ``_per_frame``; a subclass says how it is woken and how it takes a new ring."""
    cdef Listed _listed
    cdef bint _per_frame              # counted in the delivery's per_frame

    # Wake the pending wait if what it waits for is there; True if it woke.
    cdef bint wake_if_ready(self) except -1
    # Wake the pending wait, if any, to look again.
    cdef int wake(self) except -1
    # Read ``ring`` after the rings before it (a new format's ring).
    cdef int queue_ring(self, RingBuffer ring) except -1
    # The call is over: let go of what may lead back to the application (a callback).
    cdef int call_ended(self) except -1


@cython.final
cdef class CallDelivery:
    cdef list _waiting                # Recipients awaiting audio in a ring they hold
    cdef list _ring_waiters           # Recipients awaiting their first ring
    cdef list _taps                   # Recipients with a callback: deliver() per frame
    cdef readonly bint ended
    cdef readonly Py_ssize_t per_frame      # waiting Recipients woken by each frame
    cdef readonly Py_ssize_t unseen_frames  # frames since waiting readers were woken
    cdef readonly Py_ssize_t burst_frames   # ... which wake them once this many
    cdef readonly object clocks       # the server's DeliveryClocks
    cdef object _on_callback_error    # None once the call has ended
    cdef object _changed              # threading.Condition of thread readers, or None
    cdef object __weakref__

    # After each frame (the sink calls it): taps get their audio, and waiting
    # readers are woken when one wants every frame or burst_frames are unseen.
    # True when it woke a reader.
    cpdef bint after_frame(self) except -1
    cpdef bint wake_ready(self) except -1
    cpdef wake_all(self)
    cpdef deliver_taps(self)

    cdef int wait_for_ring(self, Recipient reader) except -1
    # ``clock``: the reader's DeliveryClock, or None to be woken by each frame.
    cdef int wait_for_audio(self, Recipient reader, object clock) except -1
    cdef int stop_waiting(self, Recipient reader) except -1
    cdef int _signal_threads(self) except -1
