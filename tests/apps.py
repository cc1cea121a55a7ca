"""The application the shared test server runs: the seed route plus routes for each feature."""

from __future__ import annotations

import asyncio
from typing import Any

from squall import web


async def hello(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "Anonymous")
    return web.Response(text=f"Hello, {name}!")


async def index(request: web.Request) -> web.Response:
    return web.Response(text="index")


async def json_handler(request: web.Request) -> web.Response:
    return web.json_response({"message": "Hello, World!"})


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=body, content_type=request.content_type)


async def echo_stream(request: web.Request) -> web.StreamResponse:
    """Echo the body back as it arrives, chunked."""
    resp = web.StreamResponse()
    await resp.prepare(request)
    async for chunk in request.content.iter_any():
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def count_body(request: web.Request) -> web.Response:
    """Read the body in pieces without keeping it; answer its size."""
    total = 0
    while chunk := await request.content.read(65536):
        total += len(chunk)
    return web.Response(text=str(total))


async def ignore_body(request: web.Request) -> web.Response:
    return web.Response(text="ignored")


async def stream(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "3"))
    resp = web.StreamResponse()
    resp.content_type = "text/plain"
    await resp.prepare(request)
    for i in range(n):
        await resp.write(f"part {i}\n".encode())
    await resp.write_eof()
    return resp


async def big(request: web.Request) -> web.StreamResponse:
    """Stream ``mb`` MiB in 64 KiB writes (tests write-side flow control)."""
    mb = int(request.query.get("mb", "8"))
    resp = web.StreamResponse()
    resp.content_length = mb * 1024 * 1024
    await resp.prepare(request)
    block = b"x" * 65536
    for _ in range(mb * 16):
        await resp.write(block)
    await resp.write_eof()
    return resp


async def sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0.2")))
    return web.Response(text=f"slept {request.query.get('tag', '')}")


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


async def boom_later(request: web.Request) -> web.Response:
    await asyncio.sleep(0.01)
    raise RuntimeError("boom later")


async def teapot(request: web.Request) -> web.Response:
    raise web.HTTPForbidden(text="no tea")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/hello/redirected")


async def returned_exception(request: web.Request) -> web.Response:
    return web.HTTPNotFound(text="returned")


async def info(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": dict(request.query),
            "query_string": request.query_string,
            "version": list(request.version),
            "host": request.host,
            "scheme": request.scheme,
            "remote": request.remote,
            "url": str(request.url),
            "rel_url": str(request.rel_url),
            "keep_alive": request.keep_alive,
            "content_type": request.content_type,
            "charset": request.charset,
            "content_length": request.content_length,
            "can_read_body": request.can_read_body,
            "body_exists": request.body_exists,
            "cookies": dict(request.cookies),
            "headers": {k: v for k, v in request.headers.items()},
            "match_info": dict(request.match_info),
        }
    )


async def json_in(request: web.Request) -> web.Response:
    data = await request.json()
    return web.json_response({"got": data})


async def form(request: web.Request) -> web.Response:
    data = await request.post()
    return web.json_response(dict(data))


async def cookies(request: web.Request) -> web.Response:
    resp = web.Response(text="cookies")
    resp.set_cookie("a", "1", httponly=True, max_age=60)
    resp.set_cookie("b", "two", path="/x", samesite="Lax")
    resp.del_cookie("gone")
    return resp


async def headers(request: web.Request) -> web.Response:
    resp = web.Response(text="h", headers={"X-One": "1"})
    resp.headers["X-Two"] = "2"
    resp.headers.add("X-Multi", "a")
    resp.headers.add("X-Multi", "b")
    return resp


async def bad_header(request: web.Request) -> web.Response:
    return web.Response(text="x", headers={"X-Evil": "a\r\nInjected: yes"})


async def close(request: web.Request) -> web.Response:
    resp = web.Response(text="closing")
    resp.force_close()
    return resp


async def no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def state(request: web.Request) -> web.Response:
    return web.Response(text=str(request.get("mw", "none")) + " " + request.app[APP_KEY])


@web.middleware
async def tagging_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    request["mw"] = "tagged"
    resp = await handler(request)
    resp.headers["X-Middleware"] = "yes"
    return resp


APP_KEY = web.AppKey("name", str)

routes = web.RouteTableDef()


@routes.get("/routes/table")
async def from_table(request: web.Request) -> web.Response:
    return web.Response(text="table")


@routes.view("/view")
class MyView(web.View):
    async def get(self) -> web.Response:
        return web.Response(text="view get")

    async def post(self) -> web.Response:
        return web.Response(text="view post")


def make_app() -> web.Application:
    app = web.Application()
    app[APP_KEY] = "app"
    app.router.add_get("/", index)
    app.add_routes(
        [
            web.get("/hello/{name}", hello),
            web.get("/json", json_handler),
            web.post("/echo", echo),
            web.post("/echo/stream", echo_stream),
            web.post("/count", count_body),
            web.post("/ignore", ignore_body),
            web.get("/stream", stream),
            web.get("/big", big),
            web.get("/sleep", sleep),
            web.get("/boom", boom),
            web.get("/boom/later", boom_later),
            web.get("/forbidden", teapot),
            web.get("/redirect", redirect),
            web.get("/returned", returned_exception),
            web.route("*", "/info/{tail:.*}", info),
            web.post("/json/in", json_in),
            web.post("/form", form),
            web.get("/cookies", cookies),
            web.get("/headers", headers),
            web.get("/bad-header", bad_header),
            web.get("/close", close),
            web.get("/nocontent", no_content),
        ]
    )
    app.add_routes(routes)
    mw_app_routes = [web.get("/mw/state", state)]
    app.add_routes(mw_app_routes)
    app.middlewares.append(tagging_middleware)
    return app
