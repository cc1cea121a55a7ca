"""The WebSocket echo server on squall with uvloop: every message is sent back as it came.

This is ws_aiohttp.py with ``from squall import web``. Compression is off on / (``compress=False``;
the load generator offers no extension there either) and on, as by default, on /deflate.
Usage: ``python ws_squall.py PORT``.
"""

import asyncio
import sys

import uvloop

from squall import web


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=request.path == "/deflate")
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        elif msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/", echo), web.get("/deflate", echo)])
    return app


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(), host="127.0.0.1", port=port, print=None, access_log=None)
