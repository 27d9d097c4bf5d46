"""A raw TCP server on 127.0.0.1 for the emulated stream clients: it records the
opening request byte for byte and every frame it receives (unmasked), and plays a
scripted server: answer or refuse, delay the 101, answer pings or not, close."""

import asyncio
import base64
import hashlib
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def unmask_frames(data: bytearray):
    """Complete client frames at the front of ``data`` (consumed): (opcode, payload)."""
    out = []
    while len(data) >= 2:
        b0, b1 = data[0], data[1]
        assert b1 & 0x80, "a client frame must be masked"
        n, at = b1 & 0x7F, 2
        if n == 126:
            if len(data) < 4:
                break
            n, at = struct.unpack_from("!H", data, 2)[0], 4
        elif n == 127:
            if len(data) < 10:
                break
            n, at = struct.unpack_from("!Q", data, 2)[0], 10
        if len(data) < at + 4 + n:
            break
        key = bytes(data[at:at + 4])
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at + 4:at + 4 + n]))
        assert b0 & 0x80, "the clients send final frames only"
        out.append((b0 & 0x0F, payload))
        del data[:at + 4 + n]
    return out


def server_frame(opcode: int, payload: bytes = b"") -> bytes:
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


class Connection:
    def __init__(self):
        self.request = b""
        self.frames = []  # (opcode, payload), in order
        self.closed = asyncio.Event()

    @property
    def key(self):
        for line in self.request.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "sec-websocket-key":
                return value.strip()
        return None

    def texts(self):
        return [p.decode() for op, p in self.frames if op == 1]

    def binaries(self):
        return [p for op, p in self.frames if op == 2]


class RawPeerServer:
    """``on_frame(conn, opcode, payload, writer)`` may answer; by default pings get
    pongs and a close gets its echo."""

    def __init__(self, *, status=101, delay_101=0.0, answer_pings=True, extensions=None,
                 on_frame=None):
        self.status = status
        self.delay_101 = delay_101
        self.answer_pings = answer_pings
        self.extensions = extensions
        self.on_frame = on_frame
        self.connections = []
        self.new_connection = asyncio.Event()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def wait_connections(self, n, timeout=5.0):
        async def until():
            while len(self.connections) < n:
                await asyncio.sleep(0.005)
        await asyncio.wait_for(until(), timeout)

    async def _handle(self, reader, writer):
        conn = Connection()
        self.connections.append(conn)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                head += chunk
            end = head.index(b"\r\n\r\n") + 4
            conn.request = head[:end]
            buf = bytearray(head[end:])
            if self.delay_101:
                await asyncio.sleep(self.delay_101)
            if self.status != 101:
                writer.write(f"HTTP/1.1 {self.status} Unauthorized\r\n"
                             "Content-Length: 0\r\n\r\n".encode())
                await writer.drain()
                return
            accept = base64.b64encode(hashlib.sha1((conn.key + GUID).encode()).digest())
            answer = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n")
            if self.extensions:
                answer += f"Sec-WebSocket-Extensions: {self.extensions}\r\n".encode()
            writer.write(answer + b"\r\n")
            await writer.drain()
            while True:
                for opcode, payload in unmask_frames(buf):
                    conn.frames.append((opcode, payload))
                    if self.on_frame is not None and self.on_frame(conn, opcode, payload, writer):
                        continue
                    if opcode == 9 and self.answer_pings:
                        writer.write(server_frame(10, payload))
                    elif opcode == 8:
                        if not getattr(conn, "server_closed", False):
                            writer.write(server_frame(8, payload))
                            await writer.drain()
                        return
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buf += chunk
        except (ConnectionError, OSError):
            pass
        finally:
            conn.closed.set()
            writer.close()
