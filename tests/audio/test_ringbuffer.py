"""The lock-free SPSC ring of the native core: validation, exact overflow
accounting under both policies, read semantics, blocking reads, and threaded
stress runs that check every delivered sample."""
import collections
import threading
import time

import numpy as np
import pytest

from piopiy_fast._core import ringbuffer
from piopiy_fast._core.ringbuffer import RingBuffer
from piopiy_fast.errors import PiopiyValidationError

POLICIES = ("drop_oldest", "drop_newest")


def seq(start, stop):
    """Samples start..stop-1 of the test sequence (index mod 2**16 as int16)."""
    return (np.arange(start, stop, dtype=np.int64) & 0xFFFF).astype(np.uint16).view(np.int16)


@pytest.fixture
def always_release_gil():
    old = ringbuffer.set_nogil_threshold(0)
    try:
        yield
    finally:
        ringbuffer.set_nogil_threshold(old)


# ---- construction -------------------------------------------------------

@pytest.mark.parametrize("cap", [1, 2, 8, 1024, 65536, np.int64(256)])
def test_capacity_powers_of_two(cap):
    rb = RingBuffer(cap)
    assert rb.capacity == int(cap)
    assert rb.policy == "drop_oldest"
    assert rb.available == rb.overruns == rb.written == 0
    assert rb.closed is False


@pytest.mark.parametrize("cap", [0, -1, -8, 3, 6, 1000, 2**30 + 2**29, 2**31])
def test_capacity_rejected(cap):
    with pytest.raises(PiopiyValidationError, match="power of two") as info:
        RingBuffer(cap)
    assert "2**30" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cap", [8.0, "8", None, True])
def test_capacity_wrong_type(cap):
    with pytest.raises(TypeError):
        RingBuffer(cap)


def test_policy_validation():
    assert RingBuffer(8, "drop_newest").policy == "drop_newest"
    assert RingBuffer(8, policy="drop_oldest").policy == "drop_oldest"
    with pytest.raises(PiopiyValidationError, match="'drop_oldest', 'drop_newest'"):
        RingBuffer(8, "drop_older")
    with pytest.raises(TypeError):
        RingBuffer(8, 1)


# ---- overflow accounting, small cases computed by hand -------------------

def test_drop_oldest_keeps_newest():
    rb = RingBuffer(8, "drop_oldest")
    assert rb.write(seq(0, 5)) == 5
    assert rb.write(seq(5, 10)) == 5
    assert rb.overruns == 2 and rb.written == 10 and rb.available == 8
    assert rb.read().tolist() == list(range(2, 10))


def test_drop_newest_keeps_oldest():
    rb = RingBuffer(8, "drop_newest")
    assert rb.write(seq(0, 5)) == 5
    assert rb.write(seq(5, 10)) == 3
    assert rb.overruns == 2 and rb.written == 10 and rb.available == 8
    assert rb.read().tolist() == list(range(0, 8))


@pytest.mark.parametrize("policy,stored,kept", [("drop_oldest", 8, range(12, 20)),
                                                ("drop_newest", 8, range(0, 8))])
def test_write_larger_than_capacity(policy, stored, kept):
    rb = RingBuffer(8, policy)
    assert rb.write(seq(0, 20)) == stored
    assert rb.overruns == 12 and rb.written == 20
    assert rb.read().tolist() == list(kept)


def test_write_larger_than_capacity_into_partly_full_ring():
    rb = RingBuffer(8, "drop_oldest")
    rb.write(seq(0, 3))
    assert rb.write(seq(3, 16)) == 8
    # 3..7 of the second write are lost before they are stored, 0..2 are overwritten
    assert rb.overruns == 8
    assert rb.read().tolist() == list(range(8, 16))

    rb = RingBuffer(8, "drop_newest")
    rb.write(seq(0, 3))
    assert rb.write(seq(3, 16)) == 5
    assert rb.overruns == 8
    assert rb.read().tolist() == list(range(0, 8))


