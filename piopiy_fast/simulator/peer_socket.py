"""One client WebSocket connection on asyncio streams: open with a given request,
write masked frames, read the server's frames. The two client generations in
``libwsc`` and ``ixwebsocket`` decide what to do with what it reads."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl as ssl_module
from collections.abc import Callable

from .handshake import HandshakeRefused, check_answer
from .ws_uri import WsTarget
from .wsframes import Frame, FrameReader, client_frame

__all__ = ["PeerSocket", "new_key"]

MAX_ANSWER = 16 * 1024  # an opening answer's head, at most


def new_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode()


class PeerSocket:
    """An open connection: ``send`` writes one masked frame, ``frames`` yields the
    server's. ``written`` counts frames written, by opcode."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 leftover: bytes, max_frame: int,
                 mask_key: Callable[[], bytes] | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self._frames = FrameReader(max_frame)
        self._pending: list[Frame] = self._frames.feed(leftover) if leftover else []
        self._mask_key = mask_key or (lambda: os.urandom(4))
        self.written: dict[int, int] = {}

    @classmethod
    async def open(cls, target: WsTarget, request_for: Callable[[str], bytes], *,
                   strict_accept: bool, ssl: ssl_module.SSLContext | None = None,
                   max_frame: int = 1 << 20,
                   mask_key: Callable[[], bytes] | None = None,
                   ) -> tuple[PeerSocket, dict[str, str]]:
        """Connect, write ``request_for(key)``, read and check the answer.

        Raises:
            HandshakeRefused: the server answered without switching protocols.
            OSError: the connection failed.
        """
        tls: ssl_module.SSLContext | None = None
        if target.secure:
            tls = ssl if ssl is not None else ssl_module.create_default_context()
        reader, writer = await asyncio.open_connection(target.host, target.port, ssl=tls)
        try:
            key = new_key()
            writer.write(request_for(key))
            await writer.drain()
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await reader.read(4096)
                if not chunk:
                    raise HandshakeRefused("closed during the opening handshake")
                head += chunk
                if len(head) > MAX_ANSWER and b"\r\n\r\n" not in head:
                    raise HandshakeRefused("an opening answer too long")
            end = head.index(b"\r\n\r\n") + 4
            headers = check_answer(head[:end], key, strict_accept=strict_accept)
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer, head[end:], max_frame, mask_key), headers

    def send(self, opcode: int, payload: bytes) -> None:
        """Write one frame (buffered; ``drain`` waits for the socket)."""
        if self.writer.is_closing():
            return
        self.writer.write(client_frame(opcode, payload, self._mask_key()))
        self.written[opcode] = self.written.get(opcode, 0) + 1

    async def drain(self) -> None:
        await self.writer.drain()

    async def next_frame(self) -> Frame | None:
        """The server's next frame; None when the connection ends.

        Raises:
            wsframes.FrameError: the server sent a frame a client must refuse.
        """
        while not self._pending:
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError):
                return None
            if not data:
                return None
            self._pending = self._frames.feed(data)
        return self._pending.pop(0)

    def abort(self) -> None:
        """Close the TCP connection now."""
        self.writer.close()

    async def closed(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
