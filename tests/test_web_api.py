"""The aiohttp.web core API against a real squall server: aiohttp's client, httpx, curl, sockets.

Every assertion states what aiohttp's documentation (and aiohttp 3.14 itself) does. To check the
assertions themselves, run this file against aiohttp: ``SQUALL_REFERENCE=aiohttp pytest ...``
serves the same applications with ``aiohttp.web`` instead of ``squall.web``. Where aiohttp itself
falls short (a CR/LF header drops the connection instead of a 500; HEAD on a StreamResponse sends
the body), the test says so and asserts what the issue asks of squall.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.web as aiohttp_web
import httpx
import pytest
from multidict import CIMultiDictProxy
from yarl import URL

from squall import web as squall_web

from .conftest import ServerThread, is_closed, raw_request, read_until_close

REFERENCE = os.environ.get("SQUALL_REFERENCE") == "aiohttp"
web: Any = aiohttp_web if REFERENCE else squall_web

MiB = 1024 * 1024


class AiohttpServerThread(ServerThread):
    """The conftest server thread, serving with aiohttp (reference mode only)."""

    async def serve(self, stop: asyncio.Event) -> None:
        runner = aiohttp_web.AppRunner(self.app, **self.runner_kwargs)  # type: ignore[arg-type]
        self.runner = runner  # type: ignore[assignment]
        await runner.setup()
        site = aiohttp_web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self.ready()
        await stop.wait()
        await runner.cleanup()


@contextlib.contextmanager
def serve_any(app: Any, **kwargs: Any) -> Iterator[ServerThread]:
    cls = AiohttpServerThread if REFERENCE else ServerThread
    srv = cls(app, **kwargs).start()
    try:
        yield srv
    finally:
        srv.stop()


# -- the application under test -------------------------------------------------------------------

APP_NAME = web.AppKey("app_name", str)
SEEN: dict[str, str] = {}


def build_app(client_max_size: int = MiB) -> Any:
    routes = web.RouteTableDef()

    @routes.get("/hello/{name}")
    async def hello(request: Any) -> Any:
        return web.Response(text=f"Hello, {request.match_info['name']}!")

    @routes.route("*", "/info/{tail:.*}")
    async def info(request: Any) -> Any:
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": [list(kv) for kv in request.query.items()],
                "query_string": request.query_string,
                "version": list(request.version),
                "host": request.host,
                "scheme": request.scheme,
                "remote": request.remote,
                "url": str(request.url),
                "rel_url": str(request.rel_url),
                "keep_alive": request.keep_alive,
                "content_type": request.content_type,
                "charset": request.charset,
                "content_length": request.content_length,
                "can_read_body": request.can_read_body,
                "body_exists": request.body_exists,
                "cookies": dict(request.cookies),
                "headers_type": type(request.headers).__name__,
                "header_lower": request.headers.get("x-test-header"),
                "header_upper": request.headers.get("X-TEST-HEADER"),
                "header_in": "X-TeSt-HeAdEr" in request.headers,
                "multi": request.headers.getall("x-multi", []),
                "match_info": dict(request.match_info),
                "app_name": request.app[APP_NAME],
            }
        )

    @routes.get(r"/items/{id:\d+}")
    async def item(request: Any) -> Any:
        return web.Response(text="item " + request.match_info["id"])

    @routes.get("/files/{path:.+}")
    async def files(request: Any) -> Any:
        return web.Response(text=request.match_info["path"])

    @routes.post("/echo")
    async def echo(request: Any) -> Any:
        body = await request.read()
        return web.Response(body=body, content_type=request.content_type)

    @routes.post("/text")
    async def text(request: Any) -> Any:
        return web.json_response({"text": await request.text(), "charset": request.charset})

    @routes.post("/json")
    async def json_in(request: Any) -> Any:
        return web.json_response({"got": await request.json()})

    @routes.post("/form")
    async def form(request: Any) -> Any:
        data = await request.post()
        return web.json_response([list(kv) for kv in data.items()])

    @routes.get("/response/custom")
    async def custom(request: Any) -> Any:
        return web.Response(text="custom", status=201, reason="Made It", headers={"X-A": "1"})

    @routes.get("/response/body")
    async def body(request: Any) -> Any:
        return web.Response(body=b"\x00\x01\x02", content_type="application/x-bin")

    @routes.get("/response/charset")
    async def charset(request: Any) -> Any:
        return web.Response(text="h\xe9llo", charset="latin-1")

    @routes.get("/response/html")
    async def html(request: Any) -> Any:
        resp = web.Response(text="<b>x</b>", content_type="text/html")
        assert resp.content_type == "text/html" and resp.charset == "utf-8"
        return resp

    @routes.get("/response/headers")
    async def headers(request: Any) -> Any:
        resp = web.Response(text="h", headers={"X-One": "1"})
        resp.headers["X-Two"] = "2"
        resp.headers.add("X-Multi", "a")
        resp.headers.add("X-Multi", "b")
        return resp

    @routes.get("/response/cookies")
    async def cookies(request: Any) -> Any:
        resp = web.Response(text="cookies")
        resp.set_cookie("a", "1", httponly=True, max_age=60)
        resp.set_cookie("b", "two", path="/x", domain="example.com", secure=True, samesite="Lax")
        resp.del_cookie("gone")
        return resp

    @routes.get("/response/json")
    async def json_out(request: Any) -> Any:
        return web.json_response({"a": [1, 2], "b": "\xe9"}, status=202)

    @routes.get("/stream")
    async def stream(request: Any) -> Any:
        resp = web.StreamResponse()
        resp.content_type = "text/plain"
        await resp.prepare(request)
        for i in range(int(request.query.get("n", "3"))):
            await resp.write(f"part {i}\n".encode())
        await resp.write_eof()
        return resp

    @routes.get("/stream/length")
    async def stream_length(request: Any) -> Any:
        resp = web.StreamResponse(status=200, reason="Fine", headers={"X-S": "1"})
        resp.content_length = 6
        await resp.prepare(request)
        await resp.write(b"abc")
        await resp.write(b"def")
        await resp.write_eof()
        return resp

    @routes.get("/stream/chunked")
    async def stream_chunked(request: Any) -> Any:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.prepare(request)  # a second prepare is a no-op
        SEEN["prepared"] = str(resp.prepared)
        await resp.write(b"one")
        await resp.write_eof(b"two")
        try:
            await resp.write(b"late")
        except RuntimeError:
            SEEN["write_after_eof"] = "RuntimeError"
        else:
            SEEN["write_after_eof"] = "no error"
        return resp

    @routes.get("/raise/forbidden")
    async def forbidden(request: Any) -> Any:
        raise web.HTTPForbidden(text="no tea")

    @routes.get("/raise/headers")
    async def raise_headers(request: Any) -> Any:
        raise web.HTTPBadRequest(text="bad", headers={"X-Why": "because"})

    @routes.get("/raise/found")
    async def found(request: Any) -> Any:
        raise web.HTTPFound("/hello/there")

    @routes.get("/raise/default")
    async def conflict(request: Any) -> Any:
        raise web.HTTPConflict()

    @routes.get("/raise/returned")
    async def returned(request: Any) -> Any:
        return web.HTTPNotFound(text="returned")

    @routes.get("/raise/not-found")
    async def handler_not_found(request: Any) -> Any:
        raise web.HTTPNotFound()

    @routes.get("/raise/no-content")
    async def no_content(request: Any) -> Any:
        raise web.HTTPNoContent()

    @routes.get("/bad-header/value")
    async def bad_value(request: Any) -> Any:
        return web.Response(text="x", headers={"X-Evil": "a\r\nInjected: yes"})

    @routes.get("/bad-header/set")
    async def bad_set(request: Any) -> Any:
        resp = web.Response(text="x")
        resp.headers["X-Evil"] = "a\nInjected: yes"
        return resp

    @routes.get("/bad-header/name")
    async def bad_name(request: Any) -> Any:
        return web.Response(text="x", headers={"X-Evil\r\nInjected": "yes"})

    @routes.get("/bad-header/stream")
    async def bad_stream(request: Any) -> Any:
        resp = web.StreamResponse(headers={"X-Evil": "a\r\nInjected: yes"})
        await resp.prepare(request)
        await resp.write(b"x")
        return resp

    @routes.get("/trail")
    async def trail(request: Any) -> Any:
        return web.Response(text=",".join(request["trail"]))

    @routes.view("/view")
    class MyView(web.View):  # type: ignore[misc,name-defined]
        async def get(self) -> Any:
            return web.Response(text="view get")

        async def post(self) -> Any:
            return web.Response(text="view post " + (await self.request.text()))

    @routes.get("/table")
    async def table_get(request: Any) -> Any:
        return web.Response(text="table get")

    @routes.post("/table")
    async def table_post(request: Any) -> Any:
        return web.Response(text="table post")

    @web.middleware
    async def outer(request: Any, handler: Any) -> Any:
        request["trail"] = ["outer"]
        resp = await handler(request)
        resp.headers.add("X-Trail", "outer")
        return resp

    @web.middleware
    async def inner(request: Any, handler: Any) -> Any:
        request["trail"].append("inner")
        resp = await handler(request)
        resp.headers.add("X-Trail", "inner")
        return resp

    async def nohead(request: Any) -> Any:
        return web.Response(text="no head")

    app = web.Application(middlewares=[outer, inner], client_max_size=client_max_size)
    app[APP_NAME] = "api"
    app.add_routes(routes)
    app.router.add_get("/nohead", nohead, allow_head=False)
    return app


@pytest.fixture(scope="module")
def api() -> Iterator[ServerThread]:
    with serve_any(build_app()) as srv:
        yield srv


# -- clients --------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    reason: str | None
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


async def _afetch(method: str, url: str | URL, **kwargs: Any) -> Reply:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, allow_redirects=False, **kwargs) as resp,
    ):
        return Reply(resp.status, resp.reason, resp.headers, await resp.read())


def fetch(method: str, url: str | URL, **kwargs: Any) -> Reply:
    """One request with aiohttp's ClientSession."""
    return asyncio.run(_afetch(method, url, **kwargs))


