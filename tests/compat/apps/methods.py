"""HEAD, OPTIONS, 405 with Allow, and app state plus an on_response_prepare signal."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    hits_key = web.AppKey("hits", dict)

    async def add_headers(request: Any, response: Any) -> None:
        response.headers["X-Prepared"] = request.method
        response.headers["X-Hits"] = str(request.app[hits_key]["n"])

    @web.middleware
    async def count(request: Any, handler: Any) -> Any:
        request.app[hits_key]["n"] += 1
        request["started"] = "yes"
        return await handler(request)

    async def resource(request: Any) -> Any:
        return web.Response(text=f"resource {request['started']}", headers={"X-Own": "1"})

    async def create(request: Any) -> Any:
        return web.Response(status=201, text="created")

    async def head_only(request: Any) -> Any:
        return web.Response(text="explicit head", headers={"X-Head": "1"})

    async def options(request: Any) -> Any:
        return web.Response(
            status=204, headers={"Allow": "GET, POST, OPTIONS", "Access-Control-Max-Age": "60"}
        )

    async def streamed(request: Any) -> Any:
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        await response.write(b"streamed body")
        await response.write_eof()
        return response

    async def sized_head(request: Any) -> Any:
        return web.Response(body=b"0123456789")

    async def state(request: Any) -> Any:
        return web.json_response(
            {"hits": request.app[hits_key]["n"], "config": request.config_dict["config"]}
        )

    app = web.Application(middlewares=[count])
    app[hits_key] = {"n": 0}
    app["config"] = {"name": "compat", "debug": False}
    app.on_response_prepare.append(add_headers)
    app.router.add_get("/resource", resource)
    app.router.add_post("/resource", create)
    app.router.add_head("/head-only", head_only)
    app.router.add_route("OPTIONS", "/cors", options)
    app.router.add_get("/cors", resource, allow_head=False)
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/sized", sized_head)
    app.router.add_get("/state", state)
    return app


REQUESTS: list[Req] = [
    get("/resource"),
    Req("HEAD", "/resource", note="HEAD on GET route"),
    send("POST", "/resource"),
    send("PUT", "/resource", b"x", note="405 with Allow"),
    send("DELETE", "/resource", note="405 delete"),
    Req("OPTIONS", "/resource", note="OPTIONS without handler"),
    Req("HEAD", "/head-only"),
    get("/head-only", note="GET on head-only route"),
    Req("OPTIONS", "/cors"),
    Req("HEAD", "/cors", note="HEAD when allow_head=False"),
    get("/cors"),
    Req("HEAD", "/streamed", note="HEAD on StreamResponse"),
    Req("HEAD", "/sized", note="HEAD keeps Content-Length"),
    Req("HEAD", "/nowhere", note="HEAD 404"),
    Req("BREW", "/resource", note="malformed: unknown method token"),
    Req("get", "/resource", note="malformed: lowercase method"),
    get("/state"),
    Req("TRACE", "/resource", note="TRACE 405"),
]
