"""A WebSocket handler woken without a loop hop: a message that arrives while the handler waits in
its connection's task runs the handler on right in data_received (the channel parks the receive
on a pending future that the task keeps waiting on). What a handler can observe must not change:
the same task and context before and after each receive, other awaits between receives, a
cancellation or a timeout while it waits, an exception or a return after a message, and a
receive in a task of its own. Each scenario runs on aiohttp and on squall with the same app and
the same client, and on squall's ASGI interface where it has one."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from squall.asgi.types import Receive, Scope, Send

from .compat.harness import AppServer, serve_both
from .test_asgi import ASGIThread

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def make_app(web: Any) -> Any:
    async def same_task(request: Any) -> Any:
        """Replies, per message, whether the task and the context are those of the start."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        task = asyncio.current_task()
        VAR.set("set before the first receive")
        async for msg in ws:
            same = asyncio.current_task() is task and task is not None
            await ws.send_str(f"{msg.data} {same} {VAR.get()}")
            VAR.set(f"set after {msg.data}")
        return ws

    async def awaits_between(request: Any) -> Any:
        """Sleeps (a timer, then a bare yield) between a message and its two answers."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await asyncio.sleep(0.01)
            await ws.send_str(f"{msg.data} 1")
            await asyncio.sleep(0)
            await ws.send_str(f"{msg.data} 2")
        return ws

    async def raises(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.data == "boom":
                raise RuntimeError("a handler that fails after a message")
            await ws.send_str(msg.data)
        return ws

    async def returns(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.data == "bye":
                return ws  # without close(): the server closes it
            await ws.send_str(msg.data)
        return ws

    async def cancels_itself(request: Any) -> Any:
        """A cancel() of its own task, made after a message: the next await gets it."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            task = asyncio.current_task()
            assert task is not None
            if msg.data == "cancel":
                task.cancel()
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    task.uncancel()
                    await ws.send_str("cancelled")
                    continue
            await ws.send_str(msg.data)
        return ws

    async def times_out(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        while True:
            try:
                msg = await ws.receive(timeout=0.2)
            except TimeoutError:
                await ws.send_str("timeout")
                continue
            if msg.type != web.WSMsgType.TEXT:
                break
            await ws.send_str(msg.data)
        return ws

    async def reader_task(request: Any) -> Any:
        """Receives in a task of its own, which the handler awaits."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def read() -> None:
            async for msg in ws:
                await ws.send_str(msg.data)

        await asyncio.create_task(read())
        return ws

    app = web.Application()
    app.router.add_get("/same-task", same_task)
    app.router.add_get("/awaits-between", awaits_between)
    app.router.add_get("/raises", raises)
    app.router.add_get("/returns", returns)
    app.router.add_get("/cancels-itself", cancels_itself)
    app.router.add_get("/times-out", times_out)
    app.router.add_get("/reader-task", reader_task)
    return app


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, AppServer]]:
    with serve_both(make_app) as (ref, got):
        yield {"aiohttp": ref, "squall": got}


BOTH = pytest.mark.parametrize("impl", ["aiohttp", "squall"])


def run(coro: Any, timeout: float = 15.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def talk(port: int, path: str, sends: list[str], answers: int) -> list[Any]:
    """Send each text (waiting for ``answers`` replies after each), then read to the end."""
    out: list[Any] = []
    url = f"http://127.0.0.1:{port}{path}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        for text in sends:
            await ws.send_str(text)
            for _ in range(answers):
                msg = await ws.receive()
                out.append(msg.data if msg.type == aiohttp.WSMsgType.TEXT else msg.type)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return out
        await ws.close()
    return out


@BOTH
def test_same_task_and_context_after_each_receive(servers: dict[str, AppServer], impl: str) -> None:
    got = run(talk(servers[impl].port, "/same-task", ["a", "b", "c"], 1))
    assert got == [
        "a True set before the first receive",
        "b True set after a",
        "c True set after b",
    ]


@BOTH
@pytest.mark.parametrize("compress", [0, 15])
def test_same_task_and_context_for_messages_the_frame_reader_parses(
    servers: dict[str, AppServer], impl: str, compress: int
) -> None:
    """Messages past the small-frame fast path (long, or deflated) are handed over from the
    frame reader, and run the handler on in place the same way."""
    texts = [c * 300 for c in "abc"]

    async def go() -> list[Any]:
        out: list[Any] = []
        url = f"http://127.0.0.1:{servers[impl].port}/same-task"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, compress=compress) as ws,
        ):
            await ws.send_str(texts[0])
            out.append((await ws.receive()).data)
            await ws.send_str(texts[1])  # back to back: often one read, two frames
            await ws.send_str(texts[2])
            out.append((await ws.receive()).data)
            out.append((await ws.receive()).data)
            await ws.close()
        return out

    assert run(go()) == [
        f"{texts[0]} True set before the first receive",
        f"{texts[1]} True set after {texts[0]}",
        f"{texts[2]} True set after {texts[1]}",
    ]


@BOTH
def test_other_awaits_between_receives(servers: dict[str, AppServer], impl: str) -> None:
    got = run(talk(servers[impl].port, "/awaits-between", ["a", "b", "c"], 2))
    assert got == ["a 1", "a 2", "b 1", "b 2", "c 1", "c 2"]


@BOTH
def test_handler_raises_after_a_message(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> tuple[list[Any], Any]:
        out = await talk(servers[impl].port, "/raises", ["a", "boom"], 1)
        again = await talk(servers[impl].port, "/raises", ["still served"], 1)
        return out, again

    out, again = run(go())
    assert out[0] == "a"
    assert out[1] in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert again == ["still served"]


@BOTH
def test_handler_returns_after_a_message(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> list[Any]:
        out: list[Any] = []
        url = f"http://127.0.0.1:{servers[impl].port}/returns"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str("a")
            out.append((await ws.receive()).data)
            await ws.send_str("bye")
            msg = await ws.receive()
            out.append((msg.type, msg.data))
        return out

    assert run(go()) == ["a", (aiohttp.WSMsgType.CLOSE, 1000)]


@BOTH
def test_cancel_of_its_own_task_after_a_message(servers: dict[str, AppServer], impl: str) -> None:
    got = run(talk(servers[impl].port, "/cancels-itself", ["a", "cancel", "b"], 1))
    assert got == ["a", "cancelled", "b"]


@BOTH
def test_receive_timeout_between_messages(servers: dict[str, AppServer], impl: str) -> None:
    async def go() -> list[Any]:
        out: list[Any] = []
        url = f"http://127.0.0.1:{servers[impl].port}/times-out"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            for text in ("a", "b"):
                await ws.send_str(text)
                out.append((await ws.receive()).data)
                out.append((await ws.receive()).data)  # nothing sent for 0.2 s
            await ws.send_str("c")
            out.append((await ws.receive()).data)
        return out

    assert run(go()) == ["a", "timeout", "b", "timeout", "c"]


@BOTH
def test_receive_in_a_task_of_its_own(servers: dict[str, AppServer], impl: str) -> None:
    assert run(talk(servers[impl].port, "/reader-task", ["a", "b", "c"], 1)) == ["a", "b", "c"]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    task = asyncio.current_task()
    VAR.set("set before the first receive")
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        text = event["text"]
        if text == "boom":
            raise RuntimeError("an ASGI app that fails after a message")
        if text == "bye":
            return
        same = asyncio.current_task() is task and task is not None
        await asyncio.sleep(0)
        await send({"type": "websocket.send", "text": f"{text} {same} {VAR.get()}"})
        VAR.set(f"set after {text}")


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[ASGIThread]:
    srv = ASGIThread(asgi_app).start()
    yield srv
    srv.stop()


def test_asgi_same_task_and_context(asgi_server: ASGIThread) -> None:
    got = run(talk(asgi_server.port, "/", ["a", "b"], 1))
    assert got == ["a True set before the first receive", "b True set after a"]


@pytest.mark.parametrize(("last", "code"), [("bye", 1000), ("boom", 1011)])
def test_asgi_app_ends_after_a_message(asgi_server: ASGIThread, last: str, code: int) -> None:
    async def go() -> list[Any]:
        out: list[Any] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(asgi_server.url) as ws:
            await ws.send_str("a")
            out.append((await ws.receive()).data)
            await ws.send_str(last)
            msg = await ws.receive()
            out.append((msg.type, msg.data))
        return out

    got = run(go())
    assert got == ["a True set before the first receive", (aiohttp.WSMsgType.CLOSE, code)]


def test_asgi_messages_the_frame_reader_parses(asgi_server: ASGIThread) -> None:
    """Long messages, two in one read: handed over from the frame reader, in place."""
    texts = [c * 300 for c in "ab"]

    async def go() -> list[Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(asgi_server.url) as ws:
            await ws.send_str(texts[0])
            await ws.send_str(texts[1])
            return [(await ws.receive()).data, (await ws.receive()).data]

    assert run(go()) == [
        f"{texts[0]} True set before the first receive",
        f"{texts[1]} True set after {texts[0]}",
    ]
