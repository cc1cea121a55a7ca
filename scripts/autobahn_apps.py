"""The echo servers scripts/autobahn.py puts under Autobahn|Testsuite's fuzzing client.

``python autobahn_apps.py squall|aiohttp PORT [MAX_MSG_SIZE]`` serves the same aiohttp.web echo
on squall (``from squall import web``) or on aiohttp, with uvloop. ``asgi_echo`` is a raw ASGI
echo, served by ``python -m squall autobahn_apps:asgi_echo --interface asgi``.

The web echo keeps WebSocketResponse's defaults (permessage-deflate offered, autoping) except
``max_msg_size``, 0 (no limit) unless given: 9.1.5-9.2.6 send 8 and 16 MiB messages, over the
4 MiB default.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]


def make_app(web: Any, max_msg_size: int = 0) -> Any:
    """One route, ``/``: every text or binary message is sent back as it came."""

    async def echo(request: Any) -> Any:
        ws = web.WebSocketResponse(max_msg_size=max_msg_size)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    return app


async def asgi_echo(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Any]
) -> None:
    """Echo every WebSocket message; answer lifespan events; 404 to plain HTTP."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            event = await receive()
            if event["type"] != "websocket.receive":
                return  # websocket.disconnect
            if event.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": event["bytes"]})
            else:
                await send({"type": "websocket.send", "text": event["text"]})
    elif scope["type"] == "lifespan":
        while True:
            step = (await receive())["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{step}.complete"})
            if step == "shutdown":
                return
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    import uvloop

    if sys.argv[1] == "aiohttp":
        from aiohttp import web
    else:
        from squall import web  # type: ignore[no-redef]
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    web.run_app(make_app(web, limit), host="127.0.0.1", port=int(sys.argv[2]), print=None,
                access_log=None)  # fmt: skip
