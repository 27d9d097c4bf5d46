"""Workers reading calls from NATS JetStream: each call to exactly one worker of a pool.

Every worker of a pool (``group``) pulls from one durable JetStream consumer of the
calls' start messages, which JetStream shares out like a NATS queue group: each start
goes to one worker, which holds it (``in_progress`` acknowledgements) while it reads
the call, and acknowledges it when the call is read to its end. A worker reads a call
through a consumer of that call's subjects, durable too, acknowledging each chunk once
its application has read it. A worker that dies stops holding its calls: ``handoff``
seconds later JetStream gives each start to another worker of the pool, which binds to
the same consumer of the call and reads on from where the dead worker's application
stopped (:attr:`RemoteCall.taken_over`). A worker that closes lets its calls go at
once. Workers scale by starting more: on this machine or others, same URL and group.
Needs ``nats-py`` (the ``nats`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import PiopiyValidationError
from ..receiver.logs import RateLimitedLog
from .nats import DEFAULT_STREAM, StreamLimits, ensure_stream
from .remote import RemoteCall
from .subjects import AUDIO, END, EVENT, ChunkHeader, Subjects, decode_json

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

logger = logging.getLogger("piopiy_fast.bus")
FETCH_WAIT = 1.0  # seconds one pull waits for messages


class NatsSubscriber:
    """Calls from the bus for one worker of a pool. ::

        async with NatsSubscriber("nats://bus:4222", group="asr") as subscriber:
            async for call in subscriber.calls():
                asyncio.create_task(transcribe(call))   # async for chunk in call.caller

    Args:
        url: ``nats://host:4222`` (several, comma-separated, for a cluster).
        group: The pool's name: the workers sharing it share the calls out.
        stream: The JetStream stream the receivers publish to.
        prefix: The subjects' prefix.
        max_calls: Calls this worker reads at once, at most; it takes no more until one
            ends.
        handoff: Seconds after a worker dies before its calls go to another worker.
        queue_seconds: Audio held per channel for an application that falls behind;
            past it the oldest is let go (a gap of cause ``overrun``).
        linger: Seconds after a call's end that audio nobody reads is kept.
        quiet_timeout: Seconds without a message on a call before it is ended as lost.
        replay: A pool met for the first time takes the calls that started up to this
            many seconds before (within the stream's retention).
    """

    def __init__(self, url: str, *, group: str = "workers", stream: str = DEFAULT_STREAM,
                 prefix: str | None = None, max_calls: int = 100, handoff: float = 30.0,
                 queue_seconds: float = 10.0, linger: float = 10.0,
                 quiet_timeout: float = 120.0, replay: float = 60.0) -> None:
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            raise PiopiyValidationError(
                "reading calls from NATS needs nats-py: pip install 'piopiy-fast[nats]'"
            ) from exc
        if max_calls < 1 or not handoff >= 2.0:
            raise PiopiyValidationError("max_calls must be 1 or more and handoff 2 s or more")
        if not group.replace("-", "").replace("_", "").isalnum():
            raise PiopiyValidationError(f"group is letters, digits, - and _, not {group!r}")
        self.url = url
        self.group = group
        self.stream = stream
        self.subjects = Subjects(prefix) if prefix is not None else Subjects()
        self.max_calls = max_calls
        self.handoff = float(handoff)
        self.queue_seconds = queue_seconds
        self.linger = linger
        self.quiet_timeout = quiet_timeout
        self.replay = replay
        self._errors = RateLimitedLog(logger)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._claims: Any = None
        self._live: dict[RemoteCall, tuple[Msg, asyncio.Task[None]]] = {}
        self._room = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False
        self.taken = 0
        self.finished = 0

    async def __aenter__(self) -> NatsSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def live_calls(self) -> list[RemoteCall]:
        return list(self._live)

    async def start(self) -> None:
        """Connect, create the stream if no receiver has yet, join the pool."""
        import datetime

        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        async def quiet(exc: Exception) -> None:
            self._errors.info("bus: %s", exc)

        self._nc = nc = await nats.connect(
            self.url.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            error_cb=quiet, ping_interval=5, max_outstanding_pings=2)
        self._js = js = nc.jetstream()
        await ensure_stream(nc, self.stream, self.subjects, StreamLimits())
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=self.replay)
        await _consumer(js, self.stream, ConsumerConfig(
            durable_name=self.group, filter_subject=self.subjects.starts,
            deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since,
            ack_policy=AckPolicy.EXPLICIT, ack_wait=self.handoff, max_deliver=-1,
            max_ack_pending=-1))
        self._claims = await js.pull_subscribe_bind(self.group, self.stream)
        self._keeper = asyncio.ensure_future(self._keep_claims())

    async def calls(self) -> AsyncIterator[RemoteCall]:
        """Yield each call this worker is given, until :meth:`close`."""
        if self._claims is None:
            await self.start()
        from nats.errors import TimeoutError as NatsTimeout
        while not self._closing:
            free = self.max_calls - len(self._live)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                # One at a time: the pool's pulls wait in turn, so calls alternate.
                claims = await self._claims.fetch(1, timeout=FETCH_WAIT)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception as exc:
                if self._closing:
                    return
                self._errors.warning("bus: fetching calls failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for claim in claims:
                call = await self._take(claim)
                if call is not None:
                    yield call

    async def _take(self, claim: Msg) -> RemoteCall | None:
        try:
            start = decode_json(claim.data)
            token, _, _ = self.subjects.parse(claim.subject)
        except PiopiyValidationError as exc:
            logger.warning("bus: a start message that is no call (%s): dropped", exc)
            await claim.term()
            return None
        taken_over = claim.metadata.num_delivered > 1
        call = RemoteCall(start, taken_over=taken_over, queue_seconds=self.queue_seconds)
        try:
            reader = await self._bind(token, claim.metadata.sequence.stream)
        except Exception as exc:
            self._errors.warning("bus: cannot read call %s: %s", call.call_id, exc)
            with contextlib.suppress(Exception):
                await claim.nak(delay=1.0)
            return None
        self.taken += 1
        logger.info("bus: call %s%s", call.call_id, " taken over" if taken_over else "")
        self._live[call] = (claim, asyncio.ensure_future(self._read(call, token, reader,
                                                                     claim)))
        return call

    def _consumer_name(self, token: str) -> str:
        return f"{self.group}-{token}"

    async def _bind(self, token: str, start_sequence: int) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        assert self._js is not None
        name = self._consumer_name(token)
        # From the call's start message on: what came before it under the same id is
        # another call (an id used again), and JetStream need not look at it.
        # Chunks a dead worker held come back after ack_wait: half the handoff, so they
        # are due again before the call is handed on, and come first, in order.
        await _consumer(self._js, self.stream, ConsumerConfig(
            durable_name=name, filter_subject=self.subjects.call(token),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_sequence,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.handoff / 2, max_deliver=-1, max_ack_pending=4096,
            inactive_threshold=max(60.0, 4 * self.handoff)))
        return await self._js.pull_subscribe_bind(name, self.stream)

    async def _read(self, call: RemoteCall, token: str, reader: Any, claim: Msg) -> None:
        """Pull the call's messages into it until it has ended and been read (or the
        worker closes), then hand the call back as done."""
        from nats.errors import TimeoutError as NatsTimeout
        heard = time.monotonic()
        ended_at: float | None = None
        settled = asyncio.ensure_future(call.settled())
        try:
            while not settled.done():
                if ended_at is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(settled),
                                               max(0.0, ended_at + self.linger
                                                   - time.monotonic()))
                    if not settled.done():
                        call.let_go()
                    break
                try:
                    messages = await reader.fetch(64, timeout=FETCH_WAIT)
                except (NatsTimeout, TimeoutError):
                    if time.monotonic() - heard > self.quiet_timeout:
                        logger.warning("bus: call %s went quiet: ended as lost", call.call_id)
                        call.lose()
                        ended_at = time.monotonic()
                    continue
                except Exception as exc:
                    self._errors.warning("bus: reading call %s: %s", call.call_id, exc)
                    await asyncio.sleep(0.5)
                    continue
                heard = time.monotonic()
                for msg in messages:
                    self._dispatch(call, msg)
                if call.ended and ended_at is None:
                    ended_at = time.monotonic()
            await claim.ack()
            self.finished += 1
            with contextlib.suppress(Exception):
                await reader.unsubscribe()
            with contextlib.suppress(Exception):
                assert self._js is not None
                await self._js.delete_consumer(self.stream, self._consumer_name(token))
        finally:
            settled.cancel()
            self._live.pop(call, None)
            self._room.set()

    def _dispatch(self, call: RemoteCall, msg: Msg) -> None:
        try:
            _, kind, _ = self.subjects.parse(msg.subject)
            if kind == AUDIO:
                call.feed_audio(ChunkHeader.decode(msg.headers), msg.data, msg.ack)
                return
            if kind == EVENT:
                call.feed_event(decode_json(msg.data))
            elif kind == END:
                call.feed_end(decode_json(msg.data))
        except (PiopiyValidationError, ValueError, TypeError, AttributeError) as exc:
            # What a publisher sent wrong ends at that message.
            self._errors.warning("bus: call %s: a bad message dropped: %s", call.call_id, exc)
        asyncio.ensure_future(_ack(msg))

    async def _keep_claims(self) -> None:
        """Tell JetStream, a third of ``handoff`` apart, that each call is still read."""
        while True:
            await asyncio.sleep(self.handoff / 3)
            for claim, _ in list(self._live.values()):
                with contextlib.suppress(Exception):
                    await claim.in_progress()

    async def close(self) -> None:
        """Stop: calls not read to their end go back to the pool at once."""
        self._closing = True
        self._room.set()
        if self._keeper is not None:
            self._keeper.cancel()
        for call, (claim, task) in list(self._live.items()):
            task.cancel()
            call.abandon()
            with contextlib.suppress(Exception):
                await claim.nak()
        for _, task in list(self._live.values()):
            with contextlib.suppress(BaseException):
                await task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()


async def _consumer(js: JetStreamContext, stream: str, config: Any) -> None:
    """The durable consumer ``config`` names: a new one, or the one there (a pool
    another worker joined first, a call another worker took before: JetStream answers
    a creation with the same configuration with it, and refuses another, when this
    looks it up). One request for a new call. Workers racing to create it get the one
    that won."""
    from nats.js.errors import Error as JetStreamError

    try:
        await js.add_consumer(stream, config)
    except JetStreamError:
        await js.consumer_info(stream, config.durable_name)  # raises if there is none


async def _ack(msg: Msg) -> None:
    with contextlib.suppress(Exception):
        await msg.ack()
