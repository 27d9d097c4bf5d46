"""One WAV file per call and channel, written as the audio arrives.

Files are mono 16-bit PCM at the receiver's target rate, named ``<call id>.<channel>.wav``
from a sanitised call id. The header is rewritten after every write (stdlib ``wave`` does
so) and flushed to the OS, so a file is a valid WAV holding everything written so far at any
moment: after a normal end, after an abrupt disconnect, after a server shutdown, even after
the process is killed. A file is never overwritten: a second call with the same id, or a
file left by an earlier run, gets ``-2``, ``-3``...
"""

from __future__ import annotations

import asyncio
import re
import wave
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ..errors import PiopiyValidationError
from ..wire import CHANNELS

if TYPE_CHECKING:
    from .call import CallStream

MAX_STEM = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_stem(call_id: str) -> str:
    """A file-name stem from a call id: letters, digits, ``_ . -`` only, no leading dot,
    at most 64 characters, never empty. No separator survives, so no path traversal."""
    stem = _UNSAFE.sub("_", str(call_id))
    stem = stem.lstrip(".-").rstrip(".")[:MAX_STEM].rstrip(".")
    return stem or "call"


class WavSink:
    """A mono 16-bit WAV file being written; valid after every :meth:`write`."""

    def __init__(self, path: Path, file: BinaryIO, rate: int) -> None:
        self.path = path
        self.rate = rate
        self._file = file
        writer = wave.open(file, "wb")
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        self._wave: wave.Wave_write | None = writer
        self.frames = 0

    @property
    def closed(self) -> bool:
        return self._wave is None

    def write(self, samples: np.ndarray) -> None:
        """Append int16 samples; the header is updated and the file flushed to the OS."""
        if self._wave is None:
            raise ValueError(f"{self.path} is closed")
        if samples.dtype != np.int16:
            raise PiopiyValidationError(f"samples must be int16, not {samples.dtype}")
        self._wave.writeframes(samples.astype("<i2", copy=False).tobytes())
        # wave patches the header in its buffer; hand both to the OS now, so the file is
        # complete for any reader and survives even a killed process.
        self._file.flush()
        self.frames += samples.size

    def close(self) -> None:
        """Finalise the header and close the file (idempotent)."""
        if self._wave is not None:
            try:
                self._wave.close()
            finally:
                self._wave = None
                self._file.close()

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Recorder:
    """Writes calls to ``directory`` (created if needed).

    Pass :meth:`record` as a server's ``on_call`` to record every call, or use
    :meth:`claim` and :meth:`open` to write arrays yourself. ``chunk_seconds`` is how
    much audio is gathered per write.
    """

    def __init__(self, directory: str | Path, *, chunk_seconds: float = 0.1) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.chunk_seconds = chunk_seconds
        self.files: list[Path] = []
        self._stems: set[str] = set()

    def claim(self, call_id: str) -> str:
        """Reserve a stem for one call: the sanitised id, or it with ``-2``, ``-3``...
        when another call (or an existing file) already has it."""
        base = safe_stem(call_id)
        for n in range(1, 1_000_000):
            stem = base if n == 1 else f"{base}-{n}"
            if stem in self._stems:
                continue
            if any((self.directory / f"{stem}.{ch}.wav").exists() for ch in CHANNELS):
                continue
            self._stems.add(stem)
            return stem
        raise FileExistsError(f"no free file name for call {call_id!r}")

    def open(self, stem: str, channel: str, rate: int) -> WavSink:
        """Create ``<stem>.<channel>.wav``; raises FileExistsError rather than overwrite."""
        if channel not in CHANNELS:
            raise PiopiyValidationError(f"channel must be caller or callee, not {channel!r}")
        if stem != safe_stem(stem):
            raise PiopiyValidationError(f"unsafe file stem {stem!r}; use claim()")
        path = self.directory / f"{stem}.{channel}.wav"
        file = open(path, "xb")  # exclusive: never truncates someone else's file
        try:
            sink = WavSink(path, file, rate)
        except BaseException:
            file.close()
            raise
        self.files.append(path)
        return sink

    async def record(self, call: CallStream) -> list[Path]:
        """Record every channel of ``call`` until it ends; return the files written.

        A channel that never carries audio gets no file.
        """
        chunk = max(1, int(self.chunk_seconds * call.target_rate))
        stem: str | None = None
        paths: list[Path] = []

        async def record_channel(name: str) -> None:
            nonlocal stem
            sink = None
            try:
                async for samples in call.channel(name).chunks(chunk):
                    if sink is None:
                        if stem is None:
                            stem = self.claim(call.call_id)
                        try:
                            sink = self.open(stem, name, call.target_rate)
                        except FileExistsError:  # another process took the name meanwhile
                            sink = self.open(self.claim(call.call_id), name, call.target_rate)
                        paths.append(sink.path)
                    sink.write(samples)
            finally:
                if sink is not None:
                    sink.close()

        await asyncio.gather(*(record_channel(name) for name in CHANNELS))
        return paths
