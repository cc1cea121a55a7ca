"""The seed app (``/{name}`` hello) plus the benchmark routes, on squall with uvloop.

This is aiohttp_seed.py with ``from squall import web``. Usage: ``python squall_seed.py PORT``;
``python squall_seed.py PORT --http2`` serves HTTP/2 too (``run_app(..., http2=True)``);
``--metrics`` turns Prometheus metrics on (``metrics_port=0``: a listener on any free port).
"""

import asyncio
import sys

import uvloop

from squall import web


async def hello(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "Anonymous")
    return web.Response(text=f"Hello, {name}!")


async def json(request: web.Request) -> web.Response:
    return web.json_response({"message": "Hello, World!"})


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type="application/octet-stream")


def make_app() -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.add_routes([web.get("/json", json), web.post("/echo", echo), web.get("/{name}", hello)])
    return app


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    # Only passed when asked, so that the HTTP/1.1 row keeps squall's default.
    options: dict[str, object] = {"http2": True} if "--http2" in sys.argv[2:] else {}
    if "--metrics" in sys.argv[2:]:
        options["metrics_port"] = 0
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(), host="127.0.0.1", port=port, print=None, access_log=None, **options)
