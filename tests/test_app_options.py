"""Application(router=, client_max_fields=): both as aiohttp 3.14, side by side."""

from __future__ import annotations

from typing import Any

import pytest

from .compat.harness import serve_both
from .conftest import raw_request


def make_app(w: Any) -> Any:
    class CountingDispatcher(w.UrlDispatcher):  # type: ignore[misc, name-defined]
        pass

    async def form(request: Any) -> Any:
        data = await request.post()
        return w.Response(text=",".join(f"{k}={v}" for k, v in data.items()))

    async def which(request: Any) -> Any:
        return w.Response(text=type(request.app.router).__name__)

    with pytest.warns(DeprecationWarning, match="router argument is deprecated"):
        app = w.Application(router=CountingDispatcher(), client_max_fields=3)
    app.router.add_post("/form", form)
    app.router.add_get("/router", which)
    return app


def _post(port: int, body: bytes, ctype: bytes) -> bytes:
    return raw_request(
        port,
        b"POST /form HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: %b\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (ctype, len(body), body),
    )


def _multipart(n: int) -> bytes:
    parts = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(n)
    )
    return parts + b"--B--\r\n"


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"a=1&b=2&c=3", b"application/x-www-form-urlencoded", 200),
        (b"a=1&b=2&c=3&d=4", b"application/x-www-form-urlencoded", 413),
        (_multipart(3), b"multipart/form-data; boundary=B", 200),
        (_multipart(4), b"multipart/form-data; boundary=B", 413),
    ],
)
def test_client_max_fields(body: bytes, ctype: bytes, status: int) -> None:
    with serve_both(make_app) as (ref, got):
        theirs = _post(ref.port, body, ctype)
        ours = _post(got.port, body, ctype)
    assert theirs.split(b" ", 2)[1] == ours.split(b" ", 2)[1] == b"%d" % status
    assert theirs.split(b"\r\n\r\n", 1)[1] == ours.split(b"\r\n\r\n", 1)[1]


def test_custom_router() -> None:
    with serve_both(make_app) as (ref, got):
        request = b"GET /router HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        bodies = [raw_request(s.port, request).split(b"\r\n\r\n", 1)[1] for s in (ref, got)]
    assert bodies == [b"CountingDispatcher", b"CountingDispatcher"]