def test_overflow_after_partial_reads_and_wraparound():
    rb = RingBuffer(8, "drop_oldest")
    rb.write(seq(0, 6))
    assert rb.read(4).tolist() == [0, 1, 2, 3]
    rb.write(seq(6, 12))  # 4..11: exactly full, wraps
    assert rb.overruns == 0 and rb.available == 8
    rb.write(seq(12, 15))  # loses 4, 5, 6
    assert rb.overruns == 3
    assert rb.read().tolist() == list(range(7, 15))

    rb = RingBuffer(8, "drop_newest")
    rb.write(seq(0, 6))
    rb.read(4)
    assert rb.write(seq(6, 12)) == 6
    assert rb.write(seq(12, 15)) == 0
    assert rb.overruns == 3 and rb.written == 15
    assert rb.read().tolist() == list(range(4, 12))


def test_capacity_one():
    for policy, expected in (("drop_oldest", [2]), ("drop_newest", [0])):
        rb = RingBuffer(1, policy)
        rb.write(seq(0, 3))
        assert rb.overruns == 2
        assert rb.read().tolist() == expected


@pytest.mark.parametrize("policy", POLICIES)
def test_against_model(policy):
    """Random single-threaded writes and reads agree with a deque model."""
    rng = np.random.default_rng(7)
    cap = 64
    rb = RingBuffer(cap, policy)
    model = collections.deque()
    lost = 0
    pos = 0
    for _ in range(3000):
        if rng.random() < 0.55:
            n = int(rng.integers(0, 100))
            data = seq(pos, pos + n)
            pos += n
            if policy == "drop_oldest":
                model.extend(data.tolist())
                while len(model) > cap:
                    model.popleft()
                    lost += 1
                assert rb.write(data) == min(n, cap)
            else:
                room = cap - len(model)
                model.extend(data[:room].tolist())
                lost += max(0, n - room)
                assert rb.write(data) == min(n, room)
        else:
            n = int(rng.integers(0, 80))
            expected = [model.popleft() for _ in range(min(n, len(model)))]
            if rng.random() < 0.5:
                assert rb.read(n).tolist() == expected
            else:
                out = np.full(n, -1, np.int16)
                assert rb.read_into(out) == len(expected)
                assert out[:len(expected)].tolist() == expected
        assert rb.available == len(model)
        assert rb.overruns == lost
        assert rb.written == pos


# ---- reads ----------------------------------------------------------------

def test_read_semantics():
    rb = RingBuffer(16)
    empty = rb.read()
    assert empty.dtype == np.int16 and empty.shape == (0,)
    rb.write(seq(0, 10))
    assert rb.read(0).shape == (0,)
    a = rb.read(3)
    assert a.dtype == np.int16 and a.tolist() == [0, 1, 2]
    assert rb.read(100).tolist() == list(range(3, 10))
    with pytest.raises(ValueError):
        rb.read(-1)
    with pytest.raises(TypeError):
        rb.read(2.5)


def test_read_returns_owned_copies():
    rb = RingBuffer(8)
    rb.write(seq(0, 4))
    a = rb.read()
    rb.write(seq(100, 108))
    assert a.tolist() == [0, 1, 2, 3]
    assert a.flags.owndata and a.flags.writeable


def test_read_into_fills_prefix_only():
    rb = RingBuffer(16)
    rb.write(seq(0, 5))
    out = np.full(8, -7, np.int16)
    assert rb.read_into(out) == 5
    assert out.tolist() == [0, 1, 2, 3, 4, -7, -7, -7]
    assert rb.read_into(out) == 0
    assert rb.read_into(np.empty(0, np.int16)) == 0
    rb.write(seq(0, 6))
    two_d = np.zeros((2, 2), np.int16)
    assert rb.read_into(two_d) == 4 and two_d.tolist() == [[0, 1], [2, 3]]


