"""The WebSocket echo server as a raw ASGI app, no framework.

``python ws_asgi.py PORT`` serves it on uvicorn (``ws="websockets"``, httptools, uvloop, one
process, no access log, per-message-deflate and keepalive pings off); the harness serves the same
``ws_asgi:app`` on squall with ``python -m squall ws_asgi:app --interface asgi``.
"""

import sys
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Message, receive: Receive, send: Send) -> None:
    """Echo every WebSocket message; answer lifespan events; 404 to plain HTTP."""
    kind = scope["type"]
    if kind == "websocket":
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
    elif kind == "lifespan":
        while True:
            event = await receive()
            step = event["type"].rsplit(".", 1)[-1]  # startup or shutdown
            await send({"type": f"lifespan.{step}.complete"})
            if step == "shutdown":
                return
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        ws="websockets",
        loop="uvloop",
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        access_log=False,
        log_level="warning",
    )
