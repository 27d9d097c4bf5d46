"""A call's delivery state (CallDelivery): when its readers are woken, what its taps
get, what its end does, and that an ended call is freed by reference counting.

Each test builds a call by hand from the real parts (delivery, frame sink, native
ingest, channel readers, the server's clocks) and drives it with frames, on a real
event loop; counts and samples are exact."""
from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import numpy as np
import pytest

from piopiy_fast.audio import CallDelivery, CallIngest, FrameSink
from piopiy_fast.receiver.channel import ChannelReader
from piopiy_fast.receiver.clock import DeliveryClocks

RATE = 8000
SEC_PER_BYTE = 1.0 / (RATE * 4)  # L16 sample pairs


def both_frames(count, seed=0):
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal((count, 160, 2)) * 3000).astype("<i2")
    return [frame.tobytes() for frame in audio]


def new_ingest():
    return CallIngest(RATE, 2, 16000, ring_capacity=1 << 16)


class HandCall:
    """A call from its parts: the first frame attaches the ingest, queues its rings to
    caller and callee and is replayed (what the receiver's call does)."""

    def __init__(self, latency=1.0, burst_frames=16):
        self.errors: list[str] = []
        self.taken: list[np.ndarray] = []
        self.delivery = CallDelivery(DeliveryClocks(latency), self.callback_failed,
                                     burst_frames=burst_frames)
        self.sink = FrameSink(self.delivery, self.pending, self.bad_frame, late_after=1e9)
        self.caller = ChannelReader(self.delivery, "caller", 16000)
        self.callee = ChannelReader(self.delivery, "callee", 16000)
        self.ingest = new_ingest()
        self.reference = new_ingest()

    def pending(self, data: bytes) -> bool:
        self.sink.attach(self.ingest, SEC_PER_BYTE)
        self.delivery.add_rings([(self.caller, self.ingest.rings[0]),
                                 (self.callee, self.ingest.rings[1])])
        return self.sink.replay(data)

    def bad_frame(self, size: int) -> None:
        raise AssertionError(size)

    def callback_failed(self, what: str) -> None:
        self.errors.append(what)

    def take(self, chunk: np.ndarray) -> None:
        """An on_chunk callback that holds the call (its bound method)."""
        self.taken.append(chunk)

    def feed(self, frame: bytes) -> bool:
        """The frame to the sink, and to a reference ingest: ``expected`` then holds
        what each channel's ring got."""
        self.reference.ingest(frame)
        return self.sink.feed(frame)

    def expected(self, channel: int) -> np.ndarray:
        return self.reference.rings[channel].read()

    def end(self) -> None:
        """The end as a call does it: the rings close, the sink and delivery let go."""
        self.ingest.close()
        self.sink.detach()
        self.delivery.end()

    def counts(self) -> tuple[int, int, int, int, int]:
        d = self.delivery
        return d.waiting, d.ring_waiters, d.taps, d.per_frame, d.unseen_frames


async def started(coroutine):
    """A task for ``coroutine`` that has run up to its first wait."""
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(0)
    return task


def test_a_waiting_reader_is_woken_by_a_burst_not_by_each_frame():
    async def main():
        call = HandCall(latency=1.0, burst_frames=4)
        frames = both_frames(6)
        task = await started(anext(call.caller))
        assert call.counts() == (0, 1, 0, 0, 0)  # no ring yet
        # The first frame brings the rings, which wakes the reader; the replay of the
        # frame finds it no longer waiting in a ring, so it is not woken by the frame.
        assert call.feed(frames[0]) is False
        np.testing.assert_array_equal(await task, call.expected(0))
        assert call.counts() == (0, 0, 0, 0, 0)
        task = await started(anext(call.caller))
        assert call.counts() == (1, 0, 0, 0, 0)
        # Counted while it waits; woken at the 4th unseen frame, and the count resets.
        woke = []
        for frame, unseen in zip(frames[1:5], (1, 2, 3, 0), strict=True):
            woke.append(call.feed(frame))
            assert call.delivery.unseen_frames == unseen
        assert woke == [False, False, False, True]
        np.testing.assert_array_equal(await task, call.expected(0))
        assert call.counts() == (0, 0, 0, 0, 0)
        # Nobody waits: frames are not counted.
        assert call.feed(frames[5]) is False
        assert call.counts() == (0, 0, 0, 0, 0)

    asyncio.run(main())


