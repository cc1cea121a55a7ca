"""A finished WebSocket gives its socket back at once: no HTTP half-close linger once the close
handshake is done or the client has closed TCP. Bursts of 1,000 short sessions (50 at a time),
ended each way a session can end, then the server's open descriptors are counted right after the
last one: back to where they were within 0.1 s. In process (asyncio, with the server's own count
of connections) and as ``python -m squall`` in a subprocess (uvloop, /proc/PID/fd)."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from squall import web

from .conftest import serve
from .server_process import SquallProcess
from .test_asgi import ASGIThread
from .ws_apps import asgi_echo, make_ws_app

SESSIONS = 1000
AT_ONCE = 50
RELEASED_WITHIN = 0.1  # seconds after the last client is done (the HTTP linger is 2 s)
TESTS = Path(__file__).resolve().parent

_HANDSHAKE = (
    b"GET %b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _frame(op: int, payload: bytes) -> bytes:
    return struct.pack("!BB", 0x80 | op, 0x80 | len(payload)) + b"\0\0\0\0" + payload  # zero mask


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, n = await reader.readexactly(2)
    return b0, await reader.readexactly(n)


# How a session ends: the client sends a close frame, the server answers and closes TCP; the same
# but the client drops TCP once it has the answer; the server closes first (the app's
# "close:1000", or its handler returns after one message) and the client answers; the client
# drops TCP without any close frame.
ENDINGS = ["client-close", "hang-up", "server-close", "server-return", "tcp-close"]


async def _session(port: int, ending: str, i: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_HANDSHAKE % (b"/once" if ending == "server-return" else b"/ws"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        text = b"hello %d" % i
        writer.write(_frame(0x1, text))
        assert await _read_frame(reader) == (0x81, text)
        if ending == "tcp-close":  # the client just hangs up, without a close frame
            return
        if ending.startswith("server-"):
            if ending == "server-close":
                writer.write(_frame(0x1, b"close:1000"))
            b0, payload = await _read_frame(reader)
            assert (b0, payload[:2]) == (0x88, struct.pack("!H", 1000))
            writer.write(_frame(0x8, struct.pack("!H", 1000)))
        else:
            writer.write(_frame(0x8, struct.pack("!H", 1000)))
            b0, payload = await _read_frame(reader)
            assert (b0, payload[:2]) == (0x88, struct.pack("!H", 1000))
        if ending != "hang-up":  # as RFC 6455 7.1.1 asks: wait for the server's TCP close
            assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


def _fds(pid: int | str) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _burst(port: int, ending: str, released: Callable[[], bool]) -> float:
    """Run the sessions; the seconds until ``released()`` (or a failure after 5 s)."""

    async def clients() -> None:
        sem = asyncio.Semaphore(AT_ONCE)

        async def one(i: int) -> None:
            async with sem:
                await _session(port, ending, i)

        await asyncio.gather(*(one(i) for i in range(SESSIONS)))

    asyncio.run(asyncio.wait_for(clients(), 120))
    done = time.monotonic()
    while time.monotonic() - done < 5:
        if released():
            return time.monotonic() - done
        time.sleep(0.002)
    return -1.0


@pytest.fixture(scope="module")
def web_server() -> Iterator[Any]:
    with serve(make_ws_app(web), shutdown_timeout=2.0) as srv:
        yield srv


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[ASGIThread]:
    srv = ASGIThread(asgi_echo).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("ending", ENDINGS)
def test_web_sockets_released_at_once(web_server: Any, ending: str) -> None:
    baseline = _fds("self")
    seconds = _burst(
        web_server.port,
        ending,
        lambda: web_server.connections == 0 and _fds("self") <= baseline,
    )
    print(f"{SESSIONS} sessions ({ending}): released {seconds * 1000:.0f} ms after the last")
    assert 0 <= seconds < RELEASED_WITHIN, (web_server.connections, _fds("self") - baseline)


@pytest.mark.parametrize("ending", ENDINGS)
def test_asgi_sockets_released_at_once(asgi_server: ASGIThread, ending: str) -> None:
    server = asgi_server.server
    assert server is not None

    def connections() -> int:
        return int(asgi_server.call(lambda: len(server.http.connections)))

    baseline = _fds("self")
    seconds = _burst(
        asgi_server.port, ending, lambda: connections() == 0 and _fds("self") <= baseline
    )
    print(f"{SESSIONS} ASGI sessions ({ending}): released {seconds * 1000:.0f} ms after the last")
    assert 0 <= seconds < RELEASED_WITHIN, (connections(), _fds("self") - baseline)


@pytest.fixture(scope="module", params=["aiohttp", "asgi"])
def process(request: pytest.FixtureRequest) -> Iterator[SquallProcess]:
    """``python -m squall`` (uvloop, the CLI's defaults) serving the echo app."""
    app = (
        ["ws_apps:squall_app", "--factory"] if request.param == "aiohttp" else ["ws_apps:asgi_echo"]
    )
    args = [*app, "--interface", request.param, "--port", "0", "--no-access-log"]
    with SquallProcess(TESTS, *args) as server:
        server.wait_ready()
        yield server


@pytest.mark.parametrize("ending", ENDINGS)
def test_process_sockets_released_at_once(process: SquallProcess, ending: str) -> None:
    asyncio.run(_session(process.port, "client-close", 0))  # whatever the loop opens lazily
    baseline = _fds(process.pid)
    seconds = _burst(process.port, ending, lambda: _fds(process.pid) <= baseline)
    print(f"{SESSIONS} sessions ({process.interface}, {ending}): released {seconds * 1000:.0f} ms")
    assert 0 <= seconds < RELEASED_WITHIN, _fds(process.pid) - baseline
