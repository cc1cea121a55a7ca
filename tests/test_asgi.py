"""ASGI 3 on squall: a raw ASGI app, then real Starlette and FastAPI apps, over real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import pytest

from squall.asgi import ASGIServer, Lifespan, LifespanFailed, serve
from squall.asgi.types import Receive, Scope, Send
from squall.http.limits import Limits

from .conftest import is_closed, raw_request, read_until_close
from .loop_thread import LoopThread


class ASGIThread(LoopThread):
    """Serve an ASGI app with :func:`squall.asgi.serve` on an ephemeral port, in a thread."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__()
        self.app = app
        self.kwargs = kwargs
        self.server: ASGIServer | None = None

    async def serve(self, stop: asyncio.Event) -> None:
        async with serve(self.app, "127.0.0.1", 0, **self.kwargs) as server:
            self.server = server
            self.ready()
            await stop.wait()

    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        if self._error is not None:
            raise self._error

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def aio(coro: Any) -> Any:
    return asyncio.run(coro)


# -- a raw ASGI application -------------------------------------------------------------------

events: list[Any] = []


async def _read_body(receive: Receive) -> tuple[bytes, list[bool]]:
    body = b""
    flags = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message["body"]
        flags.append(message["more_body"])
        if not message["more_body"]:
            return body, flags


async def _respond(send: Send, body: bytes, status: int = 200, headers: Any = None) -> None:
    headers = headers if headers is not None else [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _jsonable(scope: Scope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in scope.items():
        if isinstance(value, bytes):
            out[key] = value.decode("latin-1")
        elif key == "headers":
            out[key] = [[n.decode(), v.decode()] for n, v in value]
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hi"
                await send({"type": "lifespan.startup.complete"})
            else:
                events.append("lifespan shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    path = scope["path"][len(scope["root_path"]) :]  # the path includes the root path
    if path == "/hello":
        await _respond(send, b"Hello, world")
    elif path.startswith("/scope"):
        await _respond(send, json.dumps(_jsonable(scope)).encode())
    elif path == "/echo":
        body, flags = await _read_body(receive)
        headers = [(b"x-messages", str(len(flags)).encode())]
        await _respond(send, body, headers=headers)
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/length":  # the app's Content-Length, body in pieces
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]}
        )
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
    elif path == "/too-long":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"abc"})
        events.append(("too-long", "sent"))
    elif path == "/204":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/headers":
        headers = [
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            (b"x-seen", b",".join(v for n, v in scope["headers"] if n == b"x-multi")),
            (b"Server", b"mine"),
        ]
        await _respond(send, b"ok", headers=headers)
    elif path == "/bad-header":
        await _respond(send, b"no", headers=[(b"x-evil", b"a\r\nInjected: 1")])
    elif path == "/close":
        await _respond(send, b"bye", headers=[(b"connection", b"close")])
    elif path == "/raise-before":
        raise ValueError("before start")
    elif path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ValueError("after start, nothing written")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("after start")
    elif path == "/nothing":
        return
    elif path == "/send-after":
        await _respond(send, b"done")
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except RuntimeError as exc:
            events.append(("send-after", str(exc)))
    elif path == "/disconnect-after":
        await _respond(send, b"done")
        message = await receive()  # the body (empty), then the disconnect
        message = await receive()
        events.append(("disconnect-after", message["type"]))
    elif path == "/disconnect-waits":
        await _read_body(receive)
        waiter = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)
        events.append(("pending while responding", waiter.done()))
        await _respond(send, b"done")
        message = await waiter
        events.append(("disconnect-waits", message["type"]))
    elif path == "/midstream":
        await _read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        listener = asyncio.ensure_future(receive())
        try:
            for _ in range(200):
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await asyncio.sleep(0.02)
                if listener.done():
                    events.append(("midstream", listener.result()["type"]))
                    return
        except OSError:  # the client left between two checks: the listener still hears it
            message = await asyncio.wait_for(listener, 2)
            events.append(("midstream", message["type"]))
            return
        await send({"type": "http.response.body", "body": b""})
    elif path == "/continue":
        if dict(scope["headers"]).get(b"x-refuse"):
            await _respond(send, b"refused", status=401)
            return
        body, _ = await _read_body(receive)
        await _respond(send, b"got " + body)
    elif path == "/state":
        await _respond(send, scope["state"]["greeting"].encode())
    elif path == "/slow":
        await asyncio.sleep(0.05)
        await _respond(send, scope["query_string"])
    else:
        await _respond(send, b"not found", status=404)


