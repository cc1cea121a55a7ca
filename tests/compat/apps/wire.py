"""Wire-level behaviour around a tiny app: keep-alive headers, HTTP/1.0, Expect: 100-continue,
a handler setting a CR/LF header, and malformed requests that both servers refuse."""

from __future__ import annotations

from typing import Any

from ..harness import Req, get, send


def make_app(web: Any) -> Any:
    async def hello(request: Any) -> Any:
        return web.Response(text=f"hello {request.version.major}.{request.version.minor}")

    async def upload(request: Any) -> Any:
        body = await request.read()
        return web.Response(text=f"read {len(body)}")

    async def refuse(request: Any) -> Any:
        return web.Response(status=403, text="not without reading")

    async def crlf(request: Any) -> Any:
        return web.Response(text="split?", headers={"X-Bad": "a\r\nInjected: 1"})

    async def headers(request: Any) -> Any:
        pairs = [f"{k}: {v!a}" for k, v in request.headers.items() if k.lower().startswith("x-")]
        return web.Response(text="\n".join(pairs) + f"\nhost={request.host}")

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_post("/upload", upload)
    app.router.add_post("/refuse", refuse)
    app.router.add_get("/crlf", crlf)
    app.router.add_get("/headers", headers)
    return app


CONTINUE = ("Expect", "100-continue")


def _raw(data: bytes, note: str) -> Req:
    return Req(raw=data, note=note)


REQUESTS: list[Req] = [
    get("/"),
    get("/", ("Connection", "close"), note="connection close"),
    get("/", ("Connection", "keep-alive"), note="connection keep-alive 1.1"),
    Req("GET", "/", version="HTTP/1.0", note="plain HTTP/1.0"),
    Req("GET", "/", (("Connection", "keep-alive"),), version="HTTP/1.0", note="1.0 keep-alive"),
    _raw(b"GET / HTTP/1.1\r\n\r\n", "malformed: no Host header"),
    get("/headers", ("X-One", "1"), ("x-two", " padded "), ("X-One", "again")),
    get("/headers", ("X-Latin", "caf\u00e9"), note="latin-1 header value"),
    _raw(b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Utf: caf\xc3\xa9\r\n\r\n", "utf-8 header value"),
    send("POST", "/upload", b"0123456789", CONTINUE, note="expect continue read"),
    send("POST", "/refuse", b"0123456789", CONTINUE, note="expect continue not read"),
    get("/crlf", note="crlf header from handler"),
    _raw(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", "malformed: space in name"),
    _raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "malformed: bad length"),
    _raw(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "malformed: length and chunked",
    ),
    _raw(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "malformed: version 2.0"),
    _raw(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "malformed: long target"),
    _raw(
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
        "malformed: long header",
    ),
    _raw(
        b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "malformed: bad chunk size",
    ),
    _raw(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", "malformed: NUL in header"),
    _raw(b"GARBAGE\r\n\r\n", "malformed: garbage request line"),
]
