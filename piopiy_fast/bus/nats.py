"""NATS JetStream as the bus: the stream, and a receiver's publisher.

One JetStream stream (``PIOPIY`` by default) captures every subject under the prefix,
with retention limits (age and bytes, the oldest discarded first): it is the replay
window workers read calls from, and a worker that takes a call over from one that died
reads the rest of it there. :func:`ensure_stream` creates it, or checks the one there.

:class:`NatsPublisher` sends the outbox's messages in order, each with a reply subject
so that JetStream confirms it was stored; what is not confirmed within
``ack_timeout`` seconds, or when the connection drops, counts as ``bus_unconfirmed``.
When the connection drops it connects again, waiting 0.1 s, then twice as long each
time, at most ``max_backoff`` seconds; meanwhile the outbox fills and drops its oldest
audio. Needs ``nats-py`` (the ``nats`` extra).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PiopiyValidationError
from ..receiver.logs import RateLimitedLog
from .publisher import DEFAULT_CHUNK_MS, DEFAULT_MAX_IN_FLIGHT, OutboxPublisher
from .subjects import Subjects

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

logger = logging.getLogger("piopiy_fast.bus")

DEFAULT_STREAM = "PIOPIY"
FIRST_BACKOFF = 0.1


class BusError(PiopiyValidationError):
    """The bus refuses this configuration (a stream that does not fit, say)."""


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The stream's retention: what a worker can still replay.

    Args:
        max_age: Seconds a message is kept.
        max_bytes: Bytes the stream keeps at most (the oldest go first).
        replicas: Copies in a cluster (1, or 3 for a cluster of three or more).
        storage: ``file`` (survives a restart of the server) or ``memory``.
    """

    max_age: float = 3600.0
    max_bytes: int = 8 << 30
    replicas: int = 1
    storage: str = "file"

    def __post_init__(self) -> None:
        if not self.max_age > 0 or self.max_bytes < 1 << 20:
            raise PiopiyValidationError("a stream needs a positive max_age and max_bytes "
                                        "of 1 MiB or more")
        if self.storage not in ("file", "memory") or not 1 <= self.replicas <= 5:
            raise PiopiyValidationError("storage is file or memory; replicas 1 to 5")


async def ensure_stream(nc: Client, name: str, subjects: Subjects,
                        limits: StreamLimits) -> None:
    """Create the stream ``name`` for ``subjects`` with ``limits``, or check the one
    there captures them and has a retention limit.

    Raises:
        BusError: The stream there does not capture the subjects, or keeps everything.
    """
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import Error as JetStreamError
    from nats.js.errors import NotFoundError

    jsm = nc.jsm()
    try:
        info = await jsm.stream_info(name)
    except NotFoundError:
        info = None
    if info is None:
        try:
            await jsm.add_stream(StreamConfig(
                name=name, subjects=[subjects.everything],
                retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
                max_age=limits.max_age, max_bytes=limits.max_bytes,
                num_replicas=limits.replicas,
                storage=StorageType.FILE if limits.storage == "file" else StorageType.MEMORY))
        except JetStreamError as exc:
            try:
                info = await jsm.stream_info(name)  # made meanwhile by another receiver
            except NotFoundError:
                raise BusError(f"cannot create stream {name}: {exc}") from None
        else:
            logger.info("bus: created stream %s for %s (%.0f s, %d bytes at most)", name,
                        subjects.everything, limits.max_age, limits.max_bytes)
            return
    config = info.config
    if subjects.everything not in (config.subjects or []):
        raise BusError(f"stream {name} captures {config.subjects}, not "
                       f"{subjects.everything}: name another stream or prefix")
    if not (config.max_age or (config.max_bytes or -1) > 0):
        raise BusError(f"stream {name} has no retention limit (max_age, max_bytes): "
                       "it would keep every call forever")


def _backoff(attempt: int, ceiling: float) -> float:
    return float(min(ceiling, FIRST_BACKOFF * 2.0 ** min(attempt, 30)))