@pytest.fixture(scope="module")
def asgi() -> Iterator[ASGIThread]:
    srv = ASGIThread(raw_app, root_path="", limits=Limits(shutdown_timeout=2.0)).start()
    try:
        yield srv
    finally:
        srv.stop()
    assert "lifespan shutdown" in events


def test_hello_httpx(asgi: ASGIThread) -> None:
    with httpx.Client(base_url=asgi.url) as client:
        for _ in range(3):  # keep-alive
            r = client.get("/hello")
            assert r.status_code == 200
            assert r.text == "Hello, world"
            assert r.headers["content-length"] == "12"
            assert r.headers["content-type"] == "text/plain"
            assert "date" in r.headers and r.headers["server"].startswith("Python/")


def test_hello_single_write(asgi: ASGIThread) -> None:
    out = raw_request(asgi.port, b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 12\r\n" in head + b"\r\n"
    assert b"Connection: close" in head
    assert b"Transfer-Encoding" not in head
    assert body == b"Hello, world"


def test_hello_aiohttp(asgi: ASGIThread) -> None:
    async def main() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(asgi.url + "/hello") as resp:
            return resp.status, await resp.text()

    assert aio(main()) == (200, "Hello, world")


def test_scope(asgi: ASGIThread) -> None:
    r = httpx.get(asgi.url + "/scope?a=1&b=%20", headers={"X-Thing": "Yes"})
    scope = r.json()
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}  # see asgi/types.py
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert ["x-thing", "Yes"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", asgi.port]
    assert scope["state"] == {"greeting": "hi"}


def test_scope_path_decoding(asgi: ASGIThread) -> None:
    scope = _scope_of(asgi, b"/sc%6Fpe/caf%C3%A9%2Fx?q=%2F")
    assert scope["path"] == "/scope/café/x"
    assert scope["raw_path"] == "/sc%6Fpe/caf%C3%A9%2Fx"
    assert scope["query_string"] == "q=%2F"
    assert scope["http_version"] == "1.0"
    scope = _scope_of(asgi, b"http://example.com/scope/abs?y")  # absolute-form target
    assert scope["path"] == "/scope/abs" and scope["query_string"] == "y"


def _scope_of(asgi: ASGIThread, target: bytes) -> dict[str, Any]:
    out = raw_request(asgi.port, b"GET " + target + b" HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out
    result: dict[str, Any] = json.loads(body)
    return result


def test_echo_streamed_body(asgi: ASGIThread) -> None:
    def gen() -> Iterator[bytes]:
        for i in range(5):
            time.sleep(0.02)
            yield b"chunk%d-" % i

    with httpx.Client(base_url=asgi.url) as client:
        r = client.post("/echo", content=gen())  # chunked upload, piece by piece
        assert r.text == "".join(f"chunk{i}-" for i in range(5))
        assert int(r.headers["x-messages"]) > 1  # streamed, not one message
        r = client.post("/echo", content=b"x" * 1_000_000)
        assert r.content == b"x" * 1_000_000
        r = client.get("/echo")  # no body: one empty final message
        assert r.content == b"" and r.headers["x-messages"] == "1"


def test_streaming_response_chunked(asgi: ASGIThread) -> None:
    out = raw_request(asgi.port, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert body == b"6\r\npart0;\r\n6\r\npart1;\r\n6\r\npart2;\r\n0\r\n\r\n"
    with httpx.Client(base_url=asgi.url) as client, client.stream("GET", "/stream") as r:
        assert b"".join(r.iter_bytes()) == b"part0;part1;part2;"


def test_streaming_response_http10_close_delimited(asgi: ASGIThread) -> None:
    out = raw_request(asgi.port, b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert b"Connection: keep-alive" not in head
    assert body == b"part0;part1;part2;"


def test_http10_keep_alive(asgi: ASGIThread) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, world"):
            data += sock.recv(65536)
        assert b"Connection: keep-alive" in data
        sock.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        assert read_until_close(sock).endswith(b"Hello, world")


def test_content_length_passthrough(asgi: ASGIThread) -> None:
    out = raw_request(asgi.port, b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-length: 6" in head and b"Transfer-Encoding" not in head
    assert body == b"abcdef"


def test_content_longer_than_declared(asgi: ASGIThread, caplog: pytest.LogCaptureFixture) -> None:
    """The bytes past the declared length are cut, an error is logged, the connection closes
    (the same rule as the aiohttp.web interface: tests/test_response_framing.py)."""
    with caplog.at_level(logging.ERROR, logger="squall.server"):
        out = raw_request(asgi.port, b"GET /too-long HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 2" in head.lower()
    assert body == b"ab"  # (raw_request read until the server closed)
    assert ("too-long", "sent") in events
    assert any("longer than its Content-Length" in r.getMessage() for r in caplog.records)


def test_head(asgi: ASGIThread) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = read_until_close(sock)
    parts = out.split(b"\r\n\r\n")
    assert parts[0].startswith(b"HTTP/1.1 200") and b"Content-Length: 12" in parts[0]
    assert parts[1].startswith(b"HTTP/1.1 200") and b"chunked" not in parts[1]
    assert parts[2].startswith(b"HTTP/1.1 200") and parts[3] == b"Hello, world"
    r = httpx.head(asgi.url + "/hello")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "12"


def test_204(asgi: ASGIThread) -> None:
    with httpx.Client(base_url=asgi.url) as client:
        r = client.get("/204")
        assert r.status_code == 204 and r.content == b""
        assert "content-length" not in r.headers and "transfer-encoding" not in r.headers
        assert client.get("/hello").text == "Hello, world"  # same connection, still in sync


def test_headers_round_trip(asgi: ASGIThread) -> None:
    out = raw_request(
        asgi.port,
        b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Multi: 1\r\nx-multi: 2\r\n"
        b"Connection: close\r\n\r\n",
    )
    head = out.partition(b"\r\n\r\n")[0]
    assert head.count(b"set-cookie: ") == 2
    assert b"x-seen: 1,2\r\n" in head
    assert b"Server: mine\r\n" in head and b"squall" not in head  # the app's own Server
    assert b"\r\nDate: " in head

    async def main() -> Any:
        url = asgi.url + "/headers"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"X-Multi": "z"}) as resp,
        ):
            return resp.headers.getall("Set-Cookie"), resp.headers["x-seen"]

    assert aio(main()) == (["a=1", "b=2"], "z")


def test_bad_header_is_refused(asgi: ASGIThread) -> None:
    out = raw_request(asgi.port, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 500")
    assert b"Injected" not in out


def test_connection_close(asgi: ASGIThread) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        out = read_until_close(sock)
    assert out.count(b"onnection") == 1 and b"Connection: close\r\n" in out
    assert out.endswith(b"bye")
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_close(sock).endswith(b"Hello, world")
        assert is_closed(sock)


@pytest.mark.parametrize("path", ["/raise-before", "/raise-after-start", "/nothing"])
def test_errors_before_the_head_give_500(asgi: ASGIThread, path: str) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        out = read_until_close(sock)
        assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert b"Connection: close" in out


def test_raise_after_start_closes(asgi: ASGIThread) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"GET /raise-after HTTP/1.1\r\nHost: x\r\n\r\n")
        out = read_until_close(sock)
    assert out.startswith(b"HTTP/1.1 200")
    assert out.endswith(b"7\r\npartial\r\n")  # cut short: no last chunk
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(asgi.url + "/raise-after")


def test_send_after_completion_raises(asgi: ASGIThread) -> None:
    assert httpx.get(asgi.url + "/send-after").text == "done"
    assert wait_for(lambda: any(e[0] == "send-after" for e in events if isinstance(e, tuple)))
    assert any(e[0] == "send-after" and "completed" in e[1] for e in events if isinstance(e, tuple))


def test_disconnect_after_response(asgi: ASGIThread) -> None:
    assert httpx.get(asgi.url + "/disconnect-after").text == "done"
    assert wait_for(lambda: ("disconnect-after", "http.disconnect") in events)


def test_disconnect_waits_for_the_response(asgi: ASGIThread) -> None:
    assert httpx.post(asgi.url + "/disconnect-waits", content=b"abc").text == "done"
    assert wait_for(lambda: ("disconnect-waits", "http.disconnect") in events)
    assert ("pending while responding", False) in events


def test_disconnect_when_client_leaves_mid_stream(asgi: ASGIThread) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(b"GET /midstream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert wait_for(lambda: ("midstream", "http.disconnect") in events)
    assert ("midstream", "http.disconnect") in events


def test_pipelined_in_order(asgi: ASGIThread) -> None:
    reqs = b"".join(
        b"GET /slow?%d HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n" % i
        for i in range(5)
    )
    out = raw_request(asgi.port, reqs + b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
    bodies = [p.split(b"HTTP/1.1")[0] for p in out.split(b"\r\n\r\n")[1:]]
    expected = []
    for i in range(5):
        expected += [b"%d" % i, b"Hello, world"]
    assert bodies == [*expected, b"bye"]


def test_100_continue(asgi: ASGIThread) -> None:
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(
            b"POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        out = b""
        while not out.endswith(b"got body"):
            out += sock.recv(65536)
        assert out.startswith(b"HTTP/1.1 200")
    # refused without reading: no 100, the answer, and the connection closes
    with socket.create_connection(("127.0.0.1", asgi.port), timeout=5) as sock:
        sock.sendall(
            b"POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\nX-Refuse: 1\r\n\r\n"
        )
        out = read_until_close(sock)
        assert out.startswith(b"HTTP/1.1 401") and b"100 Continue" not in out


def test_lifespan_state(asgi: ASGIThread) -> None:
    assert httpx.get(asgi.url + "/state").text == "hi"


def test_root_path() -> None:
    srv = ASGIThread(raw_app, root_path="/api").start()
    try:
        scope = httpx.get(srv.url + "/scope?x").json()
        assert scope["root_path"] == "/api"
        assert scope["path"] == "/api/scope"
        assert scope["raw_path"] == "/api/scope"
    finally:
        srv.stop()


# -- lifespan edge cases ----------------------------------------------------------------------


def test_lifespan_unsupported_is_ignored() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("only http")
        await _respond(send, b"plain")

    srv = ASGIThread(app).start()
    try:
        assert httpx.get(srv.url + "/").text == "plain"
    finally:
        srv.stop()


def test_lifespan_failures() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    async def failing_then_waiting(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "stuck"})
        await asyncio.sleep(3600)

    async def raising(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("boom")

    async def main() -> None:
        with pytest.raises(LifespanFailed, match="no database"):
            await Lifespan(failing).startup()
        with pytest.raises(LifespanFailed, match="boom"):
            await Lifespan(raising).startup()
        with pytest.raises(LifespanFailed, match="stuck"):
            await Lifespan(failing_then_waiting).startup()
        assert len(asyncio.all_tasks()) == 1  # its task was cancelled, not left behind
        with pytest.raises(LifespanFailed, match="no database"):
            async with serve(failing, port=0):
                pass

    aio(main())


def test_serve_start_stop_in_the_loop() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                seen.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await _respond(send, b"in-loop")

    async def main() -> None:
        server = serve(app, port=0)
        await server.start()
        try:
            async with httpx.AsyncClient() as client:
                r = await client.get(server.url + "/")
                assert r.text == "in-loop"
        finally:
            await server.stop()

    aio(main())
    assert seen == ["lifespan.startup", "lifespan.shutdown"]


# -- Starlette --------------------------------------------------------------------------------


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"db": "connected"}
        events.append("starlette shutdown")

    async def tag_responses(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["x-middleware"] = "yes"
        return response

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"home {request.state.db}")

    async def item(request: Request) -> JSONResponse:
        return JSONResponse(
            {"id": request.path_params["item_id"], "q": request.query_params.get("q")}
        )

    async def echo(request: Request) -> JSONResponse:
        data = await request.json()
        return JSONResponse({"got": data}, status_code=201)

    async def stream(request: Request) -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(4):
                yield b"s%d," % i
                await asyncio.sleep(0.005)

        return StreamingResponse(gen(), media_type="text/plain")

    async def background(request: Request) -> PlainTextResponse:
        def later(tag: str) -> None:
            events.append(("starlette background", tag))

        return PlainTextResponse("queued", background=BackgroundTask(later, "t1"))

    return Starlette(
        routes=[
            Route("/", home),
            Route("/items/{item_id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream),
            Route("/background", background),
        ],
        lifespan=lifespan,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=tag_responses)],
    )


@pytest.fixture(scope="module")
def starlette_server() -> Iterator[ASGIThread]:
    srv = ASGIThread(_starlette_app()).start()
    try:
        yield srv
    finally:
        srv.stop()
    assert "starlette shutdown" in events


def test_starlette_httpx(starlette_server: ASGIThread) -> None:
    with httpx.Client(base_url=starlette_server.url) as client:
        r = client.get("/")
        assert r.text == "home connected" and r.headers["x-middleware"] == "yes"
        assert client.get("/items/7", params={"q": "x y"}).json() == {"id": 7, "q": "x y"}
        r = client.post("/echo", json={"a": [1, 2]})
        assert r.status_code == 201 and r.json() == {"got": {"a": [1, 2]}}
        r = client.get("/stream")
        assert r.text == "s0,s1,s2,s3," and r.headers["transfer-encoding"] == "chunked"
        assert client.get("/background").text == "queued"
        assert wait_for(lambda: ("starlette background", "t1") in events)
        assert client.get("/missing").status_code == 404
        assert client.get("/echo").status_code == 405
        assert client.head("/").status_code == 200


def test_starlette_aiohttp(starlette_server: ASGIThread) -> None:
    async def main() -> list[Any]:
        async with aiohttp.ClientSession(starlette_server.url) as session:
            out: list[Any] = []
            async with session.get("/items/3?q=z") as resp:
                out.append(await resp.json())
            async with session.post("/echo", json={"k": "v"}) as resp:
                out.append((resp.status, await resp.json()))
            async with session.get("/stream") as resp:
                out.append([c async for c in resp.content.iter_any()])
            return out

    item, echo, chunks = aio(main())
    assert item == {"id": 3, "q": "z"}
    assert echo == (201, {"got": {"k": "v"}})
    assert b"".join(chunks) == b"s0,s1,s2,s3,"


# -- FastAPI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[ASGIThread]:
    from .asgi_fastapi import make_fastapi_app

    srv = ASGIThread(make_fastapi_app(events)).start()
    try:
        yield srv
    finally:
        srv.stop()
    assert "fastapi shutdown" in events


def test_fastapi_httpx(fastapi_server: ASGIThread) -> None:
    with httpx.Client(base_url=fastapi_server.url) as client:
        first = client.get("/").json()
        assert first["hello"] == "world"
        assert client.get("/").json()["count"] == first["count"] + 1  # lifespan state shared
        assert client.get("/items/5", params={"q": "a"}).json() == {"item_id": 5, "q": "a"}
        r = client.post("/items", json={"name": "pen", "price": 1.5})
        assert r.status_code == 200
        assert r.json() == {"name": "pen", "price": 1.5, "tags": []}
        assert client.get("/sync").json() == {"thread": "pool"}
        assert client.get("/stream").text == "line 0\nline 1\nline 2\n"
        assert client.post("/notify").json() == {"status": "queued"}
        assert wait_for(lambda: ("fastapi background", "bob") in events)
        assert client.get("/nope").status_code == 404
        assert client.delete("/items/5").status_code == 405
        r = client.get("/items/notanint")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "item_id"]
        assert client.post("/items", json={"name": "pen"}).status_code == 422
        assert client.get("/openapi.json").json()["info"]["title"] == "FastAPI"


def test_fastapi_aiohttp(fastapi_server: ASGIThread) -> None:
    async def main() -> list[Any]:
        async with aiohttp.ClientSession(fastapi_server.url) as session:
            out: list[Any] = []
            async with session.post("/items", json={"name": "a", "price": 2, "tags": ["x"]}) as r:
                out.append((r.status, await r.json()))
            async with session.get("/items/9") as r:
                out.append(await r.json())
            async with session.get("/stream") as r:
                out.append(await r.text())
            return out

    assert aio(main()) == [
        (200, {"name": "a", "price": 2.0, "tags": ["x"]}),
        {"item_id": 9, "q": None},
        "line 0\nline 1\nline 2\n",
    ]
