"""The conversation metrics engine, from segments: exact figures, no audio."""

import pytest

from piopiy_fast.analytics import ChannelLevels, ConversationMetrics, Segment, dbfs
from piopiy_fast.errors import PiopiyValidationError

RATE = 1000  # one sample a millisecond: seconds read straight off the samples


def metrics(*segments, **kwargs):
    m = ConversationMetrics(RATE, **kwargs)
    for party, start, end in sorted(segments, key=lambda s: s[2]):
        m.add(Segment(party, start, end))
    return m


def test_talk_time_overlap_and_interruptions():
    m = metrics(("caller", 0, 3000), ("callee", 2500, 5000), ("caller", 4900, 6000),
                ("callee", 9000, 9500))
    s = m.summary(12000)
    assert s["parties"]["caller"]["talk_seconds"] == 4.1
    assert s["parties"]["callee"]["talk_seconds"] == 3.0
    # 0.5 s (callee over caller) and 0.1 s (too short to be an interruption)
    assert s["overlap_seconds"] == 0.6
    assert s["interruptions"] == [{"by": "callee", "of": "caller", "at_seconds": 2.5,
                                   "after_seconds": 2.5, "overlap_seconds": 0.5}]
    assert s["non_talk_seconds"] == 12.0 - 6.5
    assert s["silences"] == {"threshold_seconds": 5.0, "count": 0, "longest_seconds": 0.0,
                             "share": 0.0}


def test_silences_over_the_threshold_are_counted_exactly():
    m = metrics(("caller", 1000, 2000), ("callee", 7000, 8000), ("caller", 12999, 14000),
                silence_threshold=5.0)
    s = m.summary(20000)
    # 2.0-7.0 (5.0 s: counted), 8.0-12.999 (4.999 s: not), 14.0-20.0 (6.0 s: counted)
    assert s["silences"]["count"] == 2
    assert s["silences"]["longest_seconds"] == 6.0
    assert s["silences"]["share"] == round(11000 / 20000, 4)
    assert m.silences(20000) == [(2000, 7000), (14000, 20000)]


def test_a_party_that_pauses_over_the_same_speech_interrupts_once():
    m = metrics(("caller", 0, 5000), ("callee", 1000, 2000), ("callee", 2400, 3000))
    assert [(i.by, i.of, i.at, i.after, i.overlap) for i in m.interruptions] == [
        ("callee", "caller", 1000, 1000, 1000)]
    assert m.summary()["overlap_seconds"] == 1.6


def test_segments_out_of_order_between_parties_are_compared_once():
    m = ConversationMetrics(RATE)
    m.started("caller", 0)
    m.started("callee", 1000)
    # the callee's speech ends (reported) before the caller's
    seg, found = m.ended("callee", 2000)
    assert seg == Segment("callee", 1000, 2000) and found == []
    live = m.summary(2500)  # the caller still speaks: counted up to then
    assert live["parties"]["caller"]["talk_seconds"] == 2.5
    seg, found = m.ended("caller", 3000)
    assert [(i.by, i.of, i.after) for i in found] == [("callee", "caller", 1000)]
    assert m.summary()["overlap_seconds"] == 1.0


def test_levels_and_clipping():
    m = metrics(("caller", 0, 100))
    m.set_levels("caller", ChannelLevels(samples=100, energy=100 * 3276.8 ** 2,
                                         speech_samples=50, speech_energy=50 * 32768.0 ** 2,
                                         peak=32767, clipped=3))
    s = m.summary()["parties"]["caller"]
    assert (s["level_dbfs"], s["speech_level_dbfs"], s["peak_dbfs"], s["clipped_samples"]) == (
        -20.0, 0.0, -0.0, 3)
    assert dbfs(0.0, 0) is None and dbfs(0.0, 10) == -120.0


def test_bad_input_is_refused():
    m = ConversationMetrics(RATE)
    m.add(Segment("caller", 100, 200))
    with pytest.raises(PiopiyValidationError):
        m.add(Segment("caller", 150, 300))  # overlaps its own party's segment
    with pytest.raises(PiopiyValidationError):
        m.add(Segment("nobody", 0, 1))
    with pytest.raises(PiopiyValidationError):
        ConversationMetrics(0)
