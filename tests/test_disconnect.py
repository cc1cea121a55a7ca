"""Clients that vanish mid-request or mid-response leave nothing behind: no task, no socket."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from squall import web

from .conftest import ServerThread, serve

events: list[str] = []


async def slow_body(request: web.Request) -> web.Response:
    try:
        await request.read()
    except web.HTTPException as exc:
        events.append(f"read failed {exc.status}")
        raise
    events.append("read ok")
    return web.Response(text="ok")


async def endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    try:
        for _ in range(100_000):
            await resp.write(b"x" * 65536)
    except ConnectionResetError:
        events.append("write failed")
        raise
    return resp


async def sleeper(request: web.Request) -> web.Response:
    try:
        await asyncio.sleep(0.5)
    except asyncio.CancelledError:
        events.append("cancelled")
        raise
    events.append("slept")
    return web.Response(text="done")


def _app() -> web.Application:
    app = web.Application()
    app.add_routes(
        [web.post("/body", slow_body), web.get("/endless", endless), web.get("/sleep", sleeper)]
    )
    return app


@pytest.fixture
def srv() -> Iterator[ServerThread]:
    events.clear()
    with serve(_app()) as server:
        yield server


def _wait_for(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _tasks(server: ServerThread) -> int:
    loop = server.loop
    assert loop is not None
    return int(server.call(lambda: len([t for t in asyncio.all_tasks(loop) if not t.done()])))


def test_client_gone_mid_body(srv: ServerThread) -> None:
    baseline = _tasks(srv)
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        time.sleep(0.2)
    assert _wait_for(lambda: srv.connections == 0)
    assert _wait_for(lambda: events == ["read failed 400"])
    assert _wait_for(lambda: _tasks(srv) <= baseline)


def test_client_gone_mid_response(srv: ServerThread) -> None:
    baseline = _tasks(srv)
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(65536)
    assert _wait_for(lambda: events == ["write failed"])
    assert _wait_for(lambda: srv.connections == 0)
    assert _wait_for(lambda: _tasks(srv) <= baseline)


def test_client_gone_while_handler_waits(srv: ServerThread) -> None:
    """As aiohttp by default: the handler is not cancelled; it finishes, then all is released."""
    baseline = _tasks(srv)
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
    assert _wait_for(lambda: events == ["slept"])
    assert _wait_for(lambda: srv.connections == 0)
    assert _wait_for(lambda: _tasks(srv) <= baseline)


def test_handler_cancellation_on_disconnect() -> None:
    events.clear()
    with serve(_app(), handler_cancellation=True) as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.1)
        assert _wait_for(lambda: events == ["cancelled"])
        assert _wait_for(lambda: srv.connections == 0)


def test_many_abrupt_clients_leave_no_connections(srv: ServerThread) -> None:
    for i in range(200):
        sock = socket.create_connection(("127.0.0.1", srv.port))
        if i % 3 == 0:
            sock.sendall(b"GET /sle")
        elif i % 3 == 1:
            sock.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12")
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert _wait_for(lambda: srv.connections == 0, timeout=10)
