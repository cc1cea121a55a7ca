"""Class-based views, RouteTableDef, regex routes, percent-encoded paths, named routes."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    routes = web.RouteTableDef()

    @routes.view("/things/{id}")
    class Thing(web.View):
        async def get(self) -> Any:
            return web.json_response({"id": self.request.match_info["id"], "m": "get"})

        async def put(self) -> Any:
            body = await self.request.text()
            return web.Response(text=f"put {self.request.match_info['id']} {body}")

        async def delete(self) -> Any:
            return web.Response(status=204)

    @routes.get(r"/files/{name:.+}")
    async def files(request: Any) -> Any:
        return web.Response(text=f"file={request.match_info['name']}")

    @routes.get(r"/v{major:\d+}.{minor:\d+}/info")
    async def version(request: Any) -> Any:
        m = request.match_info
        return web.Response(text=f"{m['major']}|{m['minor']}")

    @routes.get("/users/{name}")
    async def user(request: Any) -> Any:
        return web.Response(
            text=f"name={request.match_info['name']} path={request.path} raw={request.raw_path}"
        )

    @routes.get("/users/{name}/posts/{post:[a-z0-9-]+}", name="post")
    async def post(request: Any) -> Any:
        url = request.app.router["post"].url_for(name="a b", post="x-1")
        return web.Response(text=f"{request.match_info['post']} {url}")

    @routes.get("/caf\u00e9")
    async def cafe(request: Any) -> Any:
        return web.Response(text=f"unicode route {request.path}")

    @routes.route("*", "/any")
    async def any_method(request: Any) -> Any:
        return web.Response(text=f"any {request.method}")

    @routes.get("/trailing/")
    async def trailing(request: Any) -> Any:
        return web.Response(text="with slash")

    @routes.get("/info")
    async def info(request: Any) -> Any:
        names = sorted(r.name for r in request.app.router.resources() if r.name)
        return web.Response(
            text=f"{request.url.path} {request.rel_url} {request.host} {names}"
            f" {request.match_info.route.method}"
        )

    app = web.Application()
    app.router.add_routes(routes)
    app.router.add_route("GET", "/static-name", info, name="static_name")
    return app


REQUESTS: list[Req] = [
    get("/things/7"),
    send("PUT", "/things/7", b"payload"),
    send("DELETE", "/things/7"),
    send("POST", "/things/7", note="view without post: 405"),
    get("/files/a/b/c.txt"),
    get("/files/a%2Fb.txt", note="encoded slash in tail"),
    get("/files/", note="empty tail 404"),
    get("/v1.2/info"),
    get("/v1.x/info", note="regex mismatch"),
    get("/users/alice"),
    get("/users/J%C3%B6rg", note="utf8 encoded segment"),
    get("/users/a%20b", note="encoded space"),
    get("/users/a%2Fb", note="encoded slash in segment"),
    get("/users/a+b", note="plus stays plus"),
    get("/users/%7Euser", note="encoded tilde"),
    get("/users/a%25b", note="encoded percent"),
    get("/users/bob/posts/hello-1"),
    get("/users/bob/posts/Hello", note="regex uppercase mismatch"),
    get("/caf%C3%A9", note="unicode route encoded"),
    get("/any"),
    send("PATCH", "/any", b"x"),
    send("DELETE", "/any"),
    get("/trailing/"),
    get("/trailing", note="no slash 404"),
    get("/info"),
    get("/static-name"),
    get("/users/alice/", note="extra trailing slash"),
    get("//users/alice", note="double leading slash"),
    get("/users/../users/alice", note="dot segments"),
]