def test_read_into_rejects():
    rb = RingBuffer(16)
    rb.write(seq(0, 10))
    with pytest.raises(TypeError):
        rb.read_into([0] * 4)
    with pytest.raises(TypeError, match="int16"):
        rb.read_into(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="contiguous"):
        rb.read_into(np.zeros(8, np.int16)[::2])
    ro = np.zeros(4, np.int16)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        rb.read_into(ro)
    assert rb.available == 10  # nothing consumed by the failed calls


def test_write_inputs():
    rb = RingBuffer(64)
    assert rb.write(seq(0, 20)[::2]) == 10  # strided: copied first
    assert rb.write(seq(20, 26).reshape(2, 3)) == 6  # any shape, C order
    assert rb.write(seq(26, 30).astype(">i2")) == 4  # byte-swapped: converted
    assert rb.write(np.empty(0, np.int16)) == 0
    assert rb.read().tolist() == list(range(0, 20, 2)) + list(range(20, 30))
    for bad in ([1, 2], b"\x00\x00", None):
        with pytest.raises(TypeError):
            rb.write(bad)
    with pytest.raises(TypeError, match="int16"):
        rb.write(np.zeros(4, np.float32))
    assert rb.written == 20


def test_large_copies_release_gil_and_stay_exact():
    n = 3 * ringbuffer.nogil_threshold()
    rb = RingBuffer(1 << 17)
    assert rb.write(seq(0, n)) == n
    out = np.empty(n, np.int16)
    assert rb.read_into(out) == n
    np.testing.assert_array_equal(out, seq(0, n))


def test_set_nogil_threshold():
    old = ringbuffer.set_nogil_threshold(5)
    try:
        assert ringbuffer.nogil_threshold() == 5
        with pytest.raises(ValueError):
            ringbuffer.set_nogil_threshold(-1)
    finally:
        assert ringbuffer.set_nogil_threshold(old) == 5


# ---- blocking reads and close ------------------------------------------------

def test_read_wait_immediate_when_available():
    rb = RingBuffer(16)
    rb.write(seq(0, 10))
    t0 = time.monotonic()
    assert rb.read_wait(4, timeout=5).tolist() == [0, 1, 2, 3]
    assert rb.read_wait(0).shape == (0,)
    assert time.monotonic() - t0 < 1


def test_read_wait_timeout_returns_partial():
    rb = RingBuffer(16)
    rb.write(seq(0, 3))
    t0 = time.monotonic()
    got = rb.read_wait(10, timeout=0.15)
    elapsed = time.monotonic() - t0
    assert got.tolist() == [0, 1, 2]
    assert 0.14 <= elapsed < 2
    assert rb.read_wait(5, timeout=0).shape == (0,)


def test_read_wait_more_than_capacity_returns_when_full():
    rb = RingBuffer(8, "drop_newest")
    rb.write(seq(0, 8))
    assert rb.read_wait(100, timeout=5).tolist() == list(range(8))


def test_read_wait_argument_errors():
    rb = RingBuffer(8)
    with pytest.raises(ValueError):
        rb.read_wait(-1)
    with pytest.raises(ValueError):
        rb.read_wait(1, timeout=-0.5)
    with pytest.raises(ValueError):
        rb.read_wait(1, timeout=float("nan"))
    with pytest.raises(TypeError):
        rb.read_wait(1, timeout="1")


