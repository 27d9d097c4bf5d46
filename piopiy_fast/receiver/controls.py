"""What a call sends back to the platform: reply audio and the live controls.

:class:`CallControls` is the half of :class:`~.call.CallStream` that talks back over
the connection: ``streamAudio`` replies batched as the platform plays them well
(:mod:`piopiy_fast.stream.replies`), ``pause``/``resume``/``stop``/``break``, a PCMO for
the live call, and closing it. Once the call has ended each raises ``CallEnded``, a
``PiopiyError``, never a WebSocket library's exception.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from ..errors import CallEnded, PiopiyValidationError, ReplyTimeout
from ..stream.replies import ReplyBatcher, as_mono_int16
from ..stream.wire import BREAK, PAUSE, RESUME, STOP

if TYPE_CHECKING:
    from ..stream.call import CallCore, CallSettings
    from .transports.base import Link

# Seconds send_audio waits for the peer to read one message of a reply before giving up.
SEND_TIMEOUT = 10.0


class CallControls:
    """Replies and controls of one call; mixed into ``CallStream``, which holds the
    connection (``_link``), the call's core and settings."""

    if not TYPE_CHECKING:
        # Empty: CallStream holds the slots (mypy would check each assignment here
        # against this mixin's own).
        __slots__ = ()

    _link: Link
    _core: CallCore
    _settings: CallSettings
    _replies: ReplyBatcher | None
    paused: bool
    resumed_at: float | None
    closed_by_receiver: str | None

    async def send_audio(self, pcm: Any, rate: int | None = None, *,
                         flush: bool = False, timeout: float | None = SEND_TIMEOUT) -> int:
        """Play audio into the call, in ``streamAudio`` messages the platform plays well.

        Args:
            pcm: mono int16 or float (-1.0..1.0) samples, or L16 bytes (a memoryview
                is read by its format: ``h`` int16, ``f``/``d`` floats, ``B`` L16).
            rate: the rate of ``pcm`` (the call's rate when None): an int, a numpy
                integer or a whole float. It is resampled to the reply rate (the call's
                rate when it is 8000 or 16000, else 16000).
            flush: send what waits for a full batch too (the end of an utterance).
            timeout: seconds to wait for the peer to read each message (None: no limit).

        Returns:
            The number of input samples taken.

        Raises:
            CallEnded: the call is over.
            ReplyTimeout: the peer read nothing for ``timeout`` seconds; the message
                in flight went whole or not at all, the rest of the reply is dropped.
            PiopiyValidationError: ``pcm`` is not mono audio, or ``rate`` not a rate.

        Audio goes out in batches of ``reply_batch_ms`` (300 ms by default, at most
        50 KiB each): the platform plays each message as a whole, so many small ones
        would play with gaps. Audio short of a batch waits for more, or for
        :meth:`flush`.
        """
        if self._core.ended:
            raise CallEnded(f"call {self._core.call_id} has ended")
        _check_timeout(timeout)
        replies = self._replies_for_call()
        samples = as_mono_int16(pcm)
        await self._send_reply(replies.add(samples, rate), timeout)
        if flush:
            await self.flush(timeout=timeout)
        return int(samples.size)

    async def flush(self, *, timeout: float | None = SEND_TIMEOUT) -> None:
        """End of an utterance: send the audio still waiting for a full batch.

        Args:
            timeout: as for :meth:`send_audio`.

        Raises:
            CallEnded: the call is over.
            ReplyTimeout: as for :meth:`send_audio`.
        """
        _check_timeout(timeout)
        if self._replies is not None:
            await self._send_reply(self._replies.flush(), timeout)

    async def _send_reply(self, messages: list[str], timeout: float | None) -> None:
        for index, message in enumerate(messages):
            try:
                await asyncio.wait_for(self._send(message), timeout)
            except TimeoutError:
                replies = self._replies
                waiting = replies.clear() if replies is not None else 0
                unsent = len(messages) - index - 1
                raise ReplyTimeout(
                    f"call {self._core.call_id}: the peer read no reply audio for "
                    f"{timeout:g} s; dropped the rest of the reply ({unsent} messages "
                    f"and {waiting} samples waiting)") from None

    async def send_pcmo(self, pcmo: Any) -> None:
        """Hand the live call a PCMO (to bridge it, say): an ``Action`` or
        ``StreamAction``, a list of actions, or its JSON text, sent as one text message.

        Raises:
            PiopiyValidationError: ``pcmo`` is not a non-empty list of actions (as JSON
                text too).
            CallEnded: the call is over.
        """
        from ..sdk.actions import as_pcmo
        await self._send(json.dumps(as_pcmo(pcmo)))

    def _replies_for_call(self) -> ReplyBatcher:
        rate = self._core.format.sample_rate
        replies = self._replies
        if replies is None or replies.call_rate != rate:
            replies = self._replies = ReplyBatcher(rate, batch_ms=self._settings.reply_batch_ms,
                                                   quality=self._settings.quality)
        return replies

    async def pause(self) -> None:
        """Ask the platform to pause the stream (the server's silence timeout waits)."""
        await self._send(PAUSE)
        self.paused = True

    async def resume(self) -> None:
        """Ask the platform to resume a paused stream."""
        # The gap a pause leaves is not lateness: restart the real-time schedule.
        self._core.resumed()
        await self._send(RESUME)
        self.paused = False
        self.resumed_at = time.time()

    async def stop(self) -> None:
        """Ask the platform to stop streaming."""
        await self._send(STOP)

    async def interrupt(self) -> None:
        """Stop the audio being played into the call (the ``break`` action) and drop the
        reply audio not sent yet."""
        if self._replies is not None:
            self._replies.clear()
        await self._send(BREAK)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and end the call: it does not wait for a reconnection,
        and a connection naming it later is refused. Closing an ended call does
        nothing."""
        if not self._core.ended:
            self.closed_by_receiver = reason or "closed by the receiver"
            await self._link.close(code, reason)

    async def _send(self, text: str) -> None:
        if self._core.ended:
            raise CallEnded(f"call {self._core.call_id} has ended")
        try:
            await self._link.send_text(text)
        except ConnectionError:
            raise CallEnded(f"call {self._core.call_id} has ended") from None


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool)
                                or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise PiopiyValidationError(f"timeout must be positive seconds or None, not {timeout!r}")
