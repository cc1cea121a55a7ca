"""Redirects and the HTTPException family, raised and returned, with custom text, headers,
reason and content types."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    async def go(request: Any) -> Any:
        kind = request.match_info["kind"]
        target = request.query.get("to", "/landing")
        classes = {
            "301": web.HTTPMovedPermanently,
            "302": web.HTTPFound,
            "303": web.HTTPSeeOther,
            "307": web.HTTPTemporaryRedirect,
            "308": web.HTTPPermanentRedirect,
        }
        raise classes[kind](target)

    async def returned(request: Any) -> Any:
        return web.HTTPFound("/landing", text="moved along", headers={"X-Why": "returned"})

    async def landing(request: Any) -> Any:
        return web.Response(text="landed")

    async def not_modified(request: Any) -> Any:
        raise web.HTTPNotModified(headers={"ETag": '"v1"'})

    async def no_content(request: Any) -> Any:
        raise web.HTTPNoContent(headers={"X-Done": "yes"})

    async def created(request: Any) -> Any:
        return web.HTTPCreated(text='{"ok": true}', content_type="application/json")

    async def forbidden(request: Any) -> Any:
        raise web.HTTPForbidden(reason="Go Away", text="you shall not pass")

    async def gone(request: Any) -> Any:
        raise web.HTTPGone()

    async def teapot_like(request: Any) -> Any:
        raise web.HTTPUnprocessableEntity(body=b"\x00binary\xff", content_type="application/x-bin")

    async def conflict_text(request: Any) -> Any:
        raise web.HTTPConflict(text="<b>conflict</b>", content_type="text/html")

    async def too_many(request: Any) -> Any:
        raise web.HTTPTooManyRequests(headers={"Retry-After": "30"})

    async def unavailable(request: Any) -> Any:
        raise web.HTTPServiceUnavailable(text="maintenance", headers={"Retry-After": "120"})

    async def not_implemented(request: Any) -> Any:
        raise web.HTTPNotImplemented()

    async def bad_gateway(request: Any) -> Any:
        return web.HTTPBadGateway(text="upstream said no")

    async def method_not_allowed(request: Any) -> Any:
        raise web.HTTPMethodNotAllowed("DELETE", ["GET", "POST"])

    async def legal(request: Any) -> Any:
        raise web.HTTPUnavailableForLegalReasons("https://example.org/why")

    async def custom_reason(request: Any) -> Any:
        return web.Response(status=299, reason="Custom Thing", text="odd status")

    async def unknown_status(request: Any) -> Any:
        return web.Response(status=599, text="no reason known")

    async def auth(request: Any) -> Any:
        raise web.HTTPUnauthorized(
            text="login first", headers={"WWW-Authenticate": 'Basic realm="compat"'}
        )

    async def redirect_unicode(request: Any) -> Any:
        raise web.HTTPFound("/caf\u00e9?q=a b")

    async def redirect_absolute(request: Any) -> Any:
        raise web.HTTPFound("https://example.org/path?x=1#frag")

    app = web.Application()
    app.router.add_get("/go/{kind}", go)
    app.router.add_get("/returned", returned)
    app.router.add_get("/landing", landing)
    app.router.add_get("/not-modified", not_modified)
    app.router.add_get("/no-content", no_content)
    app.router.add_post("/created", created)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/gone", gone)
    app.router.add_get("/unprocessable", teapot_like)
    app.router.add_get("/conflict", conflict_text)
    app.router.add_get("/too-many", too_many)
    app.router.add_get("/unavailable", unavailable)
    app.router.add_get("/not-implemented", not_implemented)
    app.router.add_get("/bad-gateway", bad_gateway)
    app.router.add_get("/mna", method_not_allowed)
    app.router.add_get("/legal", legal)
    app.router.add_get("/custom-reason", custom_reason)
    app.router.add_get("/unknown-status", unknown_status)
    app.router.add_get("/auth", auth)
    app.router.add_get("/unicode", redirect_unicode)
    app.router.add_get("/absolute", redirect_absolute)
    return app


REQUESTS: list[Req] = [
    get("/go/301"),
    get("/go/302"),
    get("/go/303"),
    get("/go/307"),
    get("/go/308"),
    get("/go/302?to=/a%20b?c=d", note="redirect to encoded target"),
    get("/go/302?to=http://other.test/x", note="redirect absolute from query"),
    get("/returned"),
    get("/landing"),
    get("/not-modified"),
    get("/no-content"),
    send("POST", "/created"),
    get("/forbidden"),
    get("/gone"),
    get("/unprocessable"),
    get("/conflict"),
    get("/too-many"),
    get("/unavailable"),
    get("/not-implemented"),
    get("/bad-gateway"),
    get("/mna"),
    get("/legal"),
    get("/custom-reason"),
    get("/unknown-status"),
    get("/auth"),
    get("/unicode"),
    get("/absolute"),
]
