"""The hello, JSON and echo routes as a raw ASGI app, no framework.

``python asgi_raw.py PORT`` serves it on uvicorn (httptools, uvloop, one process, no access log);
the harness serves the same ``asgi_raw:app`` on granian through its CLI.
"""

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_BODY = json.dumps({"message": "Hello, World!"}).encode()


def _start(body_len: int, content_type: bytes) -> Message:
    headers = [(b"content-type", content_type), (b"content-length", str(body_len).encode())]
    return {"type": "http.response.start", "status": 200, "headers": headers}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    """Serve ``/json``, ``POST /echo`` and ``/{name}`` hello; answer lifespan events."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            kind = event["type"].rsplit(".", 1)[-1]  # startup or shutdown
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    path: str = scope["path"]
    if path == "/json":
        body, ctype = JSON_BODY, b"application/json"
    elif path == "/echo":
        chunks = []
        more = True
        while more:
            event = await receive()
            chunks.append(event.get("body", b""))
            more = event.get("more_body", False)
        body, ctype = b"".join(chunks), b"application/octet-stream"
    else:
        body, ctype = f"Hello, {path[1:]}!".encode(), b"text/plain; charset=utf-8"
    await send(_start(len(body), ctype))
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,  # aiohttp's default; with uvicorn's 5 s idle sockets get closed
    )