def _in_thread(fn):
    box = {}

    def run():
        t0 = time.monotonic()
        box["result"] = fn()
        box["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, box


def test_close_wakes_blocked_reader():
    rb = RingBuffer(64)
    rb.write(seq(0, 5))
    th, box = _in_thread(lambda: rb.read_wait(50))  # no timeout
    time.sleep(0.2)
    assert th.is_alive()
    rb.close()
    th.join(5)
    assert not th.is_alive()
    assert box["result"].tolist() == [0, 1, 2, 3, 4]
    assert rb.closed
    # closed: no more waiting, reads drain, writes still accepted
    rb.write(seq(5, 7))
    t0 = time.monotonic()
    assert rb.read_wait(50, timeout=10).tolist() == [5, 6]
    assert time.monotonic() - t0 < 1


def test_blocked_reader_woken_by_write_from_another_thread():
    rb = RingBuffer(256)
    th, box = _in_thread(lambda: rb.read_wait(100, timeout=10))
    time.sleep(0.1)
    writer = threading.Thread(target=lambda: [rb.write(seq(i, i + 20)) or time.sleep(0.01)
                                              for i in range(0, 120, 20)])
    writer.start()
    writer.join(5)
    th.join(5)
    assert not th.is_alive()
    assert box["result"].tolist() == list(range(100))
    assert box["elapsed"] < 5
    assert rb.read().tolist() == list(range(100, 120))


def test_read_wait_collects_across_small_writes():
    rb = RingBuffer(1024)
    th, box = _in_thread(lambda: rb.read_wait(300, timeout=10))
    for i in range(0, 300, 30):
        time.sleep(0.005)
        rb.write(seq(i, i + 30))
    th.join(5)
    assert box["result"].tolist() == list(range(300))


# ---- threaded stress ----------------------------------------------------------

def _chunk_sizes(rng, count):
    """Frame-like sizes mixed with odd ones: 1..2047, biased to 160/320/960."""
    sizes = rng.integers(1, 2048, count)
    frames = rng.choice([160, 320, 960], count)
    return np.where(rng.random(count) < 0.5, frames, sizes)


def _consumer_reads(rb, rng, stop, sink):
    """Read with read_into / read / read_wait in varied sizes until stop is set
    and the ring is empty; append every non-empty result to sink."""
    buf = np.empty(4096, np.int16)
    sizes = rng.integers(1, 4096, 1 << 16)
    i = 0
    while True:
        n = int(sizes[i & 0xFFFF])
        i += 1
        mode = i % 3
        if mode == 0:
            k = rb.read_into(buf[:n])
            got = buf[:k].copy() if k else None
        elif mode == 1:
            got = rb.read(n)
        else:
            got = rb.read_wait(n, timeout=0.002)
        if got is not None and len(got):
            sink.append(got)
        elif stop.is_set() and rb.available == 0:
            return


TOTAL = 10_000_000


def test_stress_lossless_drop_newest_with_retry(always_release_gil):
    """Producer re-offers what did not fit: every sample arrives once, in order."""
    rb = RingBuffer(1 << 14, "drop_newest")
    rng = np.random.default_rng(1)
    data = seq(0, TOTAL)
    sizes = _chunk_sizes(rng, TOTAL // 400)
    stop = threading.Event()
    chunks = []

    def produce():
        pos = 0
        i = 0
        while pos < TOTAL:
            end = min(TOTAL, pos + int(sizes[i % len(sizes)]))
            i += 1
            while pos < end:
                pos += rb.write(data[pos:end])
        stop.set()

    # daemons: a ring that lost samples must fail the test, not hang the run
    consumer = threading.Thread(target=_consumer_reads, daemon=True,
                                args=(rb, np.random.default_rng(2), stop, chunks))
    producer = threading.Thread(target=produce, daemon=True)
    t0 = time.monotonic()
    consumer.start()
    producer.start()
    producer.join(60)
    consumer.join(60)
    assert not producer.is_alive() and not consumer.is_alive()
    got = np.concatenate(chunks)
    assert len(got) == TOTAL
    np.testing.assert_array_equal(got, data)
    assert int(got.astype(np.int64).sum()) == int(data.astype(np.int64).sum())
    # retried samples were offered (and counted as lost) once per refusal
    assert rb.written == TOTAL + rb.overruns
    assert rb.available == 0
    assert time.monotonic() - t0 < 30


def _run(producer, consumer):
    threads = [threading.Thread(target=consumer, daemon=True),
               threading.Thread(target=producer, daemon=True)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)


def test_stress_lossy_drop_oldest(always_release_gil):
    """A ring smaller than the backlog: the producer drops unread samples while
    the consumer copies. What arrives is the sequence in order with pieces
    missing, never a sample twice or out of order (as a copy torn by the
    producer would be), and the missing pieces add up to ``overruns`` exactly.
    (A read may hold a jump: while the consumer copies the oldest samples, a
    write that does not fit keeps what fits instead of taking their slots.)"""
    cap = 1 << 13
    rb = RingBuffer(cap, "drop_oldest")
    data = seq(0, TOTAL)
    sizes = _chunk_sizes(np.random.default_rng(3), TOTAL // 400)
    stop = threading.Event()
    # The consumer publishes the absolute position after its last sample and
    # the producer stays within LEAD of it, so a gap is always below 2**16 and
    # can be measured from the 16-bit values.
    LEAD = 60_000
    state = {"end": 0, "lost": 0, "delivered": 0, "reads": 0, "bad": []}

    def produce():
        pos = 0
        i = 0
        while pos < TOTAL:
            n = min(TOTAL - pos, int(sizes[i % len(sizes)]))
            i += 1
            while pos + n - state["end"] > LEAD:
                time.sleep(0)
            rb.write(data[pos:pos + n])
            pos += n
        stop.set()

    def consume():
        rng = np.random.default_rng(5)
        buf = np.empty(cap, np.int16)
        while True:
            if rng.random() < 0.002:
                time.sleep(0.0002)  # fall behind now and then
            # small reads and long copies (which the producer overruns)
            n = int(rng.integers(1, 513 if rng.random() < 0.5 else cap + 1))
            k = rb.read_into(buf[:n])
            if not k:
                if stop.is_set() and rb.available == 0:
                    return
                continue
            got = buf[:k].view(np.uint16).astype(np.int64)
            # steps from the last sample delivered to each of these, mod 2**16
            steps = np.diff(np.concatenate([[state["end"] - 1], got])) & 0xFFFF
            if steps.min() < 1 or steps.max() > LEAD:
                state["bad"].append((state["end"], k))
            state["lost"] += int(steps.sum()) - k
            state["delivered"] += k
            state["reads"] += 1
            state["end"] += int(steps.sum())

    _run(produce, consume)
    assert state["bad"] == []
    lost = rb.overruns
    assert rb.written == TOTAL
    assert state["delivered"] + lost == TOTAL
    assert state["lost"] + (TOTAL - state["end"]) == lost
    assert lost > 0, "the ring never overflowed; the test lost its point"
    assert state["reads"] > 1


def test_stress_lossy_drop_newest(always_release_gil):
    """The producer records which samples each write stored; the consumer must
    receive exactly those, in order, and the rest must be ``overruns``."""
    cap = 1 << 12
    rb = RingBuffer(cap, "drop_newest")
    data = seq(0, TOTAL)
    sizes = _chunk_sizes(np.random.default_rng(4), TOTAL // 400)
    stop = threading.Event()
    stored = []
    chunks = []

    def produce():
        pos = 0
        i = 0
        while pos < TOTAL:
            n = min(TOTAL - pos, int(sizes[i % len(sizes)]))
            i += 1
            k = rb.write(data[pos:pos + n])
            if k:
                stored.append((pos, k))
            pos += n
            if i % 64 == 0:
                time.sleep(0)
        stop.set()

    def consume():
        rng = np.random.default_rng(6)
        buf = np.empty(cap, np.int16)
        while True:
            if rng.random() < 0.002:
                time.sleep(0.0002)
            k = rb.read_into(buf[:int(rng.integers(1, 2049))])
            if k:
                chunks.append(buf[:k].copy())
            elif stop.is_set() and rb.available == 0:
                return

    _run(produce, consume)
    expected = np.concatenate([data[p:p + k] for p, k in stored])
    got = np.concatenate(chunks)
    np.testing.assert_array_equal(got, expected)
    assert rb.written == TOTAL
    assert len(got) + rb.overruns == TOTAL
    assert rb.overruns > 0, "the ring never overflowed; the test lost its point"
    assert len(chunks) > 1