class NatsPublisher(OutboxPublisher):
    """A receiver's publisher to NATS JetStream (``StreamServer(publish=...)``).

    Args:
        url: ``nats://host:4222`` (several, comma-separated, for a cluster).
        stream: The JetStream stream's name.
        limits: Its retention, used when it is created here.
        prefix: The subjects' prefix (see :mod:`.subjects`).
        chunk_ms: Milliseconds of audio per message.
        max_in_flight: Bytes queued or unconfirmed at most; past it, the oldest audio
            is dropped.
        ack_timeout: Seconds to wait for JetStream to confirm a message.
        max_backoff: The longest wait between two attempts to connect.
        connect_timeout: Seconds one attempt may take.
        flush_timeout: Seconds ``close`` waits for what is queued to be confirmed.
    """

    def __init__(self, url: str, *, stream: str = DEFAULT_STREAM,
                 limits: StreamLimits | None = None, prefix: str | None = None,
                 chunk_ms: float = DEFAULT_CHUNK_MS,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, ack_timeout: float = 5.0,
                 max_backoff: float = 5.0, connect_timeout: float = 2.0,
                 flush_timeout: float = 5.0) -> None:
        super().__init__(prefix=prefix, chunk_ms=chunk_ms, max_in_flight=max_in_flight,
                         flush_timeout=flush_timeout)
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            raise PiopiyValidationError(
                "publishing to NATS needs nats-py: pip install 'piopiy-fast[nats]'") from exc
        self.url = url
        self.stream = stream
        self.limits = limits or StreamLimits()
        self.ack_timeout = ack_timeout
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self._errors = RateLimitedLog(logger)
        self._nc: Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._lost: asyncio.Event | None = None
        # reply token -> (size, when sent); oldest first
        self._unacked: collections.OrderedDict[str, tuple[int, float]] = \
            collections.OrderedDict()
        self._acked = asyncio.Event()
        self._next_token = 0
        self._connections = 0
        self._inbox: str | None = None  # where acknowledgements come, while connected
        self._window = max(1 << 16, self.outbox.max_bytes // 2)  # bytes unconfirmed

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        """Connect and create (or check) the stream; if the bus cannot be reached,
        keep trying in the background, calls are taken all the same.

        Raises:
            BusError: The stream there does not fit.
        """
        if self._runner is not None:
            return
        nc = None
        try:
            nc = await self._connect()
        except BusError:
            raise
        except Exception as exc:
            logger.warning("bus: %s not reachable (%s); calls are taken, their audio is "
                           "kept within the bound, and connecting goes on", self.url,
                           _why(exc))
        self._runner = asyncio.ensure_future(self._run(nc))

    async def _connect(self) -> Client:
        import nats

        lost = self._lost = asyncio.Event()

        async def closed() -> None:
            lost.set()

        async def quiet(exc: Exception) -> None:
            self._errors.info("bus: %s", _why(exc))

        nc = await nats.connect(
            self.url.split(","), allow_reconnect=False, max_reconnect_attempts=0,
            connect_timeout=self.connect_timeout, closed_cb=closed, disconnected_cb=closed,
            error_cb=quiet, ping_interval=5, max_outstanding_pings=2)
        try:
            await ensure_stream(nc, self.stream, self.subjects, self.limits)
        except BaseException:
            await nc.close()
            raise
        self._connections += 1
        if self._connections > 1:
            self.reconnects += 1
        logger.info("bus: connected to %s, stream %s", nc.connected_url.netloc
                    if nc.connected_url else self.url, self.stream)
        return nc

    async def _run(self, nc: Client | None) -> None:
        attempt = 0
        while not self._closing:
            if nc is None:
                try:
                    nc = await self._connect()
                except Exception as exc:
                    self._errors.warning("bus: cannot connect to %s: %s", self.url, _why(exc))
                    await asyncio.sleep(_backoff(attempt, self.max_backoff))
                    attempt += 1
                    continue
            attempt = 0
            self._nc = nc
            try:
                await self._pump(nc)
            except Exception as exc:
                if not self._closing:
                    self._errors.warning("bus: connection lost: %s", _why(exc))
            finally:
                self._nc = None
                self._give_up_unacked()
                with contextlib.suppress(Exception):
                    await nc.close()
                nc = None

    async def _pump(self, nc: Client) -> None:
        """Send what the outbox holds until the connection is lost (or closing)."""
        inbox = f"{nc.new_inbox()}"
        await nc.subscribe(f"{inbox}.*", cb=self._on_ack)
        outbox = self.outbox
        lost = self._lost
        assert lost is not None
        self._inbox = inbox
        try:
            while not lost.is_set() and not self._closing:
                self._expire_unacked()
                if outbox.unsettled_bytes >= self._window:
                    # The bus is slow: hold the rest back (the outbox drops its oldest).
                    self._acked.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._acked.wait(), 0.1)
                    continue
                if not await self._send(nc, inbox):
                    await outbox.wait(0.1)
        finally:
            self._inbox = None
        if lost.is_set() and not self._closing:
            raise ConnectionError("the server closed the connection or stopped answering")

    async def _send(self, nc: Client, inbox: str) -> bool:
        """Send queued messages while the window allows; False if none was queued."""
        outbox, unacked = self.outbox, self._unacked
        sent = False
        while outbox.unsettled_bytes < self._window:
            message = outbox.take()
            if message is None:
                break
            self._next_token += 1
            token = str(self._next_token)
            unacked[token] = (message.size, time.monotonic())
            await nc.publish(message.subject, message.payload, reply=f"{inbox}.{token}",
                             headers=message.headers)
            sent = True
        return sent

    async def send_queued(self) -> None:
        nc, inbox = self._nc, self._inbox
        if nc is not None and inbox is not None and nc.is_connected \
                and not self._lost_set():
            try:
                await self._send(nc, inbox)
            except Exception as exc:  # the pump's own turn finds the connection lost
                self._errors.info("bus: %s", _why(exc))

    def _lost_set(self) -> bool:
        return self._lost is None or self._lost.is_set()

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject.rsplit(".", 1)[1]
        entry = self._unacked.pop(token, None)
        if entry is None:
            return  # given up on already
        self.outbox.settled(entry[0])
        status = msg.headers.get("Status") if msg.headers else None
        if status is not None or b'"error"' in msg.data:
            self.rejected += 1
            self._errors.warning("bus: a message was refused: %s",
                                 status or msg.data[:200].decode(errors="replace"))
        else:
            self.published += 1
        self._acked.set()

    def _expire_unacked(self) -> None:
        unacked = self._unacked
        if not unacked:
            return
        due = time.monotonic() - self.ack_timeout
        while unacked:
            token, (size, sent) = next(iter(unacked.items()))
            if sent > due:
                return
            del unacked[token]
            self.outbox.settled(size)
            self.unconfirmed += 1

    def _give_up_unacked(self) -> None:
        for size, _ in self._unacked.values():
            self.outbox.settled(size)
        self.unconfirmed += len(self._unacked)
        self._unacked.clear()

    async def close(self) -> None:
        """Publish what the calls left (``flush_timeout`` at most), then disconnect."""
        await self.drain_calls(self.ack_timeout)
        if self.connected:
            await self.flush()
        self._closing = True
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._runner), 2.0)
            self._runner.cancel()
            with contextlib.suppress(BaseException):
                await self._runner


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def publisher_for(publish: Any) -> Any:
    """What ``StreamServer(publish=...)`` takes: a ``nats://`` URL, or a publisher."""
    if isinstance(publish, str):
        if not publish.startswith(("nats://", "tls://")):
            raise PiopiyValidationError(f"publish takes a nats:// URL, not {publish!r}")
        return NatsPublisher(publish)
    for name in ("start", "add_call", "close", "stats"):
        if not hasattr(publish, name):
            raise PiopiyValidationError(f"publish takes a nats:// URL or a Publisher; "
                                        f"{publish!r} has no {name}")
    return publish
