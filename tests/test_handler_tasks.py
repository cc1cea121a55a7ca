"""Handlers run eagerly but see what aiohttp handlers see: a current task, working timeouts,
context variables that survive suspension, and cancellation delivered where it belongs."""

from __future__ import annotations

import asyncio
import contextvars
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import squall
from squall import web

from .conftest import ServerThread, serve

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


async def timeout_ok(request: web.Request) -> web.Response:
    async with asyncio.timeout(5):
        await asyncio.sleep(0.01)
    return web.Response(text="ok")


async def timeout_fires(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(5)
    except TimeoutError:
        return web.Response(text="timed out")
    return web.Response(text="not timed out")


async def timeout_sync(request: web.Request) -> web.Response:
    async with asyncio.timeout(5):
        pass
    return web.Response(text="sync ok")


async def same_task(request: web.Request) -> web.Response:
    before = asyncio.current_task()
    await asyncio.sleep(0.01)
    after = asyncio.current_task()
    return web.Response(text=str(before is not None and before is after))


async def context(request: web.Request) -> web.Response:
    await asyncio.sleep(0.01)
    return web.Response(text=request_id.get())


async def gather(request: web.Request) -> web.Response:
    results = await asyncio.gather(asyncio.sleep(0.01, "a"), asyncio.sleep(0.02, "b"))
    return web.Response(text="".join(results))


async def bare_yield(request: web.Request) -> web.Response:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return web.Response(text="yielded")


@web.middleware
async def set_request_id(request: web.Request, handler: Any) -> web.StreamResponse:
    request_id.set(request.headers.get("X-Request-Id", "none"))
    return await handler(request)


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    app = web.Application(middlewares=[set_request_id])
    app.add_routes(
        [
            web.get("/timeout/ok", timeout_ok),
            web.get("/timeout/fires", timeout_fires),
            web.get("/timeout/sync", timeout_sync),
            web.get("/same-task", same_task),
            web.get("/context", context),
            web.get("/gather", gather),
            web.get("/yield", bare_yield),
        ]
    )
    with serve(app) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/timeout/ok", "ok"),
        ("/timeout/fires", "timed out"),
        ("/timeout/sync", "sync ok"),
        ("/same-task", "True"),
        ("/gather", "ab"),
        ("/yield", "yielded"),
    ],
)
def test_asyncio_semantics_inside_handlers(srv: ServerThread, path: str, body: str) -> None:
    with httpx.Client(base_url=srv.url) as client:
        for _ in range(3):  # on one keep-alive connection: the task is reused between requests
            resp = client.get(path)
            assert resp.status_code == 200
            assert resp.text == body


def test_context_variable_survives_suspension(srv: ServerThread) -> None:
    with httpx.Client(base_url=srv.url) as client:
        for rid in ("one", "two", "three"):
            resp = client.get("/context", headers={"X-Request-Id": rid})
            assert resp.text == rid


def test_pipelined_suspending_and_eager_handlers_in_order(srv: ServerThread) -> None:
    paths = ["/timeout/sync", "/gather", "/timeout/sync", "/yield", "/same-task"] * 4
    payload = b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(payload + b"GET /yield HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 ")[1:]]
    expected = {
        "/timeout/sync": b"sync ok",
        "/gather": b"ab",
        "/yield": b"yielded",
        "/same-task": b"True",
    }
    assert [b[: len(expected[p])] for b, p in zip(bodies, paths, strict=False)] == [
        expected[p] for p in paths
    ]
    assert len(bodies) == len(paths) + 1


@pytest.mark.skipif(
    squall.COMPILED, reason="EAGER is a C constant when compiled: tested on the pure-Python run"
)
def test_without_eager_start_everything_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where asyncio lacks _enter_task, handlers start in the worker task instead."""
    import squall.http.running as running

    monkeypatch.setattr(running, "EAGER", False)
    app = web.Application(middlewares=[set_request_id])
    app.add_routes([web.get("/timeout/sync", timeout_sync), web.get("/context", context)])
    with serve(app) as server, httpx.Client(base_url=server.url) as client:
        for rid in ("a", "b"):
            assert client.get("/timeout/sync").text == "sync ok"
            assert client.get("/context", headers={"X-Request-Id": rid}).text == rid
