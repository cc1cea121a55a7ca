"""Sub-applications: prefixes, nesting, domains, middleware order, request.app, config_dict,
match_info.apps, 404/405 inside a sub-application, and url_for of prefixed routes."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def _raw(path: str, host: str, method: str = "GET") -> Req:
    """A request with a Host of our choosing (the harness's get() always says compat.test)."""
    raw = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    return Req(method, path, raw=raw.encode(), note=f"{method} {host}{path}")


def make_app(web: Any) -> Any:
    name_key = web.AppKey("name", str)
    level_key = web.AppKey("level", str)
    root_only_key = web.AppKey("root_only", str)

    def tagging(tag: str) -> Any:
        @web.middleware
        async def mw(request: Any, handler: Any) -> Any:
            seen = request.get("trail", "")
            request["trail"] = f"{seen}>{tag}[{request.app[name_key]}]"
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                exc.headers["X-Out-" + tag] = request.app[name_key]
                raise
            resp.headers["X-Out-" + tag] = request.app[name_key]
            return resp

        return mw

    async def describe(request: Any) -> Any:
        config = request.config_dict
        apps = [app[name_key] for app in request.match_info.apps]
        text = (
            f"app={request.app[name_key]} apps={apps} trail={request.get('trail', '')}"
            f" level={config.get(level_key)} root_only={config.get(root_only_key)}"
            f" in={root_only_key in config} match={dict(request.match_info)}"
        )
        return web.Response(text=text)

    async def urls(request: Any) -> Any:
        router = request.app.router
        parts = [
            str(router["leaf"].url_for()),
            str(router["item"].url_for(id="a b/c").with_query(x="1 2")),
        ]
        return web.Response(text=" ".join(parts))

    root = web.Application(middlewares=[tagging("r1"), tagging("r2")])
    root[name_key] = "root"
    root[level_key] = "root"
    root[root_only_key] = "yes"
    root.router.add_get("/", describe)
    root.router.add_get("/api/shadowed", describe)
    root.router.add_get("/{a}/{b}", describe)

    api = web.Application(middlewares=[tagging("a1")])
    api[name_key] = "api"
    api[level_key] = "api"
    api.router.add_get("", describe, name="index")
    api.router.add_get("/", describe, name="slash")
    api.router.add_get("/leaf", describe, name="leaf")
    api.router.add_route("POST", "/items/{id:\\d+}", describe, name="item")
    api.router.add_get("/items/{id:\\d+}", describe)
    api.router.add_get("/urls", urls)

    inner = web.Application(middlewares=[tagging("i1")])
    inner[name_key] = "inner"
    inner.router.add_get("/deep/{x}", describe)
    api.add_subapp("/v1/", inner)
    root.add_subapp("/api", api)

    plain = web.Application()  # no middlewares of its own
    plain[name_key] = "plain"
    plain.router.add_get("/x", describe)
    root.add_subapp("/plain", plain)

    tenants = web.Application(middlewares=[tagging("t1")])
    tenants[name_key] = "tenants"
    tenants.router.add_get("/", describe)
    tenants.router.add_get("/api/leaf", describe)
    root.add_domain("*.tenants.test", tenants)

    exact = web.Application()
    exact[name_key] = "exact"
    exact.router.add_get("/", describe)
    root.add_domain("Exact.Test:8080", exact)
    return root


REQUESTS: list[Req] = [
    get("/"),
    get("/api", note="sub-app root without slash"),
    get("/api/", note="sub-app root with slash"),
    get("/api/leaf"),
    get("/api/leaf/", note="sub-app trailing slash 404"),
    get("/api/nothing", note="sub-app 404 runs its middlewares"),
    get("/api/shadowed", note="root route under the prefix"),
    get("/api/items/12"),
    send("POST", "/api/items/12"),
    send("PUT", "/api/items/12", note="sub-app 405"),
    get("/api/items/x", note="regex mismatch in sub-app"),
    get("/api/urls"),
    get("/api/v1/deep/z", note="nested sub-app"),
    get("/api/v1/deep/", note="nested 404"),
    get("/api/v1", note="nested prefix alone"),
    get("/apix/leaf", note="prefix is a whole segment"),
    get("/other/thing", note="root dynamic route"),
    get("/plain/x", note="sub-app without middlewares"),
    get("/plain/y", note="sub-app 404 without middlewares"),
    get("/API/leaf", note="prefix is case sensitive"),
    _raw("/", "a.tenants.test"),
    _raw("/api/leaf", "b.c.tenants.test:81"),
    _raw("/missing", "a.tenants.test"),
    _raw("/", "tenants.test"),
    _raw("/", "A.TENANTS.TEST"),
    _raw("/", "exact.test:8080"),
    _raw("/", "exact.test"),
    _raw("/", "exact.test:9090"),
    _raw("/api/leaf", "exact.test:9090"),
    _raw("/", "a.tenants.test", "POST"),
]
