"""Streaming responses: StreamResponse with and without a Content-Length, chunked writes,
enable_chunked_encoding, write_eof, and headers set before prepare."""

from __future__ import annotations

import asyncio
from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    async def chunks(request: Any) -> Any:
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        for i in range(5):
            await response.write(f"line {i}\n".encode())
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    async def sized(request: Any) -> Any:
        response = web.StreamResponse(status=200, reason="Sized", headers={"X-Kind": "sized"})
        response.content_length = 10
        response.content_type = "application/octet-stream"
        await response.prepare(request)
        await response.write(b"01234")
        await response.write(b"56789")
        await response.write_eof()
        return response

    async def forced_chunked(request: Any) -> Any:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        response.headers["Content-Type"] = "application/x-ndjson"
        await response.prepare(request)
        for i in range(3):
            await response.write(b'{"n": %d}\n' % i)
        return response

    async def empty_stream(request: Any) -> Any:
        response = web.StreamResponse(status=202)
        await response.prepare(request)
        await response.write_eof()
        return response

    async def no_eof(request: Any) -> Any:
        response = web.StreamResponse()
        response.content_type = "text/csv"
        response.charset = "utf-8"
        await response.prepare(request)
        await response.write(b"a,b\n1,2\n")
        return response

    async def write_empty(request: Any) -> Any:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"")
        await response.write(b"after empty")
        await response.write_eof(b" + eof data")
        return response

    async def big(request: Any) -> Any:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(64):
            await response.write(bytes([65 + i % 26]) * 4096)
        await response.write_eof()
        return response

    async def http10(request: Any) -> Any:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"to an old client")
        await response.write_eof()
        return response

    async def body_response(request: Any) -> Any:
        return web.Response(body=b"bytes body", content_type="application/octet-stream")

    async def text_response(request: Any) -> Any:
        return web.Response(text="<p>h\u00e9</p>", content_type="text/html", charset="latin-1")

    async def no_type(request: Any) -> Any:
        return web.Response(body=b"untyped")

    async def empty(request: Any) -> Any:
        return web.Response()

    async def headers_after(request: Any) -> Any:
        response = web.Response(text="h")
        response.headers["X-Multi"] = "1"
        response.headers.add("X-Multi", "2")
        response.last_modified = 0
        response.etag = "abc"
        return response

    app = web.Application()
    app.router.add_get("/chunks", chunks)
    app.router.add_get("/sized", sized)
    app.router.add_get("/forced", forced_chunked)
    app.router.add_get("/empty-stream", empty_stream)
    app.router.add_get("/no-eof", no_eof)
    app.router.add_get("/write-empty", write_empty)
    app.router.add_get("/big", big)
    app.router.add_get("/http10", http10)
    app.router.add_get("/body", body_response)
    app.router.add_get("/text", text_response)
    app.router.add_get("/no-type", no_type)
    app.router.add_get("/empty", empty)
    app.router.add_get("/headers", headers_after)
    return app


REQUESTS: list[Req] = [
    get("/chunks"),
    get("/sized"),
    get("/forced"),
    get("/empty-stream"),
    get("/no-eof"),
    get("/write-empty"),
    get("/big"),
    Req("GET", "/http10", version="HTTP/1.0", note="stream to HTTP/1.0"),
    Req("GET", "/body", version="HTTP/1.0", note="response to HTTP/1.0"),
    Req(
        "GET",
        "/chunks",
        (("Connection", "keep-alive"),),
        version="HTTP/1.0",
        note="stream to HTTP/1.0 keep-alive",
        # aiohttp sends this unframed body without Connection: close and then leaves the
        # connection open (squall closes it), so the body is read until this timeout.
        timeout=1.0,
    ),
    get("/body"),
    get("/text"),
    get("/no-type"),
    get("/empty"),
    get("/headers"),
    send("POST", "/chunks", note="405 on stream route"),
]