def enc(srv: ServerThread, target: str) -> URL:
    """An already-encoded URL, sent by the client as written."""
    return URL(srv.url + target, encoded=True)


def raw(srv: ServerThread, data: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes, read until close; (head, body)."""
    head, _, body = raw_request(srv.port, data).partition(b"\r\n\r\n")
    return head, body


def head_lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")


# -- Request --------------------------------------------------------------------------------------


def test_request_line_properties(api: ServerThread) -> None:
    r = fetch("GET", enc(api, "/info/a%20b/c?x=1&x=2&y=%C3%A9&z="))
    assert r.status == 200
    d = r.json()
    assert d["method"] == "GET"
    assert d["path"] == "/info/a b/c"
    assert d["raw_path"] == "/info/a%20b/c?x=1&x=2&y=%C3%A9&z="
    assert d["query"] == [["x", "1"], ["x", "2"], ["y", "\xe9"], ["z", ""]]
    assert d["query_string"] == "x=1&x=2&y=\xe9&z="
    assert d["version"] == [1, 1]
    assert d["host"] == f"127.0.0.1:{api.port}"
    assert d["scheme"] == "http"
    assert d["remote"] == "127.0.0.1"
    assert d["url"] == f"http://127.0.0.1:{api.port}/info/a%20b/c?x=1&x=2&y=%C3%A9&z="
    assert d["rel_url"] == "/info/a%20b/c?x=1&x=2&y=%C3%A9&z="
    assert d["keep_alive"] is True
    assert d["match_info"] == {"tail": "a b/c"}
    assert d["app_name"] == "api"


def test_request_methods_on_a_star_route(api: ServerThread) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            r = client.request(method, "/info/m")
            assert r.status_code == 200
            assert r.json()["method"] == method


def test_request_query_plain_and_plus(api: ServerThread) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        d = client.get("/info/q", params=[("k", "a b"), ("k", "c&d"), ("e", "")]).json()
    assert d["query"] == [["k", "a b"], ["k", "c&d"], ["e", ""]]
    assert d["path"] == "/info/q"


@pytest.mark.parametrize(
    ("target", "query_string"),
    [
        ("/info/q?k=v&k=w", "k=v&k=w"),
        ("/info/q?k=a+b", "k=a b"),  # yarl's URL.query_string, which aiohttp returns
        ("/info/q?y=%C3%A9&s=%20", "y=\xe9&s= "),
        ("/info/q", ""),
    ],
)
def test_request_query_string_is_decoded(api: ServerThread, target: str, query_string: str) -> None:
    r = fetch("GET", enc(api, target))
    assert r.json()["query_string"] == query_string


def test_request_host_and_url_follow_the_host_header(api: ServerThread) -> None:
    head, body = raw(
        api,
        b"GET /info/h?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 200 ")
    d = json.loads(body)
    assert d["host"] == "example.com:8080"
    assert d["url"] == "http://example.com:8080/info/h?a=1"
    assert d["rel_url"] == "/info/h?a=1"
    assert d["keep_alive"] is False


def test_request_host_without_host_header_is_the_local_address(api: ServerThread) -> None:
    """HTTP/1.0 may omit Host: aiohttp 3.14 then gives the address the request came in on."""
    head, body = raw(api, b"GET /info/h HTTP/1.0\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 200 ", b"HTTP/1.1 200 "))  # the version: compat.md
    assert json.loads(body)["host"] == "127.0.0.1"


def test_request_headers_are_a_case_insensitive_multidict(api: ServerThread) -> None:
    headers = [("X-Test-Header", "v1"), ("X-Multi", "a"), ("x-multi", "b")]
    with httpx.Client(base_url=api.url, timeout=10) as client:
        d = client.get("/info/h", headers=headers).json()
    assert d["headers_type"] == "CIMultiDictProxy"
    assert d["header_lower"] == d["header_upper"] == "v1"
    assert d["header_in"] is True
    assert d["multi"] == ["a", "b"]


def test_request_cookies(api: ServerThread) -> None:
    d = fetch("GET", api.url + "/info/c", headers={"Cookie": "a=1; b=two"}).json()
    assert d["cookies"] == {"a": "1", "b": "two"}
    with httpx.Client(base_url=api.url, timeout=10) as client:
        d = client.get("/info/c", headers={"Cookie": 'x="quoted"; y=2'}).json()
    assert d["cookies"] == {"x": "quoted", "y": "2"}


def test_request_body_properties_with_a_body(api: ServerThread) -> None:
    d = fetch(
        "POST",
        api.url + "/info/b",
        data=b"abc",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    ).json()
    assert d["content_type"] == "text/plain"
    assert d["charset"] == "utf-8"
    assert d["content_length"] == 3
    assert d["can_read_body"] is True
    assert d["body_exists"] is True


def test_request_body_properties_without_a_body(api: ServerThread) -> None:
    d = fetch("GET", api.url + "/info/b").json()
    assert d["content_type"] == "application/octet-stream"
    assert d["charset"] is None
    assert d["content_length"] is None
    assert d["can_read_body"] is False
    assert d["body_exists"] is False


def test_request_body_properties_chunked(api: ServerThread) -> None:
    _, body = raw(
        api,
        b"POST /info/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    d = json.loads(body)
    assert d["content_type"] == "application/json"
    assert d["charset"] is None
    assert d["content_length"] is None
    assert d["can_read_body"] is True
    assert d["body_exists"] is True


def test_match_info_regex_route(api: ServerThread) -> None:
    assert fetch("GET", api.url + "/items/123").text == "item 123"
    assert fetch("GET", api.url + "/items/abc").status == 404
    assert fetch("GET", api.url + "/items/").status == 404


def test_match_info_is_percent_decoded(api: ServerThread) -> None:
    r = fetch("GET", enc(api, "/hello/J%C3%BCrgen%20Z"))
    assert r.text == "Hello, J\xfcrgen Z!"
    # An encoded slash is part of a {name} segment (not a separator), and decoded in match_info.
    r = fetch("GET", enc(api, "/hello/a%2Fb"))
    assert (r.status, r.text) == (200, "Hello, a/b!")
    assert fetch("GET", enc(api, "/files/dir/a%20b.txt")).text == "dir/a b.txt"


def test_request_state_and_app_key(api: ServerThread) -> None:
    # request[key] set by the middlewares, app[AppKey] read by the handler.
    assert fetch("GET", api.url + "/trail").text == "outer,inner"
    assert fetch("GET", api.url + "/info/k").json()["app_name"] == "api"


# -- reading the body -----------------------------------------------------------------------------


def test_read_echoes_bytes(api: ServerThread) -> None:
    payload = bytes(range(256)) * 100
    r = fetch("POST", api.url + "/echo", data=payload, headers={"Content-Type": "app/x"})
    assert r.status == 200
    assert r.body == payload
    assert r.headers["Content-Type"] == "app/x"


def test_text_uses_the_request_charset(api: ServerThread) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        r = client.post(
            "/text",
            content="h\xe9llo".encode("latin-1"),
            headers={"Content-Type": "text/plain; charset=latin-1"},
        )
        assert r.json() == {"text": "h\xe9llo", "charset": "latin-1"}
        r = client.post("/text", content="h\xe9llo".encode(), headers={"Content-Type": "text/x"})
        assert r.json() == {"text": "h\xe9llo", "charset": None}


def test_json_body(api: ServerThread) -> None:
    r = fetch("POST", api.url + "/json", json={"a": 1, "b": [True, None]})
    assert r.status == 200
    assert r.json() == {"got": {"a": 1, "b": [True, None]}}
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"


def test_json_body_does_not_check_the_content_type(api: ServerThread) -> None:
    # aiohttp's Request.json(*, loads=json.loads) takes no content_type and decodes any body.
    with httpx.Client(base_url=api.url, timeout=10) as client:
        r = client.post("/json", content=b'{"a": 1}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.json() == {"got": {"a": 1}}


def test_post_urlencoded_form(api: ServerThread) -> None:
    r = fetch(
        "POST",
        api.url + "/form",
        data="a=1&a=2&b=x+y&c=%C3%A9&d=",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json() == [["a", "1"], ["a", "2"], ["b", "x y"], ["c", "\xe9"], ["d", ""]]
    with httpx.Client(base_url=api.url, timeout=10) as client:
        r2 = client.post("/form", data={"k": "v w", "n": "1"})
    assert r2.json() == [["k", "v w"], ["n", "1"]]


# -- client_max_size: 413 -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/echo", "/text", "/json", "/form"])
def test_body_over_default_client_max_size_is_413(api: ServerThread, path: str) -> None:
    ctype = "application/x-www-form-urlencoded" if path == "/form" else "text/plain"
    r = fetch("POST", api.url + path, data=b"a" * (MiB + 1), headers={"Content-Type": ctype})
    assert r.status == 413
    assert "Maximum request body size 1048576 exceeded" in r.text
    assert fetch("GET", api.url + "/hello/after").text == "Hello, after!"


def test_body_of_exactly_client_max_size_is_read(api: ServerThread) -> None:
    r = fetch("POST", api.url + "/echo", data=b"a" * MiB)
    assert r.status == 200
    assert len(r.body) == MiB


@pytest.fixture(scope="module")
def small() -> Iterator[ServerThread]:
    with serve_any(build_app(client_max_size=100)) as srv:
        yield srv


@pytest.mark.parametrize("path", ["/echo", "/text", "/json", "/form"])
def test_small_client_max_size(small: ServerThread, path: str) -> None:
    ctype = "application/x-www-form-urlencoded" if path == "/form" else "application/json"
    with httpx.Client(base_url=small.url, timeout=10) as client:
        r = client.post(path, content=b"1" * 101, headers={"Content-Type": ctype})
        assert r.status_code == 413
        assert "Maximum request body size 100 exceeded" in r.text
        r = client.post(path, content=b"1" * 100, headers={"Content-Type": ctype})
        assert r.status_code == 200


def test_small_client_max_size_chunked_body(small: ServerThread) -> None:
    def gen() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 20

    with httpx.Client(base_url=small.url, timeout=10) as client:
        r = client.post("/echo", content=gen())
        assert r.status_code == 413
        r = client.post("/echo", content=iter([b"x" * 50, b"y" * 50]))
        assert (r.status_code, r.content) == (200, b"x" * 50 + b"y" * 50)


# -- Response -------------------------------------------------------------------------------------


def test_response_status_reason_and_headers(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/response/custom")
    assert r.status == 201
    assert r.reason == "Made It"
    assert r.headers["X-A"] == "1"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Content-Length"] == "6"
    assert r.body == b"custom"


def test_response_body_and_content_type(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/response/body")
    assert r.headers["Content-Type"] == "application/x-bin"
    assert r.body == b"\x00\x01\x02"
    r = fetch("GET", api.url + "/response/html")
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_response_charset(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/response/charset")
    assert r.headers["Content-Type"] == "text/plain; charset=latin-1"
    assert r.body == "h\xe9llo".encode("latin-1")


def test_response_multi_value_headers(api: ServerThread) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        r = client.get("/response/headers")
    assert r.headers["X-One"] == "1"
    assert r.headers["X-Two"] == "2"
    assert r.headers.get_list("X-Multi") == ["a", "b"]


def _cookie_attrs(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = [p.strip() for p in header.split(";")]
    attrs = {}
    for part in rest:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    return first, attrs


def test_set_cookie_and_del_cookie(api: ServerThread) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        r = client.get("/response/cookies")
    cookies = dict(_cookie_attrs(h) for h in r.headers.get_list("Set-Cookie"))
    assert cookies["a=1"] == {"httponly": "", "max-age": "60", "path": "/"}
    assert cookies["b=two"] == {
        "domain": "example.com",
        "path": "/x",
        "samesite": "Lax",
        "secure": "",
    }
    assert cookies['gone=""'] == {
        "expires": "Thu, 01 Jan 1970 00:00:00 GMT",
        "max-age": "0",
        "path": "/",
    }


def test_json_response(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/response/json")
    assert r.status == 202
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.json() == {"a": [1, 2], "b": "\xe9"}


def test_response_arguments_are_keyword_only() -> None:
    """As aiohttp's (squall declares them otherwise, for speed: see response.KEYWORDS_ONLY)."""
    with pytest.raises(TypeError):
        web.Response(b"body")
    with pytest.raises(TypeError):
        web.Response(None, 200)
    with pytest.raises(TypeError):
        web.json_response({"a": 1}, "text")
    assert web.json_response(data={"a": 1}).text == '{"a": 1}'
    assert web.Response(status=201, text="x").status == 201


# -- StreamResponse -------------------------------------------------------------------------------


def test_stream_response_is_chunked(api: ServerThread) -> None:
    head, body = raw(api, b"GET /stream?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Transfer-Encoding: chunked" in head_lines(head)
    assert b"Content-Type: text/plain" in head_lines(head)
    assert body == b"7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n"
    r = fetch("GET", api.url + "/stream?n=50")
    assert r.body == b"".join(f"part {i}\n".encode() for i in range(50))


def test_stream_response_with_content_length(api: ServerThread) -> None:
    head, body = raw(api, b"GET /stream/length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 Fine\r\n")
    lines = head_lines(head)
    assert b"Content-Length: 6" in lines and b"X-S: 1" in lines
    assert b"Transfer-Encoding: chunked" not in lines
    assert body == b"abcdef"


def test_stream_response_enable_chunked_and_write_after_eof(api: ServerThread) -> None:
    head, body = raw(api, b"GET /stream/chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head_lines(head)
    assert body == b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"
    assert SEEN.get("prepared") == "True"
    assert SEEN.get("write_after_eof") == "RuntimeError"


def _two_on_one_connection(srv: ServerThread, first: bytes) -> bytes:
    return raw_request(
        srv.port,
        first + b"GET /hello/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )


def test_head_on_a_stream_response_sends_no_body(api: ServerThread) -> None:
    # RFC 9110 9.3.2. (aiohttp 3.14 writes the streamed body after a HEAD head; squall must not.)
    data = _two_on_one_connection(api, b"HEAD /stream?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    first, _, second = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.endswith(b"\r\n\r\nHello, next!")


def test_no_content_has_no_body(api: ServerThread) -> None:
    data = _two_on_one_connection(api, b"GET /raise/no-content HTTP/1.1\r\nHost: x\r\n\r\n")
    first, _, second = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Transfer-Encoding" not in first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.endswith(b"\r\n\r\nHello, next!")


# -- HTTPException --------------------------------------------------------------------------------


def test_http_exception_raised_with_text(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/raise/forbidden")
    assert (r.status, r.text) == (403, "no tea")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_http_exception_with_headers(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/raise/headers")
    assert (r.status, r.text) == (400, "bad")
    assert r.headers["X-Why"] == "because"


def test_http_exception_default_text(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/raise/default")
    assert (r.status, r.reason, r.text) == (409, "Conflict", "409: Conflict")


def test_http_found_has_location(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/raise/found")
    assert r.status == 302
    assert r.headers["Location"] == "/hello/there"
    assert r.text == "302: Found"
    with httpx.Client(base_url=api.url, timeout=10, follow_redirects=True) as client:
        assert client.get("/raise/found").text == "Hello, there!"


def test_http_exception_returned(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/raise/returned")
    assert (r.status, r.text) == (404, "returned")


def test_404_for_an_unknown_path(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/nowhere/at/all")
    assert (r.status, r.reason, r.text) == (404, "Not Found", "404: Not Found")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_405_lists_allowed_methods(api: ServerThread) -> None:
    r = fetch("POST", api.url + "/hello/x")
    assert (r.status, r.text) == (405, "405: Method Not Allowed")
    assert r.headers["Allow"] == "GET,HEAD"
    r = fetch("DELETE", api.url + "/table")
    assert r.status == 405
    assert r.headers["Allow"] == "GET,HEAD,POST"


# -- middlewares ----------------------------------------------------------------------------------


def test_middlewares_first_listed_runs_outermost(api: ServerThread) -> None:
    r = fetch("GET", api.url + "/trail")
    assert r.text == "outer,inner"
    assert r.headers.getall("X-Trail") == ["inner", "outer"]


def test_middleware_sets_an_attribute_of_its_own_on_the_request() -> None:
    # aiohttp's Request takes attributes of the application's own (a DeprecationWarning in its
    # debug mode only); an auth middleware's `request.user = ...` is common.
    @web.middleware
    async def auth(request: Any, handler: Any) -> Any:
        request.user = "alice"
        return await handler(request)

    async def whoami(request: Any) -> Any:
        return web.Response(text=f"{request.user} {getattr(request, 'missing', '-')}")

    app = web.Application(middlewares=[auth])
    app.router.add_get("/", whoami)
    with serve_any(app) as srv:
        assert fetch("GET", srv.url + "/").text == "alice -"


def _not_found_app() -> Any:
    @web.middleware
    async def custom_404(request: Any, handler: Any) -> Any:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.Response(status=404, text=f"custom 404 for {request.path}")

    async def exists(request: Any) -> Any:
        return web.Response(text="here")

    async def raises(request: Any) -> Any:
        raise web.HTTPNotFound()

    app = web.Application(middlewares=[custom_404])
    app.router.add_get("/exists", exists)
    app.router.add_get("/raises", raises)
    return app


def test_middleware_catches_http_not_found() -> None:
    with serve_any(_not_found_app()) as srv:
        assert fetch("GET", srv.url + "/exists").text == "here"
        r = fetch("GET", srv.url + "/missing")
        assert (r.status, r.text) == (404, "custom 404 for /missing")
        r = fetch("GET", srv.url + "/raises")
        assert (r.status, r.text) == (404, "custom 404 for /raises")


# -- routes: RouteTableDef, View, HEAD ------------------------------------------------------------


def test_route_table_def(api: ServerThread) -> None:
    assert fetch("GET", api.url + "/table").text == "table get"
    assert fetch("POST", api.url + "/table").text == "table post"


def test_class_based_view(api: ServerThread) -> None:
    assert fetch("GET", api.url + "/view").text == "view get"
    assert fetch("POST", api.url + "/view", data=b"body").text == "view post body"
    for method in ("PUT", "DELETE", "PATCH"):
        r = fetch(method, api.url + "/view")
        assert r.status == 405
        assert r.headers["Allow"] == "GET,POST"


def test_add_get_serves_head_unless_disallowed(api: ServerThread) -> None:
    r = fetch("HEAD", api.url + "/hello/x")
    assert r.status == 200
    assert r.headers["Content-Length"] == "9"
    assert r.body == b""
    assert fetch("GET", api.url + "/nohead").text == "no head"
    r = fetch("HEAD", api.url + "/nohead")
    assert r.status == 405
    assert r.headers["Allow"] == "GET"


async def _h(request: Any) -> Any:
    return web.Response()


def _twice_get(app: Any) -> None:
    app.router.add_get("/x", _h)
    app.router.add_get("/x", _h)


def _star_then_get(app: Any) -> None:
    app.router.add_route("*", "/x", _h)
    app.router.add_get("/x", _h)


def _get_then_head(app: Any) -> None:
    app.router.add_get("/x", _h)
    app.router.add_head("/x", _h)


def _post_twice(app: Any) -> None:
    app.router.add_post("/x", _h)
    app.router.add_route("POST", "/x", _h)


def _defs_twice(app: Any) -> None:
    app.add_routes([web.get("/x", _h), web.get("/x", _h)])


@pytest.mark.parametrize(
    "register", [_twice_get, _star_then_get, _get_then_head, _post_twice, _defs_twice]
)
def test_duplicate_method_on_a_resource_raises_runtime_error(register: Any) -> None:
    with pytest.raises(RuntimeError):
        register(web.Application())


def test_other_registration_errors() -> None:
    router = web.Application().router
    with pytest.raises(ValueError):
        router.add_get("no-slash", _h)
    with pytest.raises(ValueError):
        router.add_get("/a/{b", _h)
    with pytest.raises(ValueError):
        router.add_get("/a/{b:(}", _h)
    with pytest.raises(ValueError):
        router.add_route("GE T", "/a", _h)
    router.add_get("/named", _h, name="same")
    with pytest.raises(ValueError):
        router.add_get("/other", _h, name="same")
    with pytest.raises(ValueError):
        router.add_get("/kw", _h, name="class")


# -- response header injection --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["value", "set", "name", "stream"])
def test_header_with_cr_lf_is_a_500_not_a_split_response(api: ServerThread, path: str) -> None:
    # (aiohttp itself drops the connection without a response here; squall answers 500.)
    data = raw_request(
        api.port,
        f"GET /bad-header/{path} HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /hello/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    )
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), data
    assert b"\nInjected" not in data
    assert b"X-Evil" not in data
    # The connection either closes after the 500 or serves the next request whole.
    assert data.count(b"HTTP/1.1 ") <= 2
    if data.count(b"HTTP/1.1 ") == 2:
        assert data.endswith(b"\r\n\r\nHello, next!")
    assert fetch("GET", api.url + "/hello/ok").text == "Hello, ok!"


# -- HTTP/1.0 -------------------------------------------------------------------------------------


def test_http10_request(api: ServerThread) -> None:
    head, body = raw(api, b"GET /info/old HTTP/1.0\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 200 OK\r\n", b"HTTP/1.1 200 OK\r\n"))
    d = json.loads(body)
    assert d["version"] == [1, 0]
    assert d["keep_alive"] is False
    assert d["path"] == "/info/old"


def test_http10_keep_alive(api: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
        sock.sendall(b"GET /hello/one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, one!"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        assert b"\r\nConnection: keep-alive\r\n" in data
        sock.sendall(b"GET /hello/two HTTP/1.0\r\n\r\n")
        data = read_until_close(sock)
        assert data.endswith(b"\r\n\r\nHello, two!")
        assert is_closed(sock)


def test_http10_stream_response_is_close_delimited(api: ServerThread) -> None:
    head, body = raw(api, b"GET /stream?n=2 HTTP/1.0\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body == b"part 0\npart 1\n"


# -- curl -----------------------------------------------------------------------------------------

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args: str) -> tuple[str, str]:
    assert CURL is not None
    out = subprocess.run(
        [CURL, "-s", "-i", "--max-time", "10", *args], capture_output=True, timeout=15, check=True
    )
    head, _, body = out.stdout.decode().rpartition("\r\n\r\n")
    return head, body


@needs_curl
def test_curl_get(api: ServerThread) -> None:
    head, body = curl(api.url + "/hello/curl")
    assert head.startswith("HTTP/1.1 200 OK")
    assert "Content-Length: 12" in head.split("\r\n")
    assert body == "Hello, curl!"


@needs_curl
def test_curl_post_data(api: ServerThread) -> None:
    head, body = curl("-d", "a=1&b=two&a=3", api.url + "/form")
    assert head.startswith("HTTP/1.1 200 OK")
    assert json.loads(body) == [["a", "1"], ["b", "two"], ["a", "3"]]


@needs_curl
def test_curl_http10(api: ServerThread) -> None:
    head, body = curl("--http1.0", api.url + "/info/ten")
    assert head.startswith(("HTTP/1.0 200 OK", "HTTP/1.1 200 OK"))
    assert json.loads(body)["version"] == [1, 0]


@needs_curl
def test_curl_expect_100_continue(api: ServerThread) -> None:
    start = time.monotonic()
    head, body = curl(
        "-H", "Expect: 100-continue", "--expect100-timeout", "5", "--data-binary", "x" * 2000,
        api.url + "/echo",
    )  # fmt: skip
    assert time.monotonic() - start < 4  # the server sent 100 Continue; curl did not time out
    assert head.startswith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert body == "x" * 2000


# -- a streamed request body through aiohttp's client ---------------------------------------------


def test_streamed_upload_with_aiohttp_client(api: ServerThread) -> None:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(20):
            yield f"{i:04d}".encode()

    r = fetch("POST", api.url + "/echo", data=gen())
    assert r.body == b"".join(f"{i:04d}".encode() for i in range(20))
