"""The connection limit (issue #9): ``limit_concurrency=N`` (``Limits.max_connections``).

At most N connections are served at once. A connection accepted past the limit has its first
request answered ``503 Service Unavailable`` (``Connection: close``) and is closed, unless one of
the N has closed by the time that request arrives. Connections already admitted are never
refused. Off by default, as uvicorn's ``--limit-concurrency``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from squall import web
from squall.asgi import serve as asgi_serve
from squall.http import Limits

from .conftest import ServerThread, read_until_close, serve
from .loop_thread import LoopThread
from .wire_harness import read_replies

GET = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
GET_CLOSE = b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


def _app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/hello", _hello)
    return app


@pytest.fixture
def limited() -> Iterator[ServerThread]:
    with serve(_app(), access_log=None, limit_concurrency=2) as server:
        yield server


def _open(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _ask(sock: socket.socket, request: bytes = GET) -> bytes:
    """One request on an open connection; its whole (Content-Length framed) answer."""
    sock.sendall(request)
    data = b""
    while True:
        replies, complete = read_replies(data)
        if replies and complete:
            return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _status(data: bytes) -> int:
    replies, _ = read_replies(data)
    return replies[0].status


def _wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def _admitted(server: ServerThread) -> int:
    assert server.runner is not None and server.runner.server is not None
    http = server.runner.server
    return int(server.call(lambda: http.admitted))


def test_connection_past_the_limit_gets_503_and_is_closed(limited: ServerThread) -> None:
    with _open(limited.port) as a, _open(limited.port) as b:
        assert _status(_ask(a)) == 200 and _status(_ask(b)) == 200
        with _open(limited.port) as c:
            c.sendall(GET)
            data = read_until_close(c, 3)
        replies, complete = read_replies(data)
        assert complete and [r.status for r in replies] == [503]
        assert replies[0].closes
        assert replies[0].body.startswith(b"503 Service Unavailable")
        # The admitted connections go on being served, as many requests as they like.
        for _ in range(3):
            assert _status(_ask(a)) == 200 and _status(_ask(b)) == 200


def test_a_freed_place_is_given_to_the_next_connection(limited: ServerThread) -> None:
    a = _open(limited.port)
    with _open(limited.port) as b:
        assert _status(_ask(a)) == 200 and _status(_ask(b)) == 200
        with _open(limited.port) as early:  # accepted while full: it asks only later
            assert _wait_for(lambda: limited.connections == 3)
            a.close()
            assert _wait_for(lambda: _admitted(limited) == 1)
            assert _status(_ask(early)) == 200  # room by then: served after all
            assert _status(_ask(early)) == 200  # and now counted as one of the two
        assert _wait_for(lambda: _admitted(limited) == 1)
        with _open(limited.port) as late:
            assert _status(_ask(late, GET_CLOSE)) == 200


def test_requests_pipelined_on_a_refused_connection_get_one_503(limited: ServerThread) -> None:
    with _open(limited.port) as a, _open(limited.port) as b:
        _ask(a), _ask(b)
        with _open(limited.port) as c:
            c.sendall(GET * 5 + b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            data = read_until_close(c, 3)
    replies, complete = read_replies(data)
    assert complete and [r.status for r in replies] == [503]


def test_a_flood_of_refused_connections_leaves_the_count_right(limited: ServerThread) -> None:
    with _open(limited.port) as a, _open(limited.port) as b:
        _ask(a), _ask(b)
        statuses = []
        for _ in range(100):
            with _open(limited.port) as extra:
                extra.sendall(GET)
                statuses.append(_status(read_until_close(extra, 3)))
        assert statuses == [503] * 100
        assert _admitted(limited) == 2
        assert _status(_ask(a)) == 200
    assert _wait_for(lambda: _admitted(limited) == 0 and limited.connections == 0)
    with _open(limited.port) as fresh:
        assert _status(_ask(fresh, GET_CLOSE)) == 200


def test_a_websocket_holds_its_place() -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = _app()
    app.router.add_get("/ws", ws_handler)
    with serve(app, access_log=None, limit_concurrency=1) as server, _open(server.port) as ws:
        ws.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert ws.recv(1024).startswith(b"HTTP/1.1 101 ")
        with _open(server.port) as other:
            other.sendall(GET)
            assert _status(read_until_close(other, 3)) == 503


def test_unlimited_by_default() -> None:
    with serve(_app(), access_log=None) as server:
        socks = [_open(server.port) for _ in range(50)]
        try:
            assert all(_status(_ask(s)) == 200 for s in socks)
        finally:
            for sock in socks:
                sock.close()


# -- the ASGI server -------------------------------------------------------------------------------


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})


class _ASGIThread(LoopThread):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        async with asgi_serve(_asgi_app, "127.0.0.1", 0, lifespan=False, **self.kwargs) as server:
            self.port = server.port
            self.ready()
            await stop.wait()


@pytest.mark.parametrize(
    "kwargs",
    [{"limit_concurrency": 1}, {"limits": Limits(max_connections=1)}],
    ids=["limit_concurrency", "limits"],
)
def test_asgi_serve_limit(kwargs: dict[str, Any]) -> None:
    thread = _ASGIThread(**kwargs).start()
    try:
        with _open(thread.port) as first:
            assert _status(_ask(first)) == 200
            with _open(thread.port) as second:
                second.sendall(GET)
                assert _status(read_until_close(second, 3)) == 503
            assert _status(_ask(first)) == 200
    finally:
        thread.stop()


def test_asgi_limit_does_not_change_the_limits_given() -> None:
    limits = Limits()
    thread = _ASGIThread(limits=limits, limit_concurrency=5).start()
    thread.stop()
    assert limits.max_connections == 0
