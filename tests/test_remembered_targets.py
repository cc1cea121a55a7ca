"""The handler remembers what a request target resolved to (web/handler.py, ``_remember``).

A request for a target seen before skips the path decoding and the router. Each test asks the
same target several times over one keep-alive connection (the first asks the router, the rest
use what it remembered) and checks that every answer is the one the router would give.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from squall import web
from squall.web.handler import SEEN_MAX, SEEN_PAUSE, SEEN_TARGET_MAX, AppHandler

from .conftest import ServerThread, serve

TIMEOUT = 5.0


def handler_of(server: ServerThread) -> AppHandler:
    assert server.runner is not None and server.runner.server is not None
    handler = server.runner.server.handler
    assert isinstance(handler, AppHandler)
    return handler


def remembered(server: ServerThread) -> dict[bytes, Any]:
    handler = handler_of(server)
    return dict(server.call(lambda: dict(handler._seen)))


def test_each_request_gets_its_own_match_info() -> None:
    async def handle(request: web.Request) -> web.Response:
        info = request.match_info
        seen = dict(info)
        info["name"] = "changed"  # a handler may change its match info: the next one is fresh
        info["extra"] = "x"
        assert isinstance(info, web.UrlMappingMatchInfo) and isinstance(info, dict)
        assert repr(info).startswith("<MatchInfo {")
        assert info.handler is handle and info.get_info()["formatter"] == "/hello/{name}"
        return web.json_response(
            {
                "seen": seen,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": dict(request.query),
                "apps": len(info.apps),
                "current": info.current_app is request.app,
                "frozen": _frozen(info),
                "route": info.route.resource.canonical,
                "current_after_set": _set_current(info, request.app),
            }
        )

    app = web.Application()
    app.router.add_get("/hello/{name}", handle)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(3):
            body = client.get("/hello/World?x=1").json()
            assert body == {
                "seen": {"name": "World"},
                "path": "/hello/World",
                "raw_path": "/hello/World?x=1",
                "query": {"x": "1"},
                "apps": 1,
                "current": True,
                "frozen": True,
                "route": "/hello/{name}",
                "current_after_set": True,
            }
        assert b"/hello/World?x=1" in remembered(server)


def _set_current(info: web.UrlMappingMatchInfo, app: web.Application) -> bool:
    """Set current_app (as a sub-application's middleware does), and back."""
    other = web.Application()
    info.current_app = other
    ok = info.current_app is other
    info.current_app = app
    return ok and info.current_app is app


def _frozen(info: web.UrlMappingMatchInfo) -> bool:
    try:
        info.add_app(web.Application())
    except RuntimeError:
        return True
    return False


def test_the_method_is_part_of_what_is_remembered() -> None:
    async def read(request: web.Request) -> web.Response:
        return web.Response(text=f"read {request.match_info['id']}")

    async def write(request: web.Request) -> web.Response:
        return web.Response(text=f"write {request.match_info['id']}")

    app = web.Application()
    app.router.add_get("/item/{id}", read)
    app.router.add_post("/item/{id}", write)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(2):
            assert client.get("/item/7").text == "read 7"
            assert client.post("/item/7").text == "write 7"
            assert client.head("/item/7").status_code == 200  # GET's route answers HEAD
            assert client.put("/item/7").status_code == 405
            assert client.get("/item/7").text == "read 7"


def test_escaped_and_plain_paths_are_decoded_the_same_way_on_every_request() -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response(
            {"path": request.path, "name": request.match_info.get("name"), "url": str(request.url)}
        )

    app = web.Application()
    app.router.add_get("/a/{name}", handle)
    app.router.add_get("/plain path", handle)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(3):
            body = client.get("/a/caf%C3%A9%20x").json()
            assert body["path"] == "/a/café x"
            assert body["name"] == "café x"
            assert body["url"].endswith("/a/caf%C3%A9%20x")
            body = client.get("/plain%20path").json()
            assert body == {"path": "/plain path", "name": None, "url": body["url"]}
            assert client.get("/a/x%2Fy").json()["name"] == "x/y"


def test_middlewares_run_on_every_request() -> None:
    calls: list[str] = []

    @web.middleware
    async def outer(request: web.Request, handler: Any) -> web.StreamResponse:
        calls.append("outer")
        resp = await handler(request)
        resp.headers["X-Outer"] = "1"
        return resp

    async def handle(request: web.Request) -> web.Response:
        calls.append("handler")
        return web.Response(text="ok")

    app = web.Application(middlewares=[outer])
    app.router.add_get("/{name}", handle)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(3):
            resp = client.get("/x")
            assert resp.text == "ok" and resp.headers["X-Outer"] == "1"
    assert calls == ["outer", "handler"] * 3


def test_sub_application_routes_are_resolved_each_time() -> None:
    async def handle(request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(
            {
                "apps": len(info.apps),
                "current": info.current_app is sub,
                "app": request.app is sub,
                "name": info["name"],
            }
        )

    sub = web.Application()
    sub.router.add_get("/{name}", handle)
    app = web.Application()
    app.add_subapp("/sub", sub)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(3):
            body = client.get("/sub/x").json()
            assert body == {"apps": 2, "current": True, "app": True, "name": "x"}
        assert remembered(server) == {}


def test_not_found_and_static_resources_are_not_remembered(tmp_path: Any) -> None:
    (tmp_path / "f.txt").write_text("file")

    async def handle(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/only", handle)
    app.router.add_static("/static", tmp_path)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(2):
            assert client.get("/missing").status_code == 404
            assert client.post("/only").status_code == 405
            assert client.get("/static/f.txt").text == "file"
            assert client.get("/only").text == "ok"
        assert list(remembered(server)) == [b"/only"]


def names_app() -> web.Application:
    """``/{name}`` answering the name."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["name"])

    app = web.Application()
    app.router.add_get("/{name}", handle)
    return app


def pipeline(port: int, targets: list[bytes], batch: int = 200) -> None:
    """GET each target over one connection, ``batch`` requests per write; all must answer 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        for start in range(0, len(targets), batch):
            some = targets[start : start + batch]
            sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % t for t in some))
            data = b""
            while data.count(b"HTTP/1.1 ") < len(some) or not data.endswith(some[-1][1:]):
                chunk = sock.recv(65536)
                assert chunk, data[-200:]
                data += chunk
            assert data.count(b"HTTP/1.1 200 OK") == len(some)


def test_targets_hardly_asked_again_pause_the_memory_for_a_while() -> None:
    with serve(names_app()) as server:
        handler = handler_of(server)
        # Full of targets asked for once: nothing more is added for SEEN_PAUSE misses, and what
        # is there still answers.
        pipeline(server.port, [b"/a%d" % i for i in range(SEEN_MAX)])
        assert len(remembered(server)) == SEEN_MAX
        pipeline(server.port, [b"/b%d" % i for i in range(100)] + [b"/a0", b"/a1"])
        seen = remembered(server)
        assert len(seen) == SEEN_MAX and b"/b0" not in seen and b"/a0" in seen
        assert server.call(lambda: handler._seen_hits) == 2
        # After the pause the memory starts afresh.
        pipeline(server.port, [b"/c%d" % i for i in range(SEEN_PAUSE)])
        seen = remembered(server)
        assert b"/a0" not in seen and b"/c%d" % (SEEN_PAUSE - 1) in seen


def test_a_memory_full_of_targets_asked_again_starts_afresh() -> None:
    with serve(names_app()) as server:
        first = [b"/a%d" % i for i in range(SEEN_MAX)]
        pipeline(server.port, first + first)  # each asked twice: SEEN_MAX hits
        pipeline(server.port, [b"/new"])
        assert list(remembered(server)) == [b"/new"]


def test_what_is_remembered_is_bounded() -> None:
    with serve(names_app()) as server:
        # No target longer than SEEN_TARGET_MAX bytes, and never more than SEEN_MAX of them.
        long_target = b"/" + b"x" * SEEN_TARGET_MAX
        pipeline(server.port, [long_target, b"/short"])
        seen = remembered(server)
        assert long_target not in seen and b"/short" in seen
        pipeline(server.port, [b"/n%d" % i for i in range(SEEN_MAX + 200)])
        assert len(remembered(server)) == SEEN_MAX


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_remembered_route_answers_like_the_first_time(method: str) -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=f"Hello, {request.match_info.get('name', 'Anonymous')}!")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    app.router.add_get("/", handle)
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        first = [client.request(method, p) for p in ("/World", "/")]
        again = [client.request(method, p) for p in ("/World", "/")]
        for a, b in zip(first, again, strict=True):
            assert (a.status_code, a.content, a.headers.get("Content-Length")) == (
                b.status_code,
                b.content,
                b.headers.get("Content-Length"),
            )
        if method == "GET":
            assert [r.text for r in again] == ["Hello, World!", "Hello, Anonymous!"]
