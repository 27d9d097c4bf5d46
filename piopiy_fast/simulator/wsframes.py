"""WebSocket frames as a client writes and reads them (RFC 6455), bytes only.

A client masks every frame it sends; a server's frames are unmasked. Both clients
``mod_audio_stream`` has used send each message as one final frame, so fragments are
not made here; frames read from a server are parsed one at a time with a size cap.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

__all__ = [
    "BINARY", "CLOSE", "CONTINUATION", "PING", "PONG", "TEXT",
    "Frame", "FrameError", "FrameReader", "client_frame", "close_payload", "parse_close",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = (CLOSE, PING, PONG)


class FrameError(Exception):
    """A server frame this client cannot accept (masked, oversized, reserved bits)."""


def _masked(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    repeat = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeat, "little")).to_bytes(
        len(payload), "little")


def client_frame(opcode: int, payload: bytes, mask_key: bytes | None = None) -> bytes:
    """One final, masked frame (``mask_key``: 4 bytes, random when None)."""
    key = os.urandom(4) if mask_key is None else mask_key
    if len(key) != 4:
        raise ValueError("a mask key is 4 bytes")
    n = len(payload)
    if opcode in CONTROL and n > 125:
        raise ValueError("a control frame carries at most 125 bytes")
    head = bytes([0x80 | opcode])
    if n <= 125:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + _masked(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    """A close frame's body: the code, big-endian, then the reason in UTF-8."""
    return struct.pack("!H", code) + reason.encode()


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame's body; 1005 "" when it has none."""
    if len(payload) < 2:
        return 1005, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    rsv1: bool = False


class FrameReader:
    """Server frames out of a byte stream, one at a time, each at most ``max_size``."""

    def __init__(self, max_size: int = 1 << 20) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame now complete.

        Raises:
            FrameError: a masked or oversized frame, or an oversized control frame.
        """
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            raise FrameError("the server masked a frame")
        n, at = b1 & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, at = struct.unpack_from("!H", buf, 2)[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, at = struct.unpack_from("!Q", buf, 2)[0], 10
        opcode = b0 & 0x0F
        if opcode in CONTROL and (n > 125 or not b0 & 0x80):
            raise FrameError("a control frame over 125 bytes or fragmented")
        if n > self.max_size:
            raise FrameError(f"a frame of {n} bytes (at most {self.max_size})")
        if len(buf) < at + n:
            return None
        payload = bytes(buf[at:at + n])
        del buf[:at + n]
        return Frame(bool(b0 & 0x80), opcode, payload, bool(b0 & 0x40))
