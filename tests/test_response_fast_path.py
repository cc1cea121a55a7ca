"""A Response made by the constructor's fast path and then changed is sent as changed.

``Response(text=...)`` marks itself plain (a 200 of a type and a body alone) and the request
handler writes a plain response from three attributes, not from its whole head: every change
after construction must clear the mark. Each route here makes the fast-path response, changes
one thing, and the test reads the answer with aiohttp's client over keep-alive HTTP/1.1 (the
only requests the fast path answers). The same routes run on aiohttp with
``SQUALL_REFERENCE=aiohttp``.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from .test_web_api import serve_any, web

BODY = "Hello, plain world! " * 20


def _changes() -> dict[str, Callable[[Any], Any]]:
    def status(resp: Any) -> None:
        resp.set_status(201)

    def reason(resp: Any) -> None:
        resp.set_status(200, "Fine")

    def header(resp: Any) -> None:
        resp.headers["X-Extra"] = "yes"

    def headers_read(resp: Any) -> None:
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"

    def cookie(resp: Any) -> None:
        resp.set_cookie("flavour", "oat")

    def close(resp: Any) -> None:
        resp.force_close()

    def chunked(resp: Any) -> None:
        resp.enable_chunked_encoding()

    def compressed(resp: Any) -> None:
        resp.enable_compression(web.ContentCoding.gzip)

    def content_type(resp: Any) -> None:
        resp.content_type = "text/html"

    def charset(resp: Any) -> None:
        resp.charset = "latin-1"

    def body(resp: Any) -> None:
        resp.body = b"other bytes"

    def no_body(resp: Any) -> None:
        resp.body = None

    def last_modified(resp: Any) -> None:
        resp.last_modified = 0

    return {
        f.__name__: f
        for f in (
            status,
            reason,
            header,
            headers_read,
            cookie,
            close,
            chunked,
            compressed,
            content_type,
            charset,
            body,
            no_body,
            last_modified,
        )
    }


CHANGES = _changes()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    app = web.Application()

    def route(change: Callable[[Any], Any]) -> Any:
        async def handler(request: Any) -> Any:
            resp = web.Response(text=BODY)
            change(resp)
            return resp

        return handler

    for name, change in CHANGES.items():
        app.router.add_get(f"/{name}", route(change))
    with serve_any(app) as srv:
        yield srv.port


async def _get(port: int, name: str) -> tuple[int, str, Any, bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        headers = {"Accept-Encoding": "gzip"}
        async with session.get(f"http://127.0.0.1:{port}/{name}", headers=headers) as resp:
            return resp.status, resp.reason or "", resp.headers, await resp.read()


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_after_construction_is_sent(port: int, name: str) -> None:
    status, reason, headers, body = asyncio.run(_get(port, name))
    expected_status = {"status": 201}.get(name, 200)
    assert status == expected_status
    assert reason == {"reason": "Fine", "status": "Created"}.get(name, "OK")
    if name == "header":
        assert headers["X-Extra"] == "yes"
    if name == "cookie":
        assert "flavour=oat" in headers["Set-Cookie"]
    if name == "close":
        assert headers["Connection"].lower() == "close"
    if name == "chunked":
        assert headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in headers
    if name == "compressed":
        assert headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(body)
    if name == "content_type":
        assert headers["Content-Type"] == "text/html; charset=utf-8"
    elif name == "charset":
        assert headers["Content-Type"] == "text/plain; charset=latin-1"
    else:
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
    if name == "last_modified":
        assert headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    expected = {"body": b"other bytes", "no_body": b""}.get(name, BODY.encode())
    assert body == expected
    if name not in ("chunked", "compressed"):
        assert headers["Content-Length"] == str(len(expected))
