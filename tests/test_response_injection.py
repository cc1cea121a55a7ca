"""Response splitting (issue #9): whatever a handler puts in a status, reason, header or cookie,
the client gets one well-formed answer — a 500 when the head cannot be written safely — never a
second response or a header of the attacker's making.

tests/test_web_api.py covers CR/LF in a header value, a header name and StreamResponse headers;
tests/test_asgi.py one bad ASGI header. These are the other ways in, on both the aiohttp-style
and the ASGI path, each followed by a pipelined canary request on the same connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from squall import web
from squall.asgi import serve as asgi_serve

from .conftest import raw_request, serve
from .loop_thread import LoopThread
from .wire_harness import read_replies

EVIL = "a\r\nInjected: yes"

# Each handler makes its response from something a client could have smuggled in.
WEB_CASES: dict[str, Callable[[], web.StreamResponse]] = {
    "value-bare-cr": lambda: web.Response(text="x", headers={"X-Evil": "a\rInjected: yes"}),
    "value-bare-lf": lambda: web.Response(text="x", headers={"X-Evil": "a\nInjected: yes"}),
    "value-nul": lambda: web.Response(text="x", headers={"X-Evil": "a\x00b"}),
    "name-colon": lambda: web.Response(text="x", headers={"X-Evil: Injected": "yes"}),
    "name-space": lambda: web.Response(text="x", headers={"X Evil": "yes"}),
    "name-empty": lambda: web.Response(text="x", headers={"": "yes"}),
    "name-nul": lambda: web.Response(text="x", headers={"X\x00": "yes"}),
    "reason-crlf": lambda: web.Response(text="x", reason="OK\r\nInjected: yes"),
    "reason-nul": lambda: web.Response(text="x", reason="OK\x00"),
    "status-1000": lambda: web.Response(text="x", status=1000),
    "status-99": lambda: web.Response(text="x", status=99),
    "status-0": lambda: web.Response(text="x", status=0),
    "status-negative": lambda: web.Response(text="x", status=-200),
    "content-type": lambda: web.Response(text="x", content_type="text/plain\r\nInjected: yes"),
    "charset": lambda: web.Response(text="x", charset="utf-8\r\nInjected: yes"),
    "json-headers": lambda: web.json_response({}, headers={"X-Evil": EVIL}),
    "exception-headers": lambda: web.HTTPForbidden(headers={"X-Evil": EVIL}),
}


def _cookie(kind: str) -> web.StreamResponse:
    resp = web.Response(text="x")
    if kind == "path":
        resp.set_cookie("a", "1", path="/\r\nInjected: yes")
    elif kind == "domain":
        resp.set_cookie("a", "1", domain="x\r\nInjected: yes")
    elif kind == "samesite":
        resp.set_cookie("a", "1", samesite="Lax\r\nInjected: yes")
    elif kind == "name":
        resp.set_cookie("a\r\nInjected", "1")
    return resp


COOKIE_CASES = ["path", "domain", "samesite", "name"]


async def _raise(request: web.Request) -> web.StreamResponse:
    resp = WEB_CASES[request.match_info["case"]]()
    if isinstance(resp, web.HTTPException):
        raise resp
    return resp


async def _returned(request: web.Request) -> web.StreamResponse:
    return WEB_CASES[request.match_info["case"]]()


async def _cookies(request: web.Request) -> web.StreamResponse:
    return _cookie(request.match_info["kind"])


async def _stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(reason="OK\r\nInjected: yes")
    await resp.prepare(request)
    await resp.write(b"x")
    return resp


async def _cookie_value(request: web.Request) -> web.StreamResponse:
    resp = web.Response(text="x")
    resp.set_cookie("a", "v\r\nInjected: yes")  # a value is quoted: harmless, kept
    return resp


async def _redirect(request: web.Request) -> web.StreamResponse:
    exc = web.HTTPFound("/next\r\nInjected: yes")
    if request.match_info["how"] == "raised":
        raise exc
    return exc


async def _hello(request: web.Request) -> web.StreamResponse:
    return web.Response(text="canary")


def _app() -> web.Application:
    app = web.Application()
    app.add_routes(
        [
            web.get("/web/{case}", _raise),
            web.get("/returned/{case}", _returned),
            web.get("/cookie/{kind}", _cookies),
            web.get("/cookie-value", _cookie_value),
            web.get("/stream-reason", _stream),
            web.get("/redirect/{how}", _redirect),
            web.get("/canary", _hello),
        ]
    )
    return app


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve(_app(), access_log=None) as srv:
        yield srv.port


def _exchange(port: int, path: str) -> bytes:
    canary = b"GET /canary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    return raw_request(
        port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n" + canary, timeout=3
    )


def _assert_one_500(data: bytes) -> None:
    replies, complete = read_replies(data)
    assert complete, data
    assert replies and replies[0].status == 500, data[:200]
    for reply in replies:
        assert all(b"injected" not in name.lower() for name, _ in reply.headers), data
    # The 500 closes the connection (its framing is sound, but the handler failed): the
    # canary is either not answered or answered whole, never as part of another response.
    assert [r.status for r in replies[1:]] in ([], [200])
    assert b"\nInjected" not in data


@pytest.mark.parametrize("case", sorted(WEB_CASES))
def test_web_response_with_unsafe_head_is_a_500(port: int, case: str) -> None:
    _assert_one_500(_exchange(port, f"/web/{case}"))


def test_returned_http_exception_with_unsafe_head_is_a_500(port: int) -> None:
    _assert_one_500(_exchange(port, "/returned/exception-headers"))


@pytest.mark.parametrize("how", ["raised", "returned"])
def test_redirect_location_with_crlf_is_cleaned_by_the_url(port: int, how: str) -> None:
    """yarl drops CR/LF from a URL (as on aiohttp): one 302, no header of the client's."""
    replies, complete = read_replies(_exchange(port, f"/redirect/{how}"))
    assert complete and [r.status for r in replies][:1] == [302]
    assert replies[0].header(b"location") == b"/nextInjected:%20yes"
    assert all(name.lower() != b"injected" for name, _ in replies[0].headers)


