"""Server shutdown with WebSockets open: a close 1001 lets handlers finish instead of waiting
out shutdown_timeout and being cancelled; a close the app sends in on_shutdown goes first."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import aiohttp

from squall import web

from .conftest import ServerThread


def make_app(close_in_on_shutdown: bool) -> tuple[web.Application, list[Any]]:
    ended: list[Any] = []
    sockets: set[web.WebSocketResponse] = set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for msg in ws:
                await ws.send_str(msg.data)
            ended.append(("loop ended", ws.close_code))
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise
        return ws

    async def on_shutdown(app: web.Application) -> None:
        for ws in set(sockets):
            await ws.close(code=4321, message=b"app says bye")

    app = web.Application()
    app.router.add_get("/ws", handler)
    if close_in_on_shutdown:
        app.on_shutdown.append(on_shutdown)
    return app, ended


def _run(close_in_on_shutdown: bool) -> tuple[Any, list[Any], float]:
    app, ended = make_app(close_in_on_shutdown)
    server = ServerThread(app, shutdown_timeout=10.0).start()
    received: list[Any] = []
    connected = threading.Event()

    async def client() -> None:
        session = aiohttp.ClientSession()
        async with session, session.ws_connect(f"{server.url}/ws") as ws:
            await ws.send_str("hi")
            received.append((await ws.receive()).data)
            connected.set()
            msg = await ws.receive()  # autoclose answers the server's close (with 1000)
            received.append((msg.type, msg.data, msg.extra))

    thread = threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(client(), 15)))
    thread.start()
    assert connected.wait(10)
    start = time.monotonic()
    server.stop()
    took = time.monotonic() - start
    thread.join(15)
    return received, ended, took


def test_shutdown_says_going_away_and_handlers_finish() -> None:
    received, ended, took = _run(close_in_on_shutdown=False)
    assert received == ["hi", (aiohttp.WSMsgType.CLOSE, 1001, "Server shutdown")]
    assert ended == [("loop ended", 1000)]  # the handler ended normally (the client's code)
    assert took < 3, took  # not shutdown_timeout (10 s)


def test_a_close_from_on_shutdown_comes_first() -> None:
    received, ended, took = _run(close_in_on_shutdown=True)
    assert received == ["hi", (aiohttp.WSMsgType.CLOSE, 4321, "app says bye")]
    assert ended == [("loop ended", 1000)]  # not cancelled
    assert took < 3, took
