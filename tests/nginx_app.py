"""The application tests/test_nginx.py and tests/test_deploy_files.py serve behind nginx.

Run as ``python -m squall nginx_app:app --app-dir tests``. Written against the aiohttp.web API
only. Each instance remembers the peer address of every proxied request, so that a test can
count the upstream connections nginx opened (one peer port per connection).
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from squall import web

PEERS = web.AppKey("peers", set)
"""The (host, port) of the connections requests came in on."""


def _seen(request: web.Request) -> None:
    if request.transport is not None:
        peer = request.transport.get_extra_info("peername")
        request.app[PEERS].add(tuple(peer[:2]))


async def pid(request: web.Request) -> web.Response:
    """The instance's pid; ``?t=SECONDS`` answers after that long."""
    _seen(request)
    if "t" in request.query:
        await asyncio.sleep(float(request.query["t"]))
    return web.Response(text=str(os.getpid()))


async def info(request: web.Request) -> web.Response:
    """What squall made of the request: the client and scheme, from the proxy's headers."""
    _seen(request)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.json_response(
        {
            "pid": os.getpid(),
            "remote": request.remote,
            "scheme": request.scheme,
            "secure": request.secure,
            "host": request.host,
            "url": str(request.url),
            "peer": peer[0] if peer else None,
            "x_forwarded_for": request.headers.get("X-Forwarded-For"),
        }
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """``n`` chunked pieces of ``size`` bytes, ``delay`` s apart; ``X-Accel-Buffering: no``
    unless ``buffered``."""
    n, delay = int(request.query.get("n", "5")), float(request.query.get("delay", "0.1"))
    size = int(request.query.get("size", "1000"))
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    if "buffered" not in request.query:
        response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each piece on at once
    await response.prepare(request)
    for i in range(n):
        await response.write(f"{i:<{size - 1}}\n".encode())
        await asyncio.sleep(delay)
    await response.write_eof()
    return response


async def echo(request: web.Request) -> web.Response:
    """The size and SHA-256 of the request body."""
    body = await request.read()
    return web.json_response({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Echo text and binary messages; the first message says who answered."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"pid": os.getpid(), "remote": request.remote})
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def peers(request: web.Request) -> web.Response:
    """How many distinct connections the proxied requests came in on (ask it directly)."""
    return web.json_response({"pid": os.getpid(), "connections": len(request.app[PEERS])})


async def healthz(request: web.Request) -> web.Response:
    """The path the deploy/ files probe (Docker HEALTHCHECK, Kubernetes probes)."""
    return web.Response(text="ok")


app = web.Application()
app[PEERS] = set()
app.router.add_get("/", pid)
app.router.add_get("/info", info)
app.router.add_get("/stream", stream)
app.router.add_post("/echo", echo)
app.router.add_get("/ws", websocket)
app.router.add_get("/peers", peers)
app.router.add_get("/healthz", healthz)
