"""Request bodies with Content-Encoding gzip/deflate are decompressed, as aiohttp does — the same
requests sent to aiohttp and to squall get the same answers — and bombs stop at client_max_size."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest

from .compat.harness import serve_both
from .conftest import raw_request, serve

TEXT = b"squall reads compressed bodies " * 40


def make_app(web: Any) -> Any:
    async def read(request: Any) -> Any:
        try:
            body = await request.read()
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=f"refused {exc.status}")
        return web.Response(text=f"{len(body)} {body[:20]!r}")

    async def stream(request: Any) -> Any:
        total = 0
        async for chunk in request.content.iter_chunked(1000):
            total += len(chunk)
        return web.Response(text=f"streamed {total}")

    async def form(request: Any) -> Any:
        data = await request.post()
        return web.Response(text=",".join(f"{k}={v}" for k, v in sorted(data.items())))

    app = web.Application(client_max_size=100_000)
    app.router.add_post("/read", read)
    app.router.add_post("/stream", stream)
    app.router.add_post("/form", form)
    return app


def _post(port: int, path: str, body: bytes, *headers: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += "".join(h + "\r\n" for h in headers) + f"Content-Length: {len(body)}\r\n\r\n"
    answer = raw_request(port, head.encode() + body)
    status = answer.split(b" ", 2)[1]
    return status + b" " + answer.split(b"\r\n\r\n", 1)[1]


def _raw_deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(wbits=-15)
    return comp.compress(data) + comp.flush()


CASES = [
    ("/read", gzip.compress(TEXT), "Content-Encoding: gzip"),
    ("/read", gzip.compress(TEXT), "Content-Encoding: x-gzip"),  # not decoded by aiohttp either
    ("/read", gzip.compress(TEXT), "Content-Encoding: GZIP"),
    ("/read", zlib.compress(TEXT), "Content-Encoding: deflate"),
    ("/read", _raw_deflate(TEXT), "Content-Encoding: deflate"),
    ("/read", TEXT, "Content-Encoding: identity"),
    ("/read", b"", "Content-Encoding: gzip"),
    ("/stream", gzip.compress(TEXT), "Content-Encoding: gzip"),
    (
        "/form",
        gzip.compress(b"a=1&b=two"),
        "Content-Encoding: gzip",
        "Content-Type: application/x-www-form-urlencoded",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[2].split(': ')[1]}")
def test_same_as_aiohttp(case: tuple[str, ...]) -> None:
    path, body, *headers = case
    with serve_both(make_app) as (ref, got):
        theirs = _post(ref.port, path, body, *headers)  # type: ignore[arg-type]
        ours = _post(got.port, path, body, *headers)  # type: ignore[arg-type]
    assert ours == theirs
    assert ours.startswith(b"200 ")


def test_bomb_stops_at_client_max_size() -> None:
    from squall import web

    bomb = gzip.compress(b"\0" * 50_000_000)  # ~50 KB on the wire, 50 MB inflated
    assert len(bomb) < 100_000
    with serve(make_app(web)) as srv:
        answer = _post(srv.port, "/read", bomb, "Content-Encoding: gzip")
        streamed = _post(
            srv.port, "/stream", gzip.compress(b"x" * 3_000_000), "Content-Encoding: gzip"
        )
    assert answer == b"413 refused 413"
    assert streamed == b"200 streamed 3000000"  # streaming is not limited, and not buffered


@pytest.mark.parametrize(
    "body",
    [gzip.compress(TEXT)[:-10], b"not gzip at all", gzip.compress(TEXT) + b"junk"],
    ids=["truncated", "garbage", "trailing-junk"],
)
def test_corrupt_bodies_are_400(body: bytes) -> None:
    from squall import web

    with serve(make_app(web)) as srv:
        answer = _post(srv.port, "/read", body, "Content-Encoding: gzip")
    assert answer.startswith(b"400 "), answer
