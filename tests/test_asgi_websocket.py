"""The ASGI ``websocket`` scope on squall: raw ASGI apps, Starlette and FastAPI endpoints, with
aiohttp's client, the websockets package and raw frames."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import websockets

from squall.asgi.types import Receive, Scope, Send

from .asgi_fastapi import make_fastapi_app
from .conftest import is_closed, raw_request
from .test_asgi import ASGIThread, wait_for
from .test_websocket_frames import expect_close, handshake, masked, read_frame

EVENTS: list[Any] = []


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return
    assert scope["type"] == "websocket"
    path = scope["path"]
    first = await receive()
    assert first == {"type": "websocket.connect"}
    if path == "/deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 418,
                "headers": [(b"content-type", b"text/plain"), (b"x-why", b"tea")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"I'm a teapot"})
        return
    if path == "/refuse":
        await send({"type": "websocket.close"})
        return
    if path == "/never":
        return  # neither accepts nor refuses
    if path == "/boom-early":
        raise RuntimeError("before accept")
    subprotocol = "b" if "b" in scope["subprotocols"] else None
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": subprotocol,
            "headers": [(b"x-accepted", b"yes")],
        }
    )
    if path == "/scope":
        shown = {k: v for k, v in scope.items() if k not in ("headers", "state", "asgi")}
        shown["client"] = list(shown["client"])
        shown["server"] = list(shown["server"])
        shown["query_string"] = shown["query_string"].decode()
        shown["raw_path"] = shown["raw_path"].decode()
        import json

        await send({"type": "websocket.send", "text": json.dumps(shown)})
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/boom":
        await receive()
        raise RuntimeError("after accept")
    if path == "/quit":
        await receive()
        return  # returns without closing: the server closes with 1000
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            EVENTS.append(("disconnect", msg["code"], msg.get("reason")))
            return
        if msg.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            EVENTS.append(("after close", (await receive())["type"]))
            try:
                await send({"type": "websocket.send", "text": "too late"})
            except OSError as exc:
                EVENTS.append(("send after close", type(exc).__name__))
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})


@pytest.fixture(scope="module")
def asgi_ws() -> Iterator[ASGIThread]:
    srv = ASGIThread(raw_app).start()
    try:
        yield srv
    finally:
        srv.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 15))


def test_echo_with_aiohttp_client(asgi_ws: ASGIThread) -> None:
    async def go() -> list[Any]:
        session = aiohttp.ClientSession()
        async with session, session.ws_connect(f"{asgi_ws.url}/echo", protocols=("a", "b")) as ws:
            out: list[Any] = [ws.protocol, ws._response.headers.get("X-Accepted")]
            await ws.send_str("hi")
            out.append(await ws.receive_str())
            await ws.send_bytes(b"\x00" * 100_000)
            out.append(len(await ws.receive_bytes()))
            return out

    EVENTS.clear()
    assert run(go()) == ["b", "yes", "hi", 100_000]
    assert wait_for(lambda: ("disconnect", 1000, "") in EVENTS)


def test_client_close_code_reaches_the_app(asgi_ws: ASGIThread) -> None:
    async def go() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{asgi_ws.port}/echo") as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(code=4321, reason="client says bye")

    EVENTS.clear()
    run(go())
    assert wait_for(lambda: ("disconnect", 4321, "client says bye") in EVENTS)


def test_app_close_code_reaches_the_client(asgi_ws: ASGIThread) -> None:
    async def go() -> Any:
        async with websockets.connect(f"ws://127.0.0.1:{asgi_ws.port}/echo") as ws:
            await ws.send("close")
            try:
                await ws.recv()
            except websockets.ConnectionClosed as exc:
                assert exc.rcvd is not None
                return exc.rcvd.code, exc.rcvd.reason
        return None

    EVENTS.clear()
    assert run(go()) == (4001, "bye")
    assert wait_for(lambda: ("send after close", "ConnectionResetError") in EVENTS)
    assert ("after close", "websocket.disconnect") in EVENTS


def test_scope(asgi_ws: ASGIThread) -> None:
    async def go() -> Any:
        url = f"ws://127.0.0.1:{asgi_ws.port}/scope?x=1%202"
        async with websockets.connect(url, subprotocols=["a", "b"]) as ws:
            import json

            return json.loads(await ws.recv())

    scope = run(go())
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "x=1%202"  # bytes in the scope, decoded by the app for JSON
    assert scope["raw_path"] == "/scope"
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["http_version"] == "1.1"
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert "method" not in scope
    assert scope["server"][1] == asgi_ws.port


def test_denial_response(asgi_ws: ASGIThread) -> None:
    answer = raw_request(asgi_ws.port, _handshake("/deny"))
    assert answer.startswith(b"HTTP/1.1 418 ")
    assert b"\r\nx-why: tea\r\n" in answer.lower()
    assert answer.endswith(b"I'm a teapot")


@pytest.mark.parametrize(
    ("path", "status"), [("/refuse", 403), ("/never", 403), ("/boom-early", 500)]
)
def test_refusals_before_accept(asgi_ws: ASGIThread, path: str, status: int) -> None:
    answer = raw_request(asgi_ws.port, _handshake(path))
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer


def test_exception_after_accept_closes_1011(asgi_ws: ASGIThread) -> None:
    with handshake(asgi_ws.port, "/boom") as sock:
        sock.sendall(masked(0x1, b"go"))
        expect_close(sock, 1011)


def test_return_without_close_closes_1000(asgi_ws: ASGIThread) -> None:
    with handshake(asgi_ws.port, "/quit") as sock:
        sock.sendall(masked(0x1, b"go"))
        b0, payload = read_frame(sock)
        assert (b0, struct.unpack("!H", payload[:2])[0]) == (0x88, 1000)
        sock.sendall(masked(0x8, payload[:2]))  # our half of the handshake
        assert is_closed(sock, 5)


def test_protocol_violation_reaches_the_app_as_disconnect(asgi_ws: ASGIThread) -> None:
    EVENTS.clear()
    with handshake(asgi_ws.port, "/echo") as sock:
        sock.sendall(masked(0x1, b"\xff"))
        expect_close(sock, 1007)
    assert wait_for(lambda: ("disconnect", 1007, "") in EVENTS)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        (b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 426),
        (b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n", 400),
        (b"Sec-WebSocket-Version: 13\r\n", 400),
    ],
)
def test_bad_handshake_never_reaches_the_app(
    asgi_ws: ASGIThread, extra: bytes, status: int
) -> None:
    answer = raw_request(
        asgi_ws.port,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%b\r\n"
        % extra,
    )
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
    if status == 426:
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer


def _handshake(path: str) -> bytes:
    return (
        b"GET %b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % path.encode()
    )


# -- frameworks ------------------------------------------------------------------------------


def _starlette_ws_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for text in websocket.iter_text():
                await websocket.send_text(text.upper())
        except WebSocketDisconnect:
            pass
        EVENTS.append("starlette ws done")

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)])


def test_starlette_websocket() -> None:
    srv = ASGIThread(_starlette_ws_app()).start()
    try:

        async def go() -> list[str]:
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                out = []
                for word in ("one", "two"):
                    await ws.send(word)
                    out.append(str(await ws.recv()))
                return out

        EVENTS.clear()
        assert run(go()) == ["ONE", "TWO"]
        assert wait_for(lambda: "starlette ws done" in EVENTS)
    finally:
        srv.stop()


def test_fastapi_websocket() -> None:
    events: list[Any] = []
    srv = ASGIThread(make_fastapi_app(events)).start()
    try:

        async def go() -> Any:
            session = aiohttp.ClientSession()
            url = f"{srv.url}/ws/lobby"
            async with session, session.ws_connect(url, protocols=("chat",)) as ws:
                await ws.send_json({"n": 1})
                answer = await ws.receive_json()
                await ws.close(code=4000)
                return ws.protocol, answer

        assert run(go()) == ("chat", {"room": "lobby", "echo": {"n": 1}})
        assert wait_for(lambda: ("fastapi ws closed", 4000) in events)
    finally:
        srv.stop()
