"""Response and request odds and ends a real app touches: force_close, set_status, 204 with a
body, charset and content_type setters, conditional-request properties, request.url parts."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    async def closing(request: Any) -> Any:
        response = web.Response(text="closing")
        response.force_close()
        return response

    async def status(request: Any) -> Any:
        response = web.Response(text="status set later")
        response.set_status(418, "Short And Stout")
        return response

    async def empty_with_text(request: Any) -> Any:
        return web.Response(status=204, text="dropped")

    async def not_modified_with_body(request: Any) -> Any:
        return web.Response(status=304, body=b"dropped", headers={"ETag": '"x"'})

    async def charset(request: Any) -> Any:
        response = web.Response(text="caf\u00e9")
        response.charset = "latin-1"
        response.content_type = "text/csv"
        return response

    async def conditional(request: Any) -> Any:
        since = request.if_modified_since
        unmodified = request.if_unmodified_since
        return web.Response(
            text=f"ims={since.isoformat() if since else None}"
            f" ius={unmodified.isoformat() if unmodified else None}"
        )

    async def url_parts(request: Any) -> Any:
        return web.Response(
            text=f"{request.scheme} {request.secure} {request.host} {request.url}"
            f" {request.keep_alive} {request.remote}"
        )

    async def forwarded(request: Any) -> Any:
        return web.Response(text=repr([dict(item) for item in request.forwarded]))

    async def clone(request: Any) -> Any:
        other = request.clone(rel_url="/elsewhere?x=1", method="POST")
        return web.Response(text=f"{other.method} {other.path} {other.query_string}")

    async def json_status(request: Any) -> Any:
        return web.json_response({"error": "nope"}, status=409, headers={"X-Trace": "t1"})

    async def content_length_header(request: Any) -> Any:
        return web.Response(body=b"12345", headers={"Content-Type": "application/x-custom"})

    async def keep_alive_off(request: Any) -> Any:
        response = web.StreamResponse()
        response.force_close()
        response.content_length = 3
        await response.prepare(request)
        await response.write(b"abc")
        return response

    app = web.Application()
    app.router.add_get("/closing", closing)
    app.router.add_get("/status", status)
    app.router.add_get("/empty-with-text", empty_with_text)
    app.router.add_get("/304-with-body", not_modified_with_body)
    app.router.add_get("/charset", charset)
    app.router.add_get("/conditional", conditional)
    app.router.add_get("/url", url_parts)
    app.router.add_get("/forwarded", forwarded)
    app.router.add_get("/clone", clone)
    app.router.add_get("/json-status", json_status)
    app.router.add_get("/custom-type", content_length_header)
    app.router.add_get("/stream-close", keep_alive_off)
    return app


REQUESTS: list[Req] = [
    get("/closing"),
    get("/status"),
    get("/empty-with-text"),
    get("/304-with-body"),
    get("/charset"),
    get("/conditional"),
    get("/conditional", ("If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT"), note="ims"),
    get("/conditional", ("If-Unmodified-Since", "not a date"), note="ius garbage"),
    get("/url"),
    get(
        "/url",
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "proxy.example"),
        note="x-forwarded headers ignored",
    ),
    get("/forwarded"),
    get(
        "/forwarded",
        ("Forwarded", 'for=1.2.3.4;proto=https;host="a.example", for=5.6.7.8'),
        ("X-Forwarded-Proto", "https"),
        note="forwarded headers",
    ),
    get("/url?q=%20", ("Host", "other.example:8080"), note="malformed: second Host header"),
    get("/clone"),
    get("/json-status"),
    get("/custom-type"),
    get("/stream-close"),
    send("POST", "/closing", note="405 route"),
]
