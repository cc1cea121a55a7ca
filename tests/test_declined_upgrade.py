"""An upgrade request whose handler answers over HTTP (declines the upgrade).

llhttp stops parsing after an upgrade request's head; what follows is the other protocol's if
the handler switches, else (as aiohttp 3.14 does) the request's body, if it declared one, and
then the next HTTP/1.1 requests. Raw sockets, both interfaces, answers read by h11.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from squall import web

from .conftest import read_until_close, serve
from .test_asgi import ASGIThread

# (not a WebSocket handshake, which the ASGI interface would refuse itself for its missing key:
# an upgrade to a protocol the application does not take, answered as an HTTP request)
UPGRADE = b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: example/1\r\n"


async def _declined(request: web.Request) -> web.Response:
    return web.Response(text="declined:" + (await request.read()).decode())


async def _other(request: web.Request) -> web.Response:
    return web.Response(text="ok " + request.path)


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = b"declined:" + body if scope["path"] == "/up" else b"ok " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text})


@pytest.fixture(scope="module", params=["web", "asgi"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    if request.param == "web":
        app = web.Application()
        app.add_routes([web.get("/up", _declined), web.get("/{name}", _other)])
        with serve(app) as server:
            yield server.port
    else:
        asgi = ASGIThread(_asgi, lifespan=False).start()
        try:
            yield asgi.port
        finally:
            asgi.stop()


def _talk(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return read_until_close(sock, 5)


def test_requests_pipelined_behind_a_declined_upgrade_are_each_answered_once(port: int) -> None:
    count = 40  # more than the pipeline queue holds (Limits.max_pipeline)
    pipeline = b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(count))
    last = b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = _talk(port, UPGRADE + b"\r\n" + pipeline + last)
    assert out.count(b"HTTP/1.1 200 OK") == count + 2
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in out.split(b"HTTP/1.1 200 OK")[1:]]
    expected = [b"declined:", *(b"ok /r%d" % i for i in range(count)), b"ok /last"]
    assert bodies == expected  # each once, in order


def test_the_body_of_a_declined_upgrade_is_read(port: int) -> None:
    body = b"FooBarBaz\r\n\r\n"
    request = UPGRADE + b"Content-Length: %d\r\n\r\n" % len(body) + body
    after = b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = _talk(port, request + after)
    assert b"declined:FooBarBaz\r\n\r\n" in out
    assert out.endswith(b"ok /after") and out.count(b"HTTP/1.1 200 OK") == 2


def test_the_body_of_a_declined_upgrade_sent_in_pieces(port: int) -> None:
    body = b"x" * 5000
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(UPGRADE + b"Content-Length: %d\r\n\r\n" % len(body) + body[:100])
        sock.sendall(body[100:3000])
        sock.sendall(body[3000:] + b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = read_until_close(sock, 5)
    assert b"declined:" + body in out and out.endswith(b"ok /after")


def test_junk_behind_a_declined_upgrade_is_a_bad_request(port: int) -> None:
    out = _talk(port, UPGRADE + b"\r\n" + b"\x00" * 64)
    assert out.startswith(b"HTTP/1.1 200 OK") and b"declined:" in out
    assert b"HTTP/1.1 400 Bad Request" in out  # answered, then closed
