"""Replies played into a call: audio batched into ``streamAudio`` messages the platform plays well.

The platform plays each ``streamAudio`` message as a whole (it is written out and
played as one piece), so a stream of 20 ms messages plays with a gap after each,
and it accepts raw audio at 8000 or 16000 Hz only. :class:`ReplyBatcher` takes mono
audio at any supported rate, resamples it to the reply rate with one streaming
resampler per call, and cuts it into messages of a fixed duration, never more than
50 KiB of audio each. It does no I/O: it returns the JSON text to send.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio import QUALITIES, Resampler, float32_to_l16, int16_to_l16, l16_to_int16
from ..errors import PiopiyValidationError
from .wire import PLAY_SAMPLE_RATES, as_sample_rate, stream_audio_message

# What the platform's playStream accepts for raw audio.
REPLY_RATES = PLAY_SAMPLE_RATES
# The largest piece of audio TeleCMI's own examples send in one message.
MAX_MESSAGE_BYTES = 50 * 1024
DEFAULT_BATCH_MS = 300.0

Int16Array = npt.NDArray[np.int16]
# How as_mono_int16 reads a memoryview, by its struct format code.
BYTE_FORMATS = ("B", "c")  # L16 bytes
SAMPLE_FORMATS = ("h", "f", "d")  # int16, float32, float64 samples


def reply_rate_for(call_rate: int) -> int:
    """The rate replies to a call at ``call_rate`` go out at: the call's own rate when
    the platform plays it (8000, 16000), else 16000 (a 12 kHz call, say)."""
    return call_rate if call_rate in REPLY_RATES else 16000


class ReplyBatcher:
    """Batches one call's reply audio into ``streamAudio`` messages.

    Parameters
    ----------
    call_rate : int
        The call's rate (its ``voice_quality``); replies go out at
        :func:`reply_rate_for` of it, available as ``reply_rate``.
    batch_ms : float
        Duration of one message, default 300 ms, at most what fits in 50 KiB
        (1.6 s at 16000 Hz, 3.2 s at 8000 Hz; a longer request is cut to that).
        Why 300 ms: each message costs the platform one start of playback, so
        20 ms messages play with a gap every 20 ms, while the first message of a
        reply can only go out once a whole batch is there. A text-to-speech
        engine produces speech faster than real time, so 300 ms is ready within
        a fraction of that; it is the largest delay before the first word that
        a listener does not notice as a hesitation, and it cuts the gaps fifteen
        times. At 16000 Hz it is 9600 bytes, well under the 50 KiB limit.
    quality : str
        Resampler preset (``"speech"`` or ``"strict"``).

    :meth:`add` returns every complete batch, each exactly ``batch_samples`` long;
    :meth:`flush` ends an utterance; :meth:`clear` drops what is pending
    (an interruption). Feeding a signal in pieces of any sizes gives exactly the
    same messages as feeding it whole.

    One resampler (when the input rate differs from the reply rate) lives across
    all :meth:`add` calls of an utterance, so its history is never lost between
    pieces. :meth:`flush` drains its tail (its last ``delay`` samples belong to
    the utterance that just ended) and it starts fresh for the next one, as the
    platform plays the two as separate pieces with silence between; :meth:`clear`
    forgets its history, which belongs to the audio being dropped. Input at a new
    rate drains the old resampler into the pending audio first.
    """

    __slots__ = ("call_rate", "reply_rate", "batch_samples", "quality",
                 "_pending", "_resampler", "_in_rate")

    def __init__(self, call_rate: int, *, batch_ms: float = DEFAULT_BATCH_MS,
                 quality: str = "speech") -> None:
        call_rate = as_sample_rate("call_rate", call_rate)
        if isinstance(batch_ms, bool) or not isinstance(batch_ms, (int, float)) \
                or not batch_ms > 0:
            raise PiopiyValidationError(f"batch_ms must be a number above 0, not {batch_ms!r}")
        if quality not in QUALITIES:
            raise PiopiyValidationError(
                f"quality must be one of {', '.join(QUALITIES)}, not {quality!r}")
        self.call_rate = call_rate
        self.reply_rate = reply_rate_for(call_rate)
        self.batch_samples = max(1, min(round(self.reply_rate * batch_ms / 1000),
                                        self.max_samples))
        self.quality = quality
        self._pending = bytearray()  # L16 at reply_rate, less than one batch between calls
        self._resampler: Resampler | None = None
        self._in_rate = self.reply_rate

    @property
    def max_samples(self) -> int:
        """The most samples one message carries (50 KiB of L16)."""
        return MAX_MESSAGE_BYTES // 2

    @property
    def batch_seconds(self) -> float:
        return self.batch_samples / self.reply_rate

    @property
    def pending(self) -> int:
        """Samples waiting at the reply rate (not counting the resampler's few held back)."""
        return len(self._pending) // 2

    def add(self, audio: Any, rate: int | None = None) -> list[str]:
        """Take mono audio at ``rate`` (the call's rate when None) and return the
        ``streamAudio`` messages of every batch it completes.

        ``audio`` is int16 samples, float samples in -1.0..1.0 (saturated), or
        L16 bytes.
        """
        self.feed(audio, rate)
        return self._messages(self.batch_samples, whole_only=True)

    def feed(self, audio: Any, rate: int | None = None) -> int:
        """Take audio as :meth:`add` does without cutting messages; returns the
        samples now pending. For a sender that decides when to :meth:`take`."""
        samples = as_mono_int16(audio)
        self.prepare(rate)
        out: npt.NDArray[Any] = samples
        if self._resampler is not None:
            out = self._resampler.process(samples)
        self._pending += int16_to_l16(out)
        return self.pending

    def prepare(self, rate: int | None = None) -> None:
        """Get ready for input at ``rate`` (the call's rate when None): its resampler is
        built now. Input at a new rate drains the old resampler into the pending
        audio first."""
        rate = self.call_rate if rate is None else as_sample_rate("rate", rate)
        if rate != self._in_rate:
            self._drain_resampler()
            self._resampler = None
            self._in_rate = rate
        if rate != self.reply_rate and self._resampler is None:
            self._resampler = Resampler(rate, self.reply_rate, quality=self.quality)

    def take(self) -> str | None:
        """One message of everything pending (at most 50 KiB; the rest stays), or
        None when nothing is. The resampler keeps its history: the reply goes on."""
        messages = self._messages(self.max_samples, whole_only=False, limit=1)
        return messages[0] if messages else None

    def flush(self) -> list[str]:
        """End of an utterance: the pending audio and the resampler's tail, in
        batches (the last one shorter). The next :meth:`add` starts a fresh resampler."""
        self._drain_resampler()
        return self._messages(self.batch_samples, whole_only=False)

    def clear(self) -> int:
        """Drop the pending audio and the resampler's history (an interruption);
        returns the samples dropped."""
        dropped = self.pending
        self._pending.clear()
        if self._resampler is not None:
            self._resampler.clear()
        return dropped

    def _drain_resampler(self) -> None:
        if self._resampler is not None:
            tail: npt.NDArray[Any] = self._resampler.flush()
            self._pending += int16_to_l16(tail)
            # The next utterance gets a new one (its filter is cached): flushing this one
            # again would add a delay's worth of silence.
            self._resampler = None

    def _messages(self, size: int, *, whole_only: bool, limit: int | None = None) -> list[str]:
        step = 2 * size
        out: list[str] = []
        start = 0
        end = len(self._pending)
        while end - start >= (step if whole_only else 1):
            if limit is not None and len(out) == limit:
                break
            piece = bytes(self._pending[start:start + step])
            out.append(stream_audio_message(piece, self.reply_rate))
            start += len(piece)
        del self._pending[:start]
        return out


def as_mono_int16(audio: Any) -> Int16Array:
    """Mono audio as int16: L16 bytes, int16 samples, or float samples in -1.0..1.0
    (scaled by 32768, rounded, saturated). A (n, 1) or (1, n) array counts as mono.

    A memoryview is read by its format: ``h`` as int16 samples, ``f``/``d`` as float
    samples, ``B``/``c`` (bytes) as L16; any other format is refused.

    Raises:
        PiopiyValidationError: Not mono, not whole samples, or not int16, float or bytes.
    """
    code = audio.format.lstrip("@=<>!") if isinstance(audio, memoryview) else None
    if code is not None and code not in BYTE_FORMATS:
        if code not in SAMPLE_FORMATS:
            raise PiopiyValidationError(
                f"a memoryview of format {audio.format!r} is not audio: give int16 ('h') "
                f"or float ('f', 'd') samples, or bytes ('B') of L16")
        audio = np.asarray(audio)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        if (audio.nbytes if isinstance(audio, memoryview) else len(audio)) % 2:
            raise PiopiyValidationError("L16 audio must hold whole 2-byte samples")
        return l16_to_int16(audio)
    samples = np.asarray(audio)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise PiopiyValidationError(f"audio must be mono (one dimension), not {samples.shape}")
    if samples.dtype.kind == "i" and samples.dtype.itemsize == 2:  # either byte order
        return np.ascontiguousarray(samples, dtype=np.int16)
    if samples.dtype.kind == "f":
        return l16_to_int16(float32_to_l16(samples.astype(np.float32, copy=False)))
    raise PiopiyValidationError(f"audio must be int16 or float samples, not {samples.dtype}")
