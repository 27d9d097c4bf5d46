"""G.711 lookup tables built in numpy from the standard's algorithms (the same ones
CPython's audioop uses), for the hand-rolled baselines: decoding is ``DECODE[bytes]``,
encoding ``ENCODE[samples.view(uint16)]``."""
from __future__ import annotations

import numpy as np

_ULAW_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def _ulaw_encode(sample: int) -> int:
    value = sample >> 2  # 14 bits
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8159) + 33
    seg = _segment(value, _ULAW_END)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((value >> (seg + 1)) & 0xF)) ^ mask


def _alaw_encode(sample: int) -> int:
    value = sample >> 3  # 13 bits
    mask = 0xD5
    if value < 0:
        value, mask = -value - 1, 0x55
    seg = _segment(value, _ALAW_END)
    if seg >= 8:
        return 0x7F ^ mask
    low = (value >> 1) if seg < 2 else (value >> seg)
    return ((seg << 4) | (low & 0xF)) ^ mask


def _ulaw_decode(byte: int) -> int:
    u = ~byte & 0xFF
    t = (((u & 0xF) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_decode(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0xF) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


_ALL = np.arange(65536, dtype=np.uint16).view(np.int16)
ULAW_ENCODE = np.array([_ulaw_encode(int(s)) for s in _ALL], dtype=np.uint8)
ALAW_ENCODE = np.array([_alaw_encode(int(s)) for s in _ALL], dtype=np.uint8)
ULAW_DECODE = np.array([_ulaw_decode(b) for b in range(256)], dtype=np.int16)
ALAW_DECODE = np.array([_alaw_decode(b) for b in range(256)], dtype=np.int16)
