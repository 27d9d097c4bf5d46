"""Frames made into messages, without sockets: exact outcomes for every rule."""

import random
import struct

import pytest

from piopiy_fast.receiver.transports.assembly import (
    BINARY,
    CLOSE,
    CONTINUATION,
    MAX_MESSAGE_FRAMES,
    PING,
    PONG,
    TEXT,
    Close,
    Failure,
    Message,
    MessageAssembly,
    Ping,
    valid_close_code,
)


def feed(frames, max_message_bytes=1024, max_frames=MAX_MESSAGE_FRAMES):
    """The outcome of each (opcode, fin, rsv, payload) frame, in order."""
    assembly = MessageAssembly(max_message_bytes, max_frames)
    return [assembly.frame(*frame) for frame in frames]


def test_whole_messages():
    assert feed([(BINARY, True, 0, b"\x00\x01"), (TEXT, True, 0, "h\u00e9".encode()),
                 (BINARY, True, 0, b""), (TEXT, True, 0, b"")]) == [
        Message(b"\x00\x01"), Message("h\u00e9"), Message(b""), Message("")]


def test_fragments_make_one_message_with_control_frames_between():
    assert feed([(TEXT, False, 0, b'{"a":'), (PING, True, 0, b"p"),
                 (CONTINUATION, False, 0, b""), (PONG, True, 0, b"q"),
                 (CONTINUATION, True, 0, b" 1}"), (BINARY, False, 0, b"\x01"),
                 (CONTINUATION, True, 0, b"\x02")]) == [
        None, Ping(b"p"), None, None, Message('{"a": 1}'), None, Message(b"\x01\x02")]


def test_utf8_split_across_fragments_is_valid():
    text = "\u20ac".encode()  # three bytes
    assert feed([(TEXT, False, 0, text[:1]), (CONTINUATION, True, 0, text[1:])]) == [
        None, Message("\u20ac")]


@pytest.mark.parametrize("payload", [b"\xff", b"\xc3", b"a\xed\xa0\x80"],
                         ids=["invalid", "truncated", "surrogate"])
def test_invalid_utf8_text_is_1007(payload):
    assert feed([(TEXT, True, 0, payload), (TEXT, True, 0, b"ok")]) == [
        Failure(1007, "invalid UTF-8"), None]
    assert feed([(TEXT, False, 0, b"ok"), (CONTINUATION, True, 0, payload)]) == [
        None, Failure(1007, "invalid UTF-8")]


@pytest.mark.parametrize("opcode", [TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG])
@pytest.mark.parametrize("rsv", [4, 2, 1, 7], ids=["rsv1", "rsv2", "rsv3", "all"])
def test_any_reserved_bit_is_1002(opcode, rsv):
    assert feed([(opcode, True, rsv, b"\x03\xe8"), (BINARY, True, 0, b"x")]) == [
        Failure(1002, "reserved bits set"), None]


def test_continuation_rules():
    assert feed([(CONTINUATION, True, 0, b"x")]) == [
        Failure(1002, "unexpected continuation frame")]
    assert feed([(BINARY, False, 0, b"x"), (BINARY, True, 0, b"y")]) == [
        None, Failure(1002, "expected a continuation frame")]
    assert feed([(TEXT, False, 0, b"x"), (TEXT, False, 0, b"y")]) == [
        None, Failure(1002, "expected a continuation frame")]


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_unknown_opcodes_are_1002(opcode):
    assert feed([(opcode, True, 0, b"")]) == [Failure(1002, f"unknown opcode {opcode:#x}")]


def test_the_size_bound_is_over_the_whole_message():
    assert feed([(BINARY, True, 0, b"x" * 16)], max_message_bytes=16) == [
        Message(b"x" * 16)]
    assert feed([(BINARY, True, 0, b"x" * 17)], max_message_bytes=16) == [
        Failure(1009, "message too big")]
    assert feed([(TEXT, False, 0, b"x" * 10), (CONTINUATION, False, 0, b"x" * 6),
                 (CONTINUATION, True, 0, b"")], max_message_bytes=16) == [
        None, None, Message("x" * 16)]
    assert feed([(BINARY, False, 0, b"x" * 10), (CONTINUATION, True, 0, b"x" * 7)],
                max_message_bytes=16) == [None, Failure(1009, "message too big")]


