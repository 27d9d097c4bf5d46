"""One WAV file per call and channel, written as the audio arrives.

Files are mono 16-bit PCM at the receiver's target rate, named ``<call id>.<channel>.wav``
from a sanitised call id. The header is rewritten after every write, straight to the OS, so
a file is a valid WAV holding everything written so far at any moment: after a normal end,
an abrupt disconnect, a server shutdown, a killed process, or a disk that filled up. A
file is never overwritten: a second call with the same id, or a file left by an earlier
run, gets ``-2``, ``-3``...
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ..errors import PiopiyError, PiopiyValidationError
from ..stream.wire import CHANNEL_NAMES

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


HEADER_BYTES = 44  # of a PCM WAV file as the standard library's wave writes it


class RecordingError(PiopiyError):
    """Writing a recording failed (a full disk, a read-only directory...).

    ``paths`` are the files written; each is a valid WAV holding what was written before
    the failure. ``reasons`` says what failed, per channel. Raised by
    :meth:`Recorder.record` once the call is over.
    """

    def __init__(self, call_id: str, paths: list[Path], reasons: list[str]) -> None:
        super().__init__(f"recording call {call_id} failed: {'; '.join(reasons)}")
        self.paths = paths
        self.reasons = reasons


class WavSink:
    """A mono 16-bit WAV file being written; valid after every :meth:`write`, and after a
    failed one (a full disk): what did not fit is cut off and the header says so.

    The header is written by hand (44 bytes, the canonical PCM layout) and patched after
    each write, straight to the OS with no user-space buffer, so that a killed process
    leaves a complete file.
    """

    def __init__(self, path: Path, file: BinaryIO, rate: int) -> None:
        self.path = path
        self.rate = rate
        self._file: BinaryIO | None = file
        self.frames = 0
        stat = os.fstat(file.fileno())
        self._identity = (stat.st_dev, stat.st_ino)  # which file ``path`` must still be
        self._put(0, _wav_header(rate, 0))

    @property
    def closed(self) -> bool:
        return self._file is None

    def lost(self) -> str | None:
        """Why ``path`` no longer holds this recording (deleted, or another file put in
        its place: writes to a deleted file still succeed on Linux), or None."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path} was deleted while recording"
        except OSError as exc:
            return f"{self.path} cannot be checked: {exc.strerror or type(exc).__name__}"
        if (stat.st_dev, stat.st_ino) != self._identity:
            return f"{self.path} was replaced by another file while recording"
        return None

    def write(self, samples: np.ndarray) -> None:
        """Append int16 samples and update the header."""
        if self._file is None:
            raise ValueError(f"{self.path} is closed")
        if samples.dtype != np.int16:
            raise PiopiyValidationError(f"samples must be int16, not {samples.dtype}")
        data = samples.astype("<i2", copy=False).tobytes()
        try:
            self._put(HEADER_BYTES + 2 * self.frames, data)
            self._put(0, _wav_header(self.rate, self.frames + samples.size))
        except OSError:
            self._cut_back()
            raise
        self.frames += samples.size

    def _put(self, offset: int, data: bytes) -> None:
        """Write all of ``data`` at ``offset``; a short write is retried, so it either
        lands whole or raises."""
        file = self._file
        assert file is not None
        file.seek(offset)
        view = memoryview(data)
        while view:
            written = file.write(view)
            if not written:
                raise OSError(28, "No space left on device", str(self.path))
            view = view[written:]

    def _cut_back(self) -> None:
        """Back to the last good write: data and header both say ``frames`` samples."""
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.truncate(HEADER_BYTES + 2 * self.frames)
            file.seek(0)
            file.write(_wav_header(self.rate, self.frames))  # within the file: needs no space
        except OSError:
            pass
        finally:
            file.close()

    def close(self) -> None:
        """Close the file (idempotent); it is already complete."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _wav_header(rate: int, frames: int) -> bytes:
    data = 2 * frames
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1,
                       rate, 2 * rate, 2, 16, b"data", data)


class Recorder:
    """Writes calls to ``directory`` (created if needed).

    Pass :meth:`record` as a server's ``on_call`` to record every call, or use
    :meth:`claim` and :meth:`open` to write arrays yourself. ``chunk_seconds`` is how
    much audio is gathered per write. With ``aligned`` (the default) every file of a
    call is on the call's timeline: sample k of each is the call's audio at time
    k / rate, the gaps (a pause, a reconnection, late audio, an overrun) filled with
    silence, so the channels line up sample for sample; ``filled`` says how many
    samples of silence went into each file. Without it a file holds the audio received,
    back to back.
    """

    def __init__(self, directory: str | Path, *, chunk_seconds: float = 0.1,
                 aligned: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.chunk_seconds = chunk_seconds
        self.aligned = aligned
        self.files: list[Path] = []
        self.filled: dict[Path, int] = {}
        self._stems: set[str] = set()

    def claim(self, call_id: str) -> str:
        """Reserve a stem for one call: the sanitised id, or it with ``-2``, ``-3``...
        when another call (or an existing file) already has it."""
        base = safe_stem(call_id)
        for n in range(1, 1_000_000):
            stem = base if n == 1 else f"{base}-{n}"
            if stem in self._stems:
                continue
            if any((self.directory / f"{stem}.{ch}.wav").exists() for ch in CHANNEL_NAMES):
                continue
            self._stems.add(stem)
            return stem
        raise FileExistsError(f"no free file name for call {call_id!r}")

    def open(self, stem: str, channel: str, rate: int) -> WavSink:
        """Create ``<stem>.<channel>.wav``; raises FileExistsError rather than overwrite."""
        if channel not in CHANNEL_NAMES:
            raise PiopiyValidationError(
                f"channel must be one of {', '.join(CHANNEL_NAMES)}, not {channel!r}")
        if stem != safe_stem(stem):
            raise PiopiyValidationError(f"unsafe file stem {stem!r}; use claim()")
        path = self.directory / f"{stem}.{channel}.wav"
        # Exclusive: never truncates someone else's file. Unbuffered: every write goes
        # to the OS at once, so a failure is seen where it happens.
        file = open(path, "xb", buffering=0)
        try:
            sink = WavSink(path, file, rate)
        except BaseException:
            file.close()
            raise
        self.files.append(path)
        return sink

    async def record(self, call: CallStream) -> list[Path]:
        """Record every channel of ``call`` until it ends; return the files written.

        A channel that never carries audio gets no file. When writing fails, the rest of
        that channel is read and dropped (the call goes on) and, once the call is over,
        :class:`RecordingError` says what failed; every file is a valid WAV of what was
        written. A file deleted (or replaced) while it was written is a failure too,
        named, and not among the files returned.
        """
        chunk = max(1, int(self.chunk_seconds * call.target_rate))
        stems: list[str] = []  # the call's stem, once claimed by its first channel
        paths: list[Path] = []
        failures: list[str] = []

        def open_sink(name: str) -> WavSink:
            if not stems:
                stems.append(self.claim(call.call_id))
            try:
                sink = self.open(stems[0], name, call.target_rate)
            except FileExistsError:  # another process took the name meanwhile
                sink = self.open(self.claim(call.call_id), name, call.target_rate)
            paths.append(sink.path)
            return sink

        async def record_channel(name: str) -> None:
            sink: WavSink | None = None
            failed = False
            at = 0  # the timeline position the file has reached (aligned)
            try:
                async for position, samples in self._pieces(call, name, chunk):
                    if failed:
                        continue  # keep reading, so the call's ring never backs up
                    try:
                        if sink is None:
                            sink = open_sink(name)
                        if position > at:
                            self._silence(sink, position - at, chunk)
                        sink.write(samples)
                        at = position + samples.size
                    except OSError as exc:
                        failed = True
                        failures.append(f"{name}: {_why(exc)}")
            finally:
                if sink is not None and not sink.closed:
                    lost = sink.lost()
                    if lost is not None:
                        failures.append(f"{name}: {lost}")
                        paths.remove(sink.path)
                    try:
                        sink.close()
                    except OSError as exc:
                        failures.append(f"{name}: {_why(exc)}")

        await asyncio.gather(*(record_channel(name) for name in CHANNEL_NAMES))
        if failures:
            raise RecordingError(call.call_id, paths, failures)
        return paths


    def _pieces(self, call: CallStream, name: str,
                chunk: int) -> AsyncIterator[tuple[int, np.ndarray]]:
        """A channel's audio as (timeline position, samples): positioned when aligned,
        else back to back (the position where the last piece ended)."""
        reader = call.channel(name)
        if self.aligned:
            return (piece async for piece in reader.positioned(chunk))
        return self._back_to_back(reader.chunks(chunk))

    @staticmethod
    async def _back_to_back(chunks: AsyncIterator[np.ndarray]
                            ) -> AsyncIterator[tuple[int, np.ndarray]]:
        at = 0
        async for samples in chunks:
            yield at, samples
            at += samples.size

    def _silence(self, sink: WavSink, samples: int, chunk: int) -> None:
        """Write ``samples`` of silence (a gap on the timeline), a chunk at a time."""
        self.filled[sink.path] = self.filled.get(sink.path, 0) + samples
        zeros = np.zeros(min(samples, chunk), np.int16)
        while samples > 0:
            sink.write(zeros[:samples])
            samples -= zeros.size


def _why(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or type(exc).__name__}{where}"
