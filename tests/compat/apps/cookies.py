"""Cookies: set with attributes, read back, deleted, several on one response."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get


def make_app(web: Any) -> Any:
    async def show(request: Any) -> Any:
        pairs = sorted(request.cookies.items())
        return web.Response(text="\n".join(f"{k}={v}" for k, v in pairs) or "(none)")

    async def login(request: Any) -> Any:
        response = web.Response(text="logged in")
        response.set_cookie("session", "abc123", httponly=True, path="/", samesite="Lax")
        response.set_cookie("theme", "dark", max_age=3600)
        return response

    async def full(request: Any) -> Any:
        response = web.Response(text="full")
        response.set_cookie(
            "pref",
            "v1",
            domain="compat.test",
            path="/app",
            max_age=60,
            secure=True,
            httponly=True,
            samesite="Strict",
        )
        return response

    async def expires(request: Any) -> Any:
        response = web.Response(text="expires")
        response.set_cookie("old", "1", expires="Thu, 01 Jan 2037 00:00:00 GMT")
        return response

    async def quoted(request: Any) -> Any:
        response = web.Response(text="quoted")
        response.set_cookie("spaced", "a b;c")
        response.set_cookie("empty", "")
        return response

    async def logout(request: Any) -> Any:
        response = web.Response(text="bye")
        response.del_cookie("session")
        response.del_cookie("pref", domain="compat.test", path="/app")
        return response

    async def overwrite(request: Any) -> Any:
        response = web.Response(text="twice")
        response.set_cookie("n", "1")
        response.set_cookie("n", "2")
        return response

    async def cookie_map(request: Any) -> Any:
        response = web.Response(text="map")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        response.del_cookie("a")
        return web.Response(
            text=",".join(sorted(response.cookies)), headers={"X-Count": str(len(response.cookies))}
        )

    async def raise_with_cookie(request: Any) -> Any:
        exc = web.HTTPFound("/cookies")
        exc.set_cookie("flash", "saved")
        raise exc

    app = web.Application()
    app.router.add_get("/cookies", show)
    app.router.add_get("/login", login)
    app.router.add_get("/full", full)
    app.router.add_get("/expires", expires)
    app.router.add_get("/quoted", quoted)
    app.router.add_get("/logout", logout)
    app.router.add_get("/overwrite", overwrite)
    app.router.add_get("/map", cookie_map)
    app.router.add_get("/flash", raise_with_cookie)
    return app


def _c(value: str) -> tuple[str, str]:
    return ("Cookie", value)


REQUESTS: list[Req] = [
    get("/cookies", note="no cookies"),
    get("/cookies", _c("a=1; b=2"), note="two cookies"),
    get("/cookies", _c("a=1"), _c("b=2"), note="two Cookie headers"),
    get("/cookies", _c('q="quoted value"'), note="quoted cookie"),
    get("/cookies", _c("x=%41%20b"), note="percent in cookie"),
    get("/cookies", _c("bad cookie; ok=1"), note="malformed pair"),
    get("/cookies", _c("a=1;b=2;;c=3"), note="no spaces and empty pair"),
    get("/cookies", _c("dup=1; dup=2"), note="duplicate name"),
    get("/login"),
    get("/full"),
    get("/expires"),
    get("/quoted"),
    get("/logout"),
    get("/overwrite"),
    get("/map"),
    get("/flash"),
]