def test_a_reader_at_latency_zero_is_woken_by_each_frame():
    async def main():
        call = HandCall(latency=1.0)
        frames = both_frames(4)
        call.feed(frames[0])
        call.caller.latency = 0
        np.testing.assert_array_equal(await anext(call.caller), call.expected(0))
        for frame in frames[1:]:
            task = await started(anext(call.caller))
            assert call.counts() == (1, 0, 0, 1, 0)
            assert call.feed(frame) is True
            assert call.delivery.unseen_frames == 0
            np.testing.assert_array_equal(await task, call.expected(0))
            assert call.counts() == (0, 0, 0, 0, 0)

    asyncio.run(main())


def test_a_reader_is_woken_only_once_it_has_all_it_waits_for():
    async def main():
        call = HandCall(latency=1.0)
        frames = both_frames(4)
        call.feed(frames[0])
        call.caller.latency = 0
        np.testing.assert_array_equal(await anext(call.caller), call.expected(0))
        # Wait for exactly what the next three frames bring to the caller's ring.
        sizes = [call.reference.ingest(f) for f in frames[1:]]
        call.reference = new_ingest()
        call.reference.ingest(frames[0])
        call.expected(0)
        task = await started(call.caller.read_exactly(sum(sizes)))
        assert [call.feed(f) for f in frames[1:]] == [False, False, True]
        np.testing.assert_array_equal(await task, call.expected(0))
        assert call.counts() == (0, 0, 0, 0, 0)

    asyncio.run(main())


def test_the_clock_wakes_readers_with_audio_and_lets_go_of_a_call_nobody_waits_in():
    async def main():
        call = HandCall(latency=0.01)
        frames = both_frames(2)
        call.feed(frames[0])
        np.testing.assert_array_equal(await anext(call.caller), call.expected(0))
        task = await started(anext(call.caller))
        clock = call.delivery.clocks.clock(None)
        assert list(clock._watched) == [call.delivery]
        assert call.feed(frames[1]) is False  # one frame: not a burst
        np.testing.assert_array_equal(await task, call.expected(0))  # the clock's tick
        await asyncio.sleep(0.05)
        assert list(clock._watched) == []

    asyncio.run(main())


def test_taps_get_each_frames_audio_and_their_errors_are_reported():
    call = HandCall()
    frames = both_frames(3)
    got: list[np.ndarray] = []
    call.caller.on_chunk(got.append)
    call.caller.on_chunk(got.append)  # the same reader is one tap
    assert call.counts() == (0, 0, 1, 0, 0)

    def fail(chunk):
        raise ValueError("application bug")

    call.callee.on_chunk(fail)
    assert call.delivery.taps == 2
    wanted = []
    for frame in frames:
        assert call.feed(frame) is False
        wanted.append(call.expected(0))
        call.expected(1)
    for chunk, want in zip(got, wanted, strict=True):
        np.testing.assert_array_equal(chunk, want)
    assert call.errors == ["callee"] * 3
    call.callee.on_chunk(None)
    call.callee.on_chunk(None)
    assert call.delivery.taps == 1


def test_a_callback_that_removes_another_tap_costs_no_error():
    call = HandCall()
    frames = both_frames(2)
    got: list[str] = []

    def first(chunk):
        got.append("caller")
        call.callee.on_chunk(None)

    call.caller.on_chunk(first)
    call.callee.on_chunk(lambda chunk: got.append("callee"))
    for frame in frames:
        call.feed(frame)
    assert got == ["caller", "caller"]
    assert call.errors == []


def test_add_rings_checks_every_pair_before_queueing_any():
    call = HandCall()
    ring = call.ingest.rings[0]
    with pytest.raises(TypeError):
        call.delivery.add_rings([(call.caller, ring), (object(), ring)])
    with pytest.raises(TypeError):
        call.delivery.add_rings([(call.caller, "ring")])
    assert call.caller._segments == []
    call.delivery.add_rings([(call.caller, ring)])
    assert call.caller._segments == [ring]


