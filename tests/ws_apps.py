"""WebSocket test apps written against the aiohttp.web API only: ``make_ws_app(web)`` builds the
same app on aiohttp and on squall, so tests can run one scenario against both."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

STATE = "state"  # the app key of the shared state dict (a plain str key works on both)


def make_ws_app(web: Any) -> Any:
    text, binary = web.WSMsgType.TEXT, web.WSMsgType.BINARY
    state: dict[str, Any] = {"closed": [], "progress": 0}

    async def echo(request: Any, **options: Any) -> Any:
        """Echoes; ``close:<code>`` makes the server close with that code."""
        ws = web.WebSocketResponse(**options)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == text:
                if msg.data.startswith("close:"):
                    await ws.close(code=int(msg.data[6:]), message=b"server bye")
                elif msg.data == "type":  # the message's type is the enum's member itself
                    await ws.send_str(f"{msg.type!r} {msg.type.name} {msg!r}")
                elif msg.data == "info":
                    await ws.send_json(
                        {"protocol": ws.ws_protocol, "compress": ws.compress, "closed": ws.closed}
                    )
                else:
                    await ws.send_str(msg.data)
            elif msg.type == binary:
                if msg.data == b"type":
                    await ws.send_str(f"{msg.type!r} {msg.type.name} {msg!r}")
                else:
                    await ws.send_bytes(msg.data)
            elif msg.type == web.WSMsgType.PING:
                await ws.send_str(f"ping:{msg.data.decode()}")
            elif msg.type == web.WSMsgType.ERROR:
                break
        state["closed"].append((ws.close_code, type(ws.exception()).__name__))
        return ws

    async def plain(request: Any) -> Any:
        return await echo(request)

    async def once(request: Any) -> Any:
        """Echoes one message, then returns: the server closes first (write_eof)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        if msg.type == text:
            await ws.send_str(msg.data)
        return ws

    async def small(request: Any) -> Any:
        return await echo(request, max_msg_size=1024)

    async def chat(request: Any) -> Any:
        return await echo(request, protocols=("chat", "superchat"))

    async def nodeflate(request: Any) -> Any:
        return await echo(request, compress=False)

    async def noautoping(request: Any) -> Any:
        return await echo(request, autoping=False)

    async def heartbeat(request: Any) -> Any:
        return await echo(request, heartbeat=0.6)

    async def timeout(request: Any) -> Any:
        ws = web.WebSocketResponse(receive_timeout=0.3)
        await ws.prepare(request)
        try:
            await ws.receive()
        except TimeoutError:
            await ws.send_str("timed out")
        await ws.close()
        return ws

    async def maybe(request: Any) -> Any:
        """Answers over HTTP when the request is not a handshake we accept."""
        ws = web.WebSocketResponse(protocols=("v1",))
        ready = ws.can_prepare(request)
        if not ready:
            return web.Response(status=418, text="not a websocket")
        await ws.prepare(request)
        await ws.send_str(f"ready:{ready.protocol}")
        await ws.close()
        return ws

    async def greet(request: Any) -> Any:
        """Sends first, without waiting for the client; then closes."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hello")
        await ws.send_bytes(b"\x00\x01")
        await ws.send_json({"n": 1})
        await ws.close(code=4000, message="done")
        return ws

    async def flood(request: Any) -> Any:
        """Sends 64 KiB messages as fast as the client takes them (a slow reader test)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        chunk = b"x" * 65536
        try:
            for i in range(2000):
                await ws.send_bytes(chunk)
                state["progress"] = i + 1
        except ConnectionResetError:
            pass
        return ws

    async def sleepy(request: Any) -> Any:
        """Never reads: the client's messages pile up (a backpressure test)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await asyncio.sleep(30)
        return ws

    async def json_echo(request: Any) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        data = await ws.receive_json()
        await ws.send_str(json.dumps({"got": data}))
        try:
            await ws.receive_bytes()
        except TypeError as exc:  # WSMessageTypeError is a TypeError in both
            await ws.send_str(f"type error: {type(exc).__name__}")
        await ws.close()
        return ws

    class Shouting(web.WebSocketResponse):  # type: ignore[misc]
        """A user's subclass: its receive() and send_str() are what async for and echo use."""

        async def receive(self, timeout: float | None = None) -> Any:
            msg = await super().receive(timeout)
            if msg.type == text:
                return msg._replace(data=msg.data.upper())
            return msg

        async def send_str(self, data: str, compress: int | None = None) -> None:
            await super().send_str(f"<{data}>", compress)

    async def subclassed(request: Any) -> Any:
        ws = Shouting()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == text:
                await ws.send_str(msg.data)
            elif msg.type == binary:
                await ws.send_bytes(msg.data)
        return ws

    async def forbidden(request: Any) -> Any:
        raise web.HTTPForbidden(text="no")

    async def state_view(request: Any) -> Any:
        return web.json_response({"closed": state["closed"], "progress": state["progress"]})

    app = web.Application()
    with warnings.catch_warnings():  # a str key, so one name serves both frameworks
        warnings.simplefilter("ignore")
        app[STATE] = state
    app.router.add_get("/ws", plain)
    app.router.add_get("/once", once)
    app.router.add_get("/small", small)
    app.router.add_get("/chat", chat)
    app.router.add_get("/nodeflate", nodeflate)
    app.router.add_get("/noautoping", noautoping)
    app.router.add_get("/heartbeat", heartbeat)
    app.router.add_get("/timeout", timeout)
    app.router.add_get("/maybe", maybe)
    app.router.add_get("/greet", greet)
    app.router.add_get("/flood", flood)
    app.router.add_get("/sleepy", sleepy)
    app.router.add_get("/json", json_echo)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/subclassed", subclassed)
    app.router.add_get("/state", state_view)
    return app


def squall_app() -> Any:
    """The app on squall (for ``python -m squall ws_apps:squall_app --factory``)."""
    from squall import web

    return make_ws_app(web)


async def asgi_echo(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI counterpart of make_ws_app's echo: ``close:<code>`` makes the server close
    with that code, and on ``/once`` the app returns after one message (the server closes)."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            kind = event["type"].rpartition(".")[2]
            await send({"type": f"{event['type']}.complete"})
            if kind == "shutdown":
                return
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        text = msg.get("text")
        if text is not None and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text[6:]), "reason": "bye"})
            await receive()  # websocket.disconnect, once the client answered
            return
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})
        if scope["path"] == "/once":
            return  # without a close: the server closes with 1000
