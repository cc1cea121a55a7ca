"""What a route's handler may return: aiohttp awaits it, whatever kind of awaitable it is.

squall's request handler awaits a coroutine directly (``http/eager.py``, ``Awaiting``) and any
other awaitable through its ``__await__``; these check each kind, finished at once or later,
its exceptions, and a cancellation while it waits.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from squall import web

from .conftest import serve

TIMEOUT = 5.0
# Plain functions as handlers are deprecated (as in aiohttp), and used here on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning")


class _Later:
    """An awaitable that is not a coroutine: a generator-based ``__await__``."""

    def __init__(self, text: str, wait: bool) -> None:
        self.text = text
        self.wait = wait

    def __await__(self) -> Generator[Any, None, web.Response]:
        if self.wait:
            yield from asyncio.sleep(0.01).__await__()
        return web.Response(text=self.text)


def make_app(events: list[str]) -> web.Application:
    async def coroutine(request: web.Request) -> web.Response:
        return web.Response(text="coroutine")

    async def suspending(request: web.Request) -> web.Response:
        await asyncio.sleep(0.01)
        return web.Response(text="suspending")

    def future(request: web.Request) -> asyncio.Future[web.Response]:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, fut.set_result, web.Response(text="future"))
        return fut

    def awaitable(request: web.Request) -> _Later:
        return _Later("awaitable", wait=False)

    def awaitable_later(request: web.Request) -> _Later:
        return _Later("awaitable later", wait=True)

    def not_awaitable(request: web.Request) -> Any:
        return 42

    def raises_at_call(request: web.Request) -> Any:
        raise RuntimeError("before any coroutine")

    async def raises_http(request: web.Request) -> web.Response:
        raise web.HTTPConflict()

    async def slow(request: web.Request) -> web.Response:
        events.append("slow started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("slow cancelled")
            raise
        return web.Response(text="never")

    class Viewed(web.View):
        async def get(self) -> web.Response:
            return web.Response(text="view")

    app = web.Application()
    for name, handler in (
        ("coroutine", coroutine),
        ("suspending", suspending),
        ("future", future),
        ("awaitable", awaitable),
        ("awaitable_later", awaitable_later),
        ("not_awaitable", not_awaitable),
        ("raises_at_call", raises_at_call),
        ("raises_http", raises_http),
        ("slow", slow),
    ):
        app.router.add_get(f"/{name}", handler)
    app.router.add_view("/view", Viewed)
    return app


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/coroutine", 200, "coroutine"),
        ("/suspending", 200, "suspending"),
        ("/future", 200, "future"),
        ("/awaitable", 200, "awaitable"),
        ("/awaitable_later", 200, "awaitable later"),
        ("/view", 200, "view"),
        ("/not_awaitable", 500, None),
        ("/raises_at_call", 500, None),
        ("/raises_http", 409, None),
    ],
)
def test_each_kind_of_handler_result_is_awaited(path: str, status: int, text: str | None) -> None:
    with serve(make_app([])) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        for _ in range(3):  # the first request resolves the route, the next ones remember it
            resp = c.get(path)
            assert resp.status_code == status
            if text is not None:
                assert resp.text == text


def test_kinds_interleaved_on_one_connection() -> None:
    paths = ["/coroutine", "/future", "/not_awaitable", "/awaitable_later", "/suspending"]
    with serve(make_app([])) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        for _ in range(3):
            assert [c.get(p).status_code for p in paths] == [200, 200, 500, 200, 200]


def test_a_waiting_handler_is_cancelled_when_its_client_goes() -> None:
    events: list[str] = []
    with serve(make_app(events), handler_cancellation=True) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + TIMEOUT
            while "slow started" not in events and time.monotonic() < deadline:
                time.sleep(0.01)
        deadline = time.monotonic() + TIMEOUT
        while "slow cancelled" not in events and time.monotonic() < deadline:
            time.sleep(0.01)
        assert events == ["slow started", "slow cancelled"]
        # ... and the server goes on answering
        assert httpx.get(server.url + "/coroutine", timeout=TIMEOUT).text == "coroutine"
