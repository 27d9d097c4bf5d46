"""A WebSocket connection's frames made into messages, with no I/O (RFC 6455, 5).

A transport whose library hands it frames rather than messages (picows) gives each
frame to :class:`MessageAssembly` and acts on what comes out: a whole message to
deliver, a ping to answer, the peer's close to answer, or a failure (a close code and
reason) that ends the connection. The rules it enforces are the protocol's, with this
server's choices where the protocol leaves one:

- no extension is negotiated, so any reserved bit set is 1002;
- data frames: a continuation with no message begun, or a new message before the
  last one's final frame, is 1002; text must be UTF-8 (1007); a message may total
  ``max_message_bytes`` (1009) and span ``max_frames`` frames (1009: empty
  continuation frames would otherwise never end a message);
- control frames (close, ping, pong) are whole, at most 125 bytes, no reserved bit
  (1002); a close frame carries nothing, or a code valid on the wire and a UTF-8
  reason (1002, 1007); an unknown opcode is 1002.

Once the connection has failed or the peer has closed, further frames are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL_PAYLOAD_BYTES = 125
# A message in more frames than this fails with 1009. Audio and events come in one
# frame each; a client that fragments does so in pieces of kilobytes, not bytes.
MAX_MESSAGE_FRAMES = 64
# The close code a close frame without one stands for (never sent on the wire).
NO_STATUS = 1005


def valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame: the protocol's own codes in use
    (1004, 1005, 1006 and 1015 never do), and 3000-4999 for libraries and
    applications."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


@dataclass(frozen=True, slots=True)
class Message:
    """A whole data message: ``str`` for text, ``bytes`` for binary."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping: answer with a pong carrying ``payload``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """The peer's close frame: its code (1005 when it named none) and reason."""

    code: int
    reason: str

    @property
    def answer(self) -> tuple[int, str]:
        """The close frame to send back: the peer's code and reason, 1000 for none."""
        return (1000, "") if self.code == NO_STATUS else (self.code, self.reason)


@dataclass(frozen=True, slots=True)
class Failure:
    """The peer broke the protocol: close the connection with ``code`` and ``reason``."""

    code: int
    reason: str


Outcome = Message | Ping | Close | Failure | None


class MessageAssembly:
    """Frames in, messages (or what else to do) out, for one connection.

    Args:
        max_message_bytes: The largest message, over all its frames.
        max_frames: The most frames one message may span.
    """

    __slots__ = ("max_message_bytes", "max_frames", "_parts", "_opcode", "_size",
                 "_frames", "ended")

    def __init__(self, max_message_bytes: int, max_frames: int = MAX_MESSAGE_FRAMES) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_frames = max_frames
        self._parts: list[bytes] = []
        self._opcode = 0  # the opcode of the message begun; 0 when none is
        self._size = 0
        self._frames = 0
        self.ended = False  # failed, or closed by the peer: the rest is ignored

    @property
    def in_message(self) -> bool:
        """Whether a fragmented message is begun and not yet whole."""
        return self._opcode != 0

    def frame(self, opcode: int, fin: bool, rsv: int, payload: bytes) -> Outcome:
        """One frame as it arrived (unmasked payload; ``rsv`` its three reserved bits).

        Args:
            opcode: The frame's opcode.
            fin: Whether it is the last frame of its message.
            rsv: The reserved bits (RSV1-3) as one number; any bit set fails.
            payload: The frame's payload.

        Returns:
            What the frame completes: a :class:`Message`, a :class:`Ping` to answer,
            the peer's :class:`Close`, a :class:`Failure`, or None (nothing yet, a
            pong, or a frame after the end).
        """
        if self.ended:
            return None
        if rsv:
            return self._fail(1002, "reserved bits set")
        if opcode >= CLOSE:
            return self._control(opcode, fin, payload)
        if opcode == CONTINUATION:
            if not self._opcode:
                return self._fail(1002, "unexpected continuation frame")
        elif opcode == TEXT or opcode == BINARY:
            if self._opcode:
                return self._fail(1002, "expected a continuation frame")
            if fin:  # the common case: a message in one frame
                if len(payload) > self.max_message_bytes:
                    return self._fail(1009, "message too big")
                return self._message(opcode, payload)
            self._opcode = opcode
        else:
            return self._fail(1002, f"unknown opcode {opcode:#x}")
        self._size += len(payload)
        self._frames += 1
        if self._size > self.max_message_bytes:
            return self._fail(1009, "message too big")
        if self._frames > self.max_frames:
            return self._fail(1009, f"message in more than {self.max_frames} frames")
        self._parts.append(payload)
        if not fin:
            return None
        opcode, whole = self._opcode, b"".join(self._parts)
        self._reset()
        return self._message(opcode, whole)

    def _message(self, opcode: int, payload: bytes) -> Message | Failure:
        if opcode == BINARY:
            return Message(payload)
        try:
            return Message(payload.decode())
        except UnicodeDecodeError:
            return self._fail(1007, "invalid UTF-8")

    def _control(self, opcode: int, fin: bool, payload: bytes) -> Outcome:
        if opcode not in (CLOSE, PING, PONG):
            return self._fail(1002, f"unknown opcode {opcode:#x}")
        if not fin:
            return self._fail(1002, "fragmented control frame")
        if len(payload) > CONTROL_PAYLOAD_BYTES:
            return self._fail(1002, "control frame over 125 bytes")
        if opcode == PING:
            return Ping(payload)
        if opcode == PONG:
            return None
        if not payload:
            self._end()
            return Close(NO_STATUS, "")
        if len(payload) == 1:
            return self._fail(1002, "close frame with a 1-byte payload")
        code = int.from_bytes(payload[:2], "big")
        if not valid_close_code(code):
            return self._fail(1002, f"invalid close code {code}")
        try:
            reason = payload[2:].decode()
        except UnicodeDecodeError:
            return self._fail(1007, "invalid UTF-8 in the close reason")
        self._end()
        return Close(code, reason)

    def _fail(self, code: int, reason: str) -> Failure:
        self._end()
        return Failure(code, reason)

    def _end(self) -> None:
        self.ended = True
        self._reset()

    def _reset(self) -> None:
        self._parts = []
        self._opcode = self._size = self._frames = 0
