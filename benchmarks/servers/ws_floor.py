"""The WebSocket floor: a bare uvloop ``asyncio.Protocol`` echo, no framework.

It answers the handshake of any request with 101, then unmasks every client frame (the C routine
of ``websockets``) and writes it back unmasked; the frames parsed from one read go out in one
``transport.write``. No validation beyond the frame header: this is about the limit for a Python
WebSocket server on one core, and measured on it the load generator shows how far it can drive.
A request that offers permessage-deflate gets it (context takeover both ways, zlib's fastest level
as aiohttp and squall): each compressed message is inflated and deflated again, the least a server
that hands its application the text must do. Usage: ``python ws_floor.py PORT``.
"""

import asyncio
import base64
import hashlib
import re
import sys
import zlib
from typing import cast

import uvloop

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = re.compile(rb"\r\nsec-websocket-key:\s*(\S+)", re.I)
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
DEFLATE = re.compile(rb"\r\nsec-websocket-extensions:[^\r]*permessage-deflate", re.I)
ACCEPTED = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
TAIL = b"\x00\x00\xff\xff"


def head(b0: int, length: int) -> bytes:
    if length < 126:
        return bytes((b0, length))
    if length < 65536:
        return bytes((b0, 126)) + length.to_bytes(2, "big")
    return bytes((b0, 127)) + length.to_bytes(8, "big")


class Floor(asyncio.Protocol):
    """One connection: the handshake, then frames unmasked and echoed."""

    __slots__ = ("deflate", "have", "inflate", "need", "open", "parts", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.parts: list[bytes] = []  # an incomplete frame (or request head), in pieces
        self.have = 0
        self.need = 0  # bytes needed before it is worth parsing again
        self.open = False
        self.deflate: zlib._Compress | None = None  # with permessage-deflate: both contexts
        self.inflate = zlib.decompressobj(-15)

    def data_received(self, data: bytes) -> None:
        if self.parts:
            self.parts.append(data)
            self.have += len(data)
            if self.have < self.need:
                return
            data = b"".join(self.parts)
            self.parts = []
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.stash(data, len(data) + 1)
                return
            key = KEY.search(data, 0, end + 2)
            if key is None:
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(key[1] + GUID).digest())
            ext = b""
            if DEFLATE.search(data, 0, end + 2):
                self.deflate = zlib.compressobj(zlib.Z_BEST_SPEED, zlib.DEFLATED, -15)
                ext = ACCEPTED
            self.transport.write(SWITCH + ext + b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.open = True
            data = data[end + 4 :]
        out = []
        pos, end = 0, len(data)
        while pos < end:
            if end - pos < 2:
                self.stash(data[pos:], 2)
                break
            b0, length = data[pos], data[pos + 1] & 0x7F
            hlen = 6 if length < 126 else 8 if length == 126 else 14
            if end - pos < hlen:
                self.stash(data[pos:], hlen)
                break
            if length >= 126:
                length = int.from_bytes(data[pos + 2 : pos + hlen - 4], "big")
            if end - pos < hlen + length:
                self.stash(data[pos:], hlen + length)
                break
            mask = data[pos + hlen - 4 : pos + hlen]
            payload = apply_mask(data[pos + hlen : pos + hlen + length], mask)
            pos += hlen + length
            if b0 & 0x40 and self.deflate is not None:  # a whole compressed message
                text = self.inflate.decompress(payload + TAIL)
                payload = self.deflate.compress(text) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
                payload = payload[:-4]
                length = len(payload)
            out.append(head(b0, length))
            out.append(payload)
            if b0 & 0x0F == 0x8:  # close: answer it and hang up
                self.transport.write(b"".join(out))
                self.transport.close()
                return
        if out:
            self.transport.write(b"".join(out))

    def stash(self, rest: bytes, need: int) -> None:
        self.parts = [rest]
        self.have = len(rest)
        self.need = need


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Floor, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
