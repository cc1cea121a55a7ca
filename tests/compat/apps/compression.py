"""Response compression: enable_compression() on whole bodies, json_response, streams and
chunked responses; Accept-Encoding negotiation, force=, HEAD, HTTP/1.0. Compressed bytes are
compared as sent (both servers use zlib with the same parameters). Responses without a body (204,
304, body=None) are in tests/test_compression.py: aiohttp 3.14 fails on them (it asserts a body)
and drops the connection."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get

TEXT = "squall compresses this line the way aiohttp does.\n" * 40


def make_app(web: Any) -> Any:
    async def text(request: Any) -> Any:
        response = web.Response(text=TEXT)
        response.enable_compression()
        return response

    async def body(request: Any) -> Any:
        response = web.Response(body=TEXT.encode(), content_type="application/octet-stream")
        response.enable_compression()
        return response

    async def big(request: Any) -> Any:  # above zlib_executor_size: compressed in an executor
        response = web.Response(body=bytes(range(256)) * 256, zlib_executor_size=1024)
        response.enable_compression()
        return response

    async def json(request: Any) -> Any:
        response = web.json_response({"items": list(range(200))}, headers={"X-Kind": "json"})
        response.enable_compression()
        return response

    async def forced(request: Any) -> Any:
        response = web.Response(text=TEXT)
        response.enable_compression(web.ContentCoding[request.query["coding"]])
        return response

    async def empty(request: Any) -> Any:
        response = web.Response(body=b"")
        response.enable_compression()
        return response

    async def prepared(request: Any) -> Any:
        response = web.Response(text=TEXT)
        response.enable_compression()
        await response.prepare(request)
        await response.write_eof()
        return response

    async def chunked(request: Any) -> Any:
        response = web.Response(text=TEXT)
        response.enable_chunked_encoding()
        response.enable_compression()
        return response

    async def stream(request: Any) -> Any:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_compression()
        await response.prepare(request)
        for i in range(50):
            await response.write(f"line {i} of a streamed, compressed body\n".encode())
        await response.write(b"x" * 20000)  # one large write (aiohttp: through the executor)
        await response.write_eof()
        return response

    async def stream_sized(request: Any) -> Any:  # the Content-Length goes: the length changes
        response = web.StreamResponse()
        response.content_length = len(TEXT)
        response.enable_compression()
        await response.prepare(request)
        await response.write(TEXT.encode())
        await response.write_eof()
        return response

    async def stream_strategy(request: Any) -> Any:
        import zlib

        response = web.StreamResponse()
        response.enable_compression(web.ContentCoding.gzip, strategy=zlib.Z_HUFFMAN_ONLY)
        await response.prepare(request)
        await response.write(TEXT.encode())
        await response.write_eof()
        return response

    async def own_encoding(request: Any) -> Any:
        response = web.Response(text=TEXT, headers={"Content-Encoding": "custom"})
        response.enable_compression()
        return response

    async def vary(request: Any) -> Any:
        response = web.Response(text=TEXT, headers={"Vary": "Origin"})
        response.enable_compression()
        return response

    async def plain(request: Any) -> Any:  # no enable_compression: never compressed
        return web.Response(text=TEXT)

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/body", body)
    app.router.add_get("/big", big)
    app.router.add_get("/json", json)
    app.router.add_get("/forced", forced)
    app.router.add_get("/empty", empty)
    app.router.add_get("/prepared", prepared)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/stream", stream)
    app.router.add_get("/stream-sized", stream_sized)
    app.router.add_get("/stream-strategy", stream_strategy)
    app.router.add_get("/own-encoding", own_encoding)
    app.router.add_get("/vary", vary)
    app.router.add_get("/plain", plain)
    return app


def _ae(value: str) -> tuple[str, str]:
    return ("Accept-Encoding", value)


# "negotiated" requests reach an enable_compression() without force: squall adds Vary.
REQUESTS: list[Req] = [
    get("/text", _ae("gzip"), note="negotiated: gzip"),
    get("/text", _ae("deflate"), note="negotiated: deflate"),
    get("/text", _ae("gzip, deflate"), note="negotiated: gzip and deflate, deflate first"),
    get("/text", _ae("gzip, deflate, br, zstd"), note="negotiated: a browser's list"),
    get("/text", _ae("GZIP"), note="negotiated: coding names are case-insensitive"),
    get("/text", _ae("x-gzip"), note="negotiated: x-gzip"),
    get("/text", _ae("br"), note="negotiated: br only, not compressed"),
    get("/text", _ae("zstd"), note="negotiated: zstd only, not compressed"),
    get("/text", _ae("identity"), note="negotiated: identity"),
    get("/text", _ae("*"), note="negotiated: star, not compressed"),
    get("/text", _ae("gzip;q=0.5, deflate;q=1.0"), note="negotiated: q values do not reorder"),
    get("/text", _ae("deflate;q=0.5, gzip"), note="negotiated: q values do not reorder (2)"),
    get("/text", _ae(""), note="negotiated: empty accept-encoding"),
    get("/text", note="negotiated: no accept-encoding"),
    get("/body", _ae("gzip"), note="negotiated: body"),
    get("/big", _ae("gzip"), note="negotiated: big body through the executor"),
    get("/json", _ae("gzip"), note="negotiated: json"),
    get("/json", _ae("deflate"), note="negotiated: json deflate"),
    get("/empty", _ae("gzip"), note="negotiated: empty body"),
    Req("HEAD", "/text", (_ae("gzip"),), note="negotiated: HEAD whole body"),
    Req("HEAD", "/stream", (_ae("gzip"),), note="negotiated: HEAD stream"),
    get("/prepared", _ae("gzip"), note="negotiated: prepared Response"),
    get("/chunked", _ae("gzip"), note="negotiated: chunked Response"),
    get("/stream", _ae("gzip"), note="negotiated: stream gzip"),
    get("/stream", _ae("deflate"), note="negotiated: stream deflate"),
    get("/stream", note="negotiated: stream uncompressed"),
    get("/stream-sized", _ae("gzip"), note="negotiated: stream with content_length"),
    Req("GET", "/stream", (_ae("gzip"),), version="HTTP/1.0", note="negotiated: HTTP/1.0 stream"),
    Req("GET", "/text", (_ae("gzip"),), version="HTTP/1.0", note="negotiated: HTTP/1.0 body"),
    get("/own-encoding", _ae("gzip"), note="negotiated: a Content-Encoding set by the handler"),
    get("/vary", _ae("gzip"), note="negotiated: a Vary set by the handler"),
    get("/forced?coding=gzip", note="forced gzip without accept-encoding"),
    get("/forced?coding=deflate", _ae("gzip"), note="forced deflate over gzip"),
    get("/forced?coding=identity", _ae("gzip"), note="forced identity"),
    get("/stream-strategy", note="forced gzip stream with a strategy"),
    get("/plain", _ae("gzip"), note="no enable_compression"),
]
