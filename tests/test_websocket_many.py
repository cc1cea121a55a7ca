"""5,000 WebSocket connections held open at once on one squall server (loopback, bounded time)."""

from __future__ import annotations

import asyncio
import resource
import struct
import time

import pytest

from squall import web

from .conftest import serve
from .ws_apps import make_ws_app

COUNT = 5000

_HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _frame(payload: bytes) -> bytes:
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload  # zero mask


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"RLIMIT_NOFILE hard limit {hard} < {needed}: raise it to run this test")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_five_thousand_open_websockets() -> None:
    _raise_fd_limit(2 * COUNT + 1000)  # both ends live in this process

    async def client(port: int) -> tuple[int, int, float]:
        sem = asyncio.Semaphore(500)  # connect in waves; the listen backlog is finite

        async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            async with sem:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_HANDSHAKE)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101 "), head
                return reader, writer

        start = time.monotonic()
        conns = await asyncio.gather(*(open_one() for _ in range(COUNT)))
        opened = time.monotonic() - start
        # Every one of them is live: a message on each comes back on each.
        for i, (_, writer) in enumerate(conns):
            writer.write(_frame(b"%d" % i))
        echoed = 0
        for i, (reader, _) in enumerate(conns):
            frame = await reader.readexactly(2 + len(b"%d" % i))
            echoed += frame[2:] == b"%d" % i
        for _, writer in conns:
            writer.close()
        return len(conns), echoed, opened

    with serve(make_ws_app(web), shutdown_timeout=2.0) as srv:
        opened, echoed, seconds = asyncio.run(asyncio.wait_for(client(srv.port), 120))
        assert (opened, echoed) == (COUNT, COUNT)
        deadline = time.monotonic() + 20
        while srv.connections and time.monotonic() < deadline:
            time.sleep(0.1)
        assert srv.connections == 0  # every connection cleaned up after the clients left
    print(f"{COUNT} WebSockets opened in {seconds:.1f}s")
