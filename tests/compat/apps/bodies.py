"""Request bodies: json(), post() for urlencoded forms, read()/text() with Content-Length and
chunked, an empty body, and 413 over client_max_size."""

from __future__ import annotations

import hashlib
from typing import Any

from ..harness import Req, send


def make_app(web: Any) -> Any:
    async def echo_json(request: Any) -> Any:
        data = await request.json()
        return web.json_response({"got": data, "type": type(data).__name__})

    async def form(request: Any) -> Any:
        data = await request.post()
        pairs = [f"{k}={v}" for k, v in data.items()]
        return web.Response(text=f"{len(data)} " + "&".join(pairs))

    async def raw(request: Any) -> Any:
        body = await request.read()
        return web.Response(
            text=f"{len(body)} {hashlib.sha256(body).hexdigest()[:16]}"
            f" can_read={request.can_read_body} has_body={request.has_body}"
            f" length={request.content_length}"
        )

    async def text(request: Any) -> Any:
        body = await request.text()
        return web.Response(text=f"[{body}] {request.content_type} {request.charset}")

    async def stream(request: Any) -> Any:
        total = 0
        chunks = 0
        async for chunk in request.content.iter_chunked(5):
            total += len(chunk)
            chunks += 1
        return web.Response(text=f"total={total}")

    async def limited(request: Any) -> Any:
        body = await request.read()
        return web.Response(text=f"small enough: {len(body)}")

    async def ignore(request: Any) -> Any:
        return web.Response(text="did not read")

    app = web.Application(client_max_size=1024)
    app.router.add_post("/json", echo_json)
    app.router.add_post("/form", form)
    app.router.add_route("*", "/raw", raw)
    app.router.add_post("/text", text)
    app.router.add_post("/stream", stream)
    app.router.add_post("/limited", limited)
    app.router.add_post("/form-limited", form)
    app.router.add_post("/ignore", ignore)
    return app


JSON = ("Content-Type", "application/json")
FORM = ("Content-Type", "application/x-www-form-urlencoded")
BIG = b"x" * 2000

REQUESTS: list[Req] = [
    send("POST", "/json", b'{"a": [1, 2], "b": null}', JSON),
    send("POST", "/json", b'"just a string"', JSON, note="json string"),
    send("POST", "/json", b'{"u": "\\u00e9\\ud83d\\ude00"}', JSON, note="json escapes"),
    send("POST", "/json", b'{"a": 1}', JSON, chunked=True, note="json chunked"),
    send("POST", "/json", b"", JSON, note="json empty body"),
    send("POST", "/json", b"{bad", JSON, note="json invalid"),
    send("POST", "/form", b"a=1&b=two&a=3", FORM),
    send("POST", "/form", b"name=J%C3%B6rg&x=a+b&y=%26", FORM, note="form encoded"),
    send("POST", "/form", b"a=1&b=2", FORM, chunked=True, note="form chunked"),
    send("POST", "/form", b"a=1", note="form without content type"),
    send("POST", "/form", b"a=1", ("Content-Type", "text/plain"), note="form text/plain"),
    send("POST", "/form", b"", FORM, note="form empty"),
    send(
        "POST",
        "/form",
        b"k=%E9",
        ("Content-Type", "application/x-www-form-urlencoded; charset=latin-1"),
        note="form latin-1 charset",
    ),
    send("POST", "/raw", b"hello world"),
    send("POST", "/raw", b"hello chunked world, in pieces", chunked=True, note="raw chunked"),
    send("POST", "/raw", note="raw no body"),
    send("GET", "/raw", note="raw get"),
    send("PUT", "/raw", b"\x00\x01\x02\xff" * 50, note="raw binary"),
    send("POST", "/raw", b"", ("Content-Length", "0"), note="raw explicit zero length"),
    send("POST", "/text", b"caf\xc3\xa9", ("Content-Type", "text/plain; charset=utf-8")),
    send(
        "POST",
        "/text",
        b"caf\xe9",
        ("Content-Type", "text/plain; charset=latin-1"),
        note="text latin-1",
    ),
    send("POST", "/text", b"plain", note="text no content type"),
    send("POST", "/stream", b"0123456789abcdefghij"),
    send("POST", "/stream", b"0123456789abcdefghij", chunked=True, note="stream chunked"),
    send("POST", "/limited", b"y" * 1024, note="exactly client_max_size"),
    send("POST", "/limited", BIG, note="413 content-length"),
    send("POST", "/limited", BIG, chunked=True, note="413 chunked"),
    send("POST", "/form-limited", b"a=" + BIG, FORM, note="413 form"),
    send("POST", "/ignore", BIG, note="big body never read"),
]