def test_add_rings_and_the_end_wake_thread_readers_waiting_for_a_ring():
    call = HandCall()
    frames = both_frames(1)
    signal = call.delivery.thread_signal()
    assert call.delivery.thread_signal() is signal
    results: dict[str, np.ndarray] = {}
    size = new_ingest().ingest(frames[0])  # what the first frame brings a channel

    def read(reader):
        results[reader.name] = reader.read_blocking(size, timeout=30)

    extra = ChannelReader(call.delivery, "extra", 16000)  # never gets a ring
    threads = [threading.Thread(target=read, args=(r,)) for r in (call.caller, extra)]
    for thread in threads:
        thread.start()
    call.feed(frames[0])
    threads[0].join(30)
    assert not threads[0].is_alive()
    np.testing.assert_array_equal(results["caller"], call.expected(0))
    call.end()
    threads[1].join(30)
    assert not threads[1].is_alive()
    assert results["extra"].size == 0 and extra.ended


def test_the_end_wakes_every_waiter_and_lets_go_of_readers_and_hooks():
    async def main():
        call = HandCall(latency=1.0)
        frames = both_frames(1)
        extra = ChannelReader(call.delivery, "extra", 16000)
        call.feed(frames[0])
        np.testing.assert_array_equal(await anext(call.caller), call.expected(0))
        call.caller.latency = 0
        waiting = await started(anext(call.caller))
        no_ring = await started(anext(extra))
        call.callee.on_chunk(print)
        assert call.counts() == (1, 1, 1, 1, 0)
        call.end()
        assert call.delivery.ended
        assert call.counts() == (0, 0, 0, 0, 0)
        for task in (waiting, no_ring):
            with pytest.raises(StopAsyncIteration):
                await task
        assert call.callee._callback is None
        # Nothing reaches the call's hooks any more; a callback set now is not kept.
        call.delivery.callback_failed("caller")
        assert call.errors == []
        call.caller.on_chunk(print)
        assert (call.caller._callback, call.delivery.taps) == (None, 0)
        assert call.sink.feed(frames[0]) is False
        assert call.counts() == (0, 0, 0, 0, 0)

    asyncio.run(main())


def _ended_call_refs(end: bool):
    """Weak references to the sink and delivery of a call whose hooks are its own
    methods, with an async reader waiting on the clock, a thread readers' condition and
    a callback that closes over the call, once the call is dropped."""

    async def main():
        call = HandCall(latency=0.01)
        frames = both_frames(2)
        call.caller.on_chunk(call.take)
        call.feed(frames[0])
        call.delivery.thread_signal()
        await anext(call.callee)
        waiting = await started(anext(call.callee))
        call.feed(frames[1])
        await waiting
        waiting = await started(anext(call.callee))
        assert call.counts() == (1, 0, 1, 0, 0)
        if end:
            call.end()
            with pytest.raises(StopAsyncIteration):
                await waiting
        else:
            waiting.cancel()
        refs = weakref.ref(call.sink), weakref.ref(call.delivery)
        del call, waiting
        await asyncio.sleep(0.05)  # the delivery clock's next tick lets go of the call
        return refs

    return asyncio.run(main())


def test_an_ended_call_is_freed_by_reference_counting():
    gc.collect()
    gc.disable()
    try:
        sink, delivery = _ended_call_refs(end=True)
        assert (sink(), delivery()) == (None, None)
        # Not ended, the same call is a cycle that only the collector frees: this
        # test can fail.
        sink, delivery = _ended_call_refs(end=False)
        assert sink() is not None and delivery() is not None
    finally:
        gc.enable()
    gc.collect()
    assert (sink(), delivery()) == (None, None)


def test_arguments_are_checked():
    with pytest.raises(TypeError):
        CallDelivery(DeliveryClocks(), None)
    with pytest.raises(ValueError):
        CallDelivery(DeliveryClocks(), print, burst_frames=0)
    delivery = CallDelivery(DeliveryClocks(), print)
    assert (delivery.burst_frames, delivery.ended) == (16, False)
    with pytest.raises(TypeError):
        delivery.add_tap(object())
    with pytest.raises(TypeError):
        ChannelReader(object(), "caller", 16000)  # type: ignore[arg-type]