@pytest.mark.parametrize("kind", COOKIE_CASES)
def test_cookie_with_crlf_is_a_500(port: int, kind: str) -> None:
    _assert_one_500(_exchange(port, f"/cookie/{kind}"))


def test_stream_response_reason_with_crlf_is_a_500(port: int) -> None:
    _assert_one_500(_exchange(port, "/stream-reason"))


def test_cookie_value_with_crlf_is_quoted_not_split(port: int) -> None:
    replies, complete = read_replies(_exchange(port, "/cookie-value"))
    assert complete and [r.status for r in replies] == [200, 200]
    cookie = replies[0].header(b"set-cookie")
    assert cookie is not None and b"\r" not in cookie and b"\n" not in cookie
    assert replies[1].body == b"canary"


# -- the ASGI path -----------------------------------------------------------------------------

ASGI_CASES: dict[str, dict[str, Any]] = {
    "value-crlf": {"status": 200, "headers": [(b"x-evil", EVIL.encode())]},
    "value-bare-lf": {"status": 200, "headers": [(b"x-evil", b"a\nInjected: yes")]},
    "value-nul": {"status": 200, "headers": [(b"x-evil", b"a\x00b")]},
    "name-space": {"status": 200, "headers": [(b"x evil", b"yes")]},
    "name-colon": {"status": 200, "headers": [(b"x-evil:", b"yes")]},
    "name-empty": {"status": 200, "headers": [(b"", b"yes")]},
    "name-str": {"status": 200, "headers": [("x-evil", "yes")]},
    "status-1000": {"status": 1000, "headers": []},
    "status-99": {"status": 99, "headers": []},
    "status-str": {"status": "200 OK\r\nInjected: yes", "headers": []},
    "content-length-crlf": {"status": 200, "headers": [(b"content-length", b"1\r\n\r\nX")]},
}


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/canary":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"canary"})
        return
    start = ASGI_CASES[scope["path"].strip("/")]
    await send({"type": "http.response.start", **start})
    await send({"type": "http.response.body", "body": b"x"})


class _ASGIThread(LoopThread):
    def __init__(self) -> None:
        super().__init__()
        self.port = 0

    async def serve(self, stop: asyncio.Event) -> None:
        async with asgi_serve(_asgi_app, "127.0.0.1", 0, lifespan=False) as server:
            self.port = server.port
            self.ready()
            await stop.wait()


@pytest.fixture(scope="module")
def asgi_port() -> Iterator[int]:
    thread = _ASGIThread().start()
    try:
        yield thread.port
    finally:
        thread.stop()


@pytest.mark.parametrize("case", sorted(ASGI_CASES))
def test_asgi_response_with_unsafe_head_is_a_500(asgi_port: int, case: str) -> None:
    _assert_one_500(_exchange(asgi_port, f"/{case}"))
