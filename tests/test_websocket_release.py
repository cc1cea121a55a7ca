"""A finished WebSocket gives its socket back at once: no HTTP half-close linger once the close
handshake is done or the client has closed TCP. Bursts of short sessions, then the server's
connections and the process's open descriptors are counted right after the last one ends."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from squall import web

from .conftest import serve
from .test_asgi import ASGIThread
from .test_asgi_websocket import raw_app
from .ws_apps import make_ws_app

SESSIONS = 1000
AT_ONCE = 50
RELEASED_WITHIN = 0.5  # seconds after the last client is done (the HTTP linger is 2 s)

_HANDSHAKE = (
    b"GET %b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _frame(op: int, payload: bytes) -> bytes:
    return struct.pack("!BB", 0x80 | op, 0x80 | len(payload)) + b"\0\0\0\0" + payload  # zero mask


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, n = await reader.readexactly(2)
    return b0, await reader.readexactly(n)


async def _session(port: int, path: bytes, ending: str, i: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_HANDSHAKE % path)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        text = b"hello %d" % i
        writer.write(_frame(0x1, text))
        assert await _read_frame(reader) == (0x81, text)
        if ending == "tcp-close":  # the client just hangs up, without a close frame
            return
        if ending == "server-close":  # the server closes (the echo app's "close:<code>")
            writer.write(_frame(0x1, b"close:1000"))
            b0, _ = await _read_frame(reader)
            assert b0 == 0x88
            writer.write(_frame(0x8, struct.pack("!H", 1000)))
        else:
            writer.write(_frame(0x8, struct.pack("!H", 1000)))
            b0, payload = await _read_frame(reader)
            assert (b0, payload[:2]) == (0x88, struct.pack("!H", 1000))
        if ending != "hang-up":  # as RFC 6455 7.1.1 asks: wait for the server's TCP close
            assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _burst(port: int, path: bytes, ending: str, connections: Callable[[], int]) -> float:
    """Run the sessions; the seconds until the server held nothing more (or -1: not in 5 s)."""

    async def clients() -> None:
        sem = asyncio.Semaphore(AT_ONCE)

        async def one(i: int) -> None:
            async with sem:
                await _session(port, path, ending, i)

        await asyncio.gather(*(one(i) for i in range(SESSIONS)))

    baseline = _open_fds()
    asyncio.run(asyncio.wait_for(clients(), 120))
    done = time.monotonic()
    while time.monotonic() - done < 5:
        if connections() == 0 and _open_fds() <= baseline:
            return time.monotonic() - done
        time.sleep(0.005)
    held = connections()
    pytest.fail(f"{held} connections, {_open_fds() - baseline} descriptors still held after 5 s")


ENDINGS = ["client-close", "hang-up", "server-close", "tcp-close"]


@pytest.fixture(scope="module")
def web_server() -> Iterator[Any]:
    with serve(make_ws_app(web), shutdown_timeout=2.0) as srv:
        yield srv


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[ASGIThread]:
    srv = ASGIThread(raw_app).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("ending", ENDINGS)
def test_web_sockets_released_at_once(web_server: Any, ending: str) -> None:
    seconds = _burst(web_server.port, b"/ws", ending, lambda: web_server.connections)
    print(f"{SESSIONS} sessions ({ending}): released {seconds * 1000:.0f} ms after the last")
    assert seconds < RELEASED_WITHIN


@pytest.mark.parametrize("ending", ["client-close", "hang-up", "tcp-close"])
def test_asgi_sockets_released_at_once(asgi_server: ASGIThread, ending: str) -> None:
    server = asgi_server.server
    assert server is not None

    def connections() -> int:
        return int(asgi_server.call(lambda: len(server.http.connections)))

    seconds = _burst(asgi_server.port, b"/echo", ending, connections)
    print(f"{SESSIONS} ASGI sessions ({ending}): released {seconds * 1000:.0f} ms after the last")
    assert seconds < RELEASED_WITHIN
