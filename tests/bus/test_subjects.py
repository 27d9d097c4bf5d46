"""The bus's vocabulary and its bounded outbox, with bytes and no bus."""
import pytest

from piopiy_fast.bus.outbox import Message, Outbox
from piopiy_fast.bus.subjects import ChunkHeader, Subjects, call_token, decode_json, encode_json
from piopiy_fast.errors import PiopiyValidationError


def test_call_ids_become_one_token_each():
    assert call_token("sim-001_a") == "sim-001_a"
    assert call_token("a.b") == "a%2Eb"
    assert call_token("x*>y z") == "x%2A%3Ey%20z"
    assert call_token("%2E") == "%252E"  # never the token of another id
    assert call_token("é") == "%C3%A9"
    assert call_token("") == "%"


def test_subjects_and_their_wildcards():
    s = Subjects()
    assert s.start("c1") == "piopiy.calls.c1.start"
    assert s.audio("c1", "caller") == "piopiy.calls.c1.audio.caller"
    assert s.everything == "piopiy.calls.>"
    assert s.starts == "piopiy.calls.*.start"
    assert s.call("c1") == "piopiy.calls.c1.>"
    assert s.parse("piopiy.calls.c1.audio.mix") == ("c1", "audio", "mix")
    assert s.parse("piopiy.calls.c1.end") == ("c1", "end", None)
    for bad in ("piopiy.calls.c1.audio.left", "piopiy.calls.c1", "other.c1.start",
                "piopiy.calls.c1.start.x"):
        with pytest.raises(PiopiyValidationError):
            s.parse(bad)
    assert Subjects("acme.eu-1").starts == "acme.eu-1.*.start"
    for bad in ("a..b", "a.*", "a b", ""):
        with pytest.raises(PiopiyValidationError):
            Subjects(bad)


def test_chunk_headers_round_trip_and_bad_ones_are_named():
    header = ChunkHeader("c.1", "callee", 16000, 3200, 1, 1700000000.25)
    encoded = header.encode()
    assert encoded == {"Piopiy-Call": "c.1", "Piopiy-Channel": "callee",
                       "Piopiy-Rate": "16000", "Piopiy-Position": "3200",
                       "Piopiy-Seq": "1", "Piopiy-Time": "1700000000.250000"}
    assert ChunkHeader.decode(encoded) == header
    with pytest.raises(PiopiyValidationError, match="without Piopiy-Seq"):
        ChunkHeader.decode({k: v for k, v in encoded.items() if k != "Piopiy-Seq"})
    with pytest.raises(PiopiyValidationError, match="bad header"):
        ChunkHeader.decode({**encoded, "Piopiy-Position": "x"})
    with pytest.raises(PiopiyValidationError, match="bad headers"):
        ChunkHeader.decode({**encoded, "Piopiy-Seq": "-1"})
    assert decode_json(encode_json({"a": [1, "é"]})) == {"a": [1, "é"]}
    for bad in (b"[1]", b"{", b"\xff"):
        with pytest.raises(PiopiyValidationError):
            decode_json(bad)


def audio(n, size=1000):
    return Message(f"a.{n}", bytes(size - 3), audio=True)


def test_the_outbox_drops_the_oldest_audio_past_its_bound_and_keeps_the_order():
    drops = []
    box = Outbox(3500, on_drop=lambda m, b: drops.append((m, b)))
    box.put(Message("start", b"{}"))
    for n in range(5):
        box.put(audio(n))
    # 5 x 1000 + 7 bytes of control: the two oldest chunks went.
    assert (box.dropped, box.dropped_bytes) == (2, 2000)
    assert drops == [(1, 1000), (2, 2000)]
    box.put(Message("end", b"{}"))
    assert [box.take().subject for _ in range(len(box))] == ["start", "a.2", "a.3", "a.4",
                                                             "end"]
    # Sent and not settled still counts: the next chunk pushes out the queued one.
    assert box.in_flight == 3007 + 5
    box.put(audio(5))
    box.put(audio(6))
    assert box.dropped == 4 and box.take() is None
    box.settled(3012)
    assert box.in_flight == 0


def test_control_messages_are_bounded_by_count():
    box = Outbox(1 << 20, max_control=3)
    for n in range(5):
        box.put(Message(f"e{n}", b"x"))
    assert box.dropped == 2
    assert [box.take().subject for _ in range(3)] == ["e2", "e3", "e4"]