def test_the_frames_of_one_message_are_bounded():
    """Empty continuation frames never grow a message: their count ends it."""
    frames = [(BINARY, False, 0, b"")] + [(CONTINUATION, False, 0, b"")] * 10
    outcomes = feed(frames, max_frames=4)
    assert outcomes == [None] * 4 + [Failure(1009, "message in more than 4 frames")] + [
        None] * 6
    # Exactly the bound is a message.
    assert feed([(TEXT, False, 0, b"a")] + [(CONTINUATION, False, 0, b"b")] * 2
                + [(CONTINUATION, True, 0, b"c")], max_frames=4)[-1] == Message("abbc")
    # The count starts again with each message.
    again = [(BINARY, False, 0, b"a"), (CONTINUATION, True, 0, b"b")] * 5
    assert feed(again, max_frames=2) == [None, Message(b"ab")] * 5


def test_the_default_frame_bound():
    frames = [(TEXT, False, 0, b"")] + [(CONTINUATION, False, 0, b"")] * 100_000
    outcomes = feed(frames)
    assert outcomes.index(Failure(1009, f"message in more than {MAX_MESSAGE_FRAMES} frames")
                          ) == MAX_MESSAGE_FRAMES
    assert outcomes.count(None) == len(frames) - 1


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_control_frame_rules(opcode):
    payload = b"\x03\xe8" if opcode == CLOSE else b""
    assert feed([(opcode, False, 0, payload)]) == [Failure(1002, "fragmented control frame")]
    assert feed([(opcode, True, 0, b"\x03\xe8" + b"r" * 124)]) == [
        Failure(1002, "control frame over 125 bytes")]
    expected = {CLOSE: Close(1000, "r" * 123), PING: Ping(b"\x03\xe8" + b"r" * 123),
                PONG: None}[opcode]
    assert feed([(opcode, True, 0, b"\x03\xe8" + b"r" * 123)]) == [expected]


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_a_close_code_invalid_on_the_wire_is_1002(code):
    assert feed([(CLOSE, True, 0, close_payload(code, b"bye"))]) == [
        Failure(1002, f"invalid close code {code}")]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999])
def test_a_valid_close_is_answered_with_its_code(code):
    [close] = feed([(CLOSE, True, 0, close_payload(code, "b\u00ffe".encode()))])
    assert close == Close(code, "b\u00ffe")
    assert close.answer == (code, "b\u00ffe")


def test_an_empty_close_is_answered_1000():
    [close] = feed([(CLOSE, True, 0, b"")])
    assert close == Close(1005, "")
    assert close.answer == (1000, "")


def test_malformed_close_frames():
    assert feed([(CLOSE, True, 0, b"\x03")]) == [
        Failure(1002, "close frame with a 1-byte payload")]
    assert feed([(CLOSE, True, 0, close_payload(1000, b"\xff"))]) == [
        Failure(1007, "invalid UTF-8 in the close reason")]


def test_nothing_after_the_end():
    after = [(BINARY, True, 0, b"x"), (PING, True, 0, b""), (CLOSE, True, 0, b"")]
    assert feed([(CLOSE, True, 0, close_payload(1000))] + after) == [
        Close(1000, "")] + [None] * 3
    assert feed([(TEXT, True, 0, b"\xff")] + after) == [
        Failure(1007, "invalid UTF-8")] + [None] * 3


def test_valid_close_codes():
    assert [code for code in range(70000) if valid_close_code(code)] == [
        *range(1000, 1004), *range(1007, 1015), *range(3000, 5000)]


def test_random_fragmentation_rebuilds_every_message():
    """Seeded: messages cut at random points into frames, pings between, come out whole
    and in order."""
    rng = random.Random(11)
    messages, frames = [], []
    for _ in range(300):
        text = rng.random() < 0.5
        data = ("".join(rng.choice("a\u00e9\u20ac\U0001f600") for _ in range(rng.randrange(40)))
                if text else rng.randbytes(rng.randrange(200)))
        messages.append(data)
        raw = data.encode() if text else data
        cuts = sorted(rng.sample(range(len(raw) + 1), min(len(raw) + 1, rng.randrange(4))))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        for i, piece in enumerate(pieces):
            opcode = (TEXT if text else BINARY) if i == 0 else CONTINUATION
            frames.append((opcode, i == len(pieces) - 1, 0, piece))
            if rng.random() < 0.2:
                frames.append((PING, True, 0, b"hi"))
    outcomes = [o for o in feed(frames) if o is not None]
    assert [o.data for o in outcomes if isinstance(o, Message)] == messages
    assert all(o == Ping(b"hi") for o in outcomes if not isinstance(o, Message))
