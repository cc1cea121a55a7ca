"""Response framing on the wire, for aiohttp.web-style apps and raw ASGI apps alike.

Each case sends two pipelined requests on one raw socket (the case's, then ``GET /ok``), reads
until the server closes, and parses everything with h11 as a strict client. The first response
must be what the case says; then either ``/ok`` is answered exactly, or the connection closed
cleanly with no further byte. Stray bytes parsed as the next response (h11 refusing them) are
the bug these tests guard against: a body longer or shorter than its declared length, a body on
a HEAD/204/304 answer, a handler failing mid-response, all must leave the wire clean.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import h11
import pytest

from squall import web
from squall.asgi.types import Receive, Scope, Send

from .conftest import ServerThread, serve
from .test_asgi import ASGIThread

TIMEOUT = 3.0
OK = b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
DIGITS = b"0123456789"


# -- the web application ----------------------------------------------------------------------


async def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def too_long(request: web.Request) -> web.StreamResponse:
    """Declares 5 bytes, writes 10: in one write, in two, or through write_eof()."""
    resp = web.StreamResponse()
    resp.content_length = 5
    await resp.prepare(request)
    mode = request.match_info["mode"]
    if mode == "one":
        await resp.write(DIGITS)
    elif mode == "split":
        await resp.write(b"0123")
        await resp.write(b"456789")
    else:
        await resp.write_eof(DIGITS)
    await resp.write_eof()
    return resp


async def too_short(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_length = 5
    await resp.prepare(request)
    await resp.write(b"012")
    await resp.write_eof()
    return resp


async def whole(request: web.Request) -> web.StreamResponse:
    return web.Response(body=DIGITS)


async def whole_wrong_header(request: web.Request) -> web.StreamResponse:
    return web.Response(body=DIGITS, headers={"Content-Length": "5"})


async def body(request: web.Request) -> web.StreamResponse:
    """A body however the request asks for it (``/body/{kind}``), with ``status`` if given."""
    status = int(request.query.get("status", "200"))
    kind = request.match_info["kind"]
    if kind == "whole":
        return web.Response(status=status, body=b"hello")
    resp = web.StreamResponse(status=status)
    if kind == "length":
        resp.content_length = 5
    await resp.prepare(request)
    await resp.write(b"hel")
    await resp.write(b"lo")
    await resp.write_eof()
    return resp


async def continue_(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"got " + await request.read())


async def stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(b"part0;")
    await asyncio.sleep(0.01)
    await resp.write(b"part1;")
    await resp.write_eof()
    return resp


async def raise_after(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    if request.match_info["kind"] == "length":
        resp.content_length = 20
    await resp.prepare(request)
    await resp.write(b"partial")
    await asyncio.sleep(0.01)
    raise ValueError("after prepare()")


def make_web_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/long/{mode}", too_long)
    app.router.add_get("/short", too_short)
    app.router.add_get("/whole", whole)
    app.router.add_get("/whole-wrong-header", whole_wrong_header)
    app.router.add_get("/body/{kind}", body)
    app.router.add_post("/continue", continue_)
    app.router.add_get("/stream", stream)
    app.router.add_get("/raise/{kind}", raise_after)
    return app


# -- the same routes as a raw ASGI application ------------------------------------------------


async def _start(send: Send, status: int = 200, length: int | None = None) -> None:
    headers = [(b"content-type", b"text/plain")]
    if length is not None:
        headers.append((b"content-length", b"%d" % length))
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _body(send: Send, data: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    path = scope["path"]
    query = dict(
        part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part
    )
    if path == "/ok":
        await _start(send, length=2)
        await _body(send, b"ok")
    elif path.startswith("/long/"):
        await _start(send, length=5)
        mode = path.rpartition("/")[2]
        if mode == "one":
            await _body(send, DIGITS)
        elif mode == "split":
            await _body(send, b"0123", more=True)
            await _body(send, b"456789")
        else:  # the whole body while more is announced, then the end
            await _body(send, DIGITS, more=True)
            await _body(send, b"")
    elif path == "/short":
        await _start(send, length=5)
        await _body(send, b"012")
    elif path.startswith("/body/"):
        status = int(query.get("status", "200"))
        kind = path.rpartition("/")[2]
        await _start(send, status, length=5 if kind in ("whole", "length") else None)
        if kind == "whole":
            await _body(send, b"hello")
        else:
            await _body(send, b"hel", more=True)
            await _body(send, b"lo")
    elif path == "/continue":
        data = b""
        while True:
            message = await receive()
            data += message.get("body", b"")
            if not message.get("more_body"):
                break
        await _start(send)
        await _body(send, b"got " + data)
    elif path == "/stream":
        await _start(send)
        await _body(send, b"part0;", more=True)
        await asyncio.sleep(0.01)
        await _body(send, b"part1;", more=True)
        await _body(send, b"")
    elif path.startswith("/raise/"):
        await _start(send, length=20 if path.endswith("/length") else None)
        await _body(send, b"partial", more=True)
        await asyncio.sleep(0.01)
        raise ValueError("after the first piece of the body")
    else:
        await _start(send, 404)
        await _body(send, b"not found")


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web_server() -> Iterator[ServerThread]:
    with serve(make_web_app(), shutdown_timeout=1.0) as srv:
        yield srv


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[ASGIThread]:
    srv = ASGIThread(asgi_app, lifespan=False).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(params=["web", "asgi"])
def port(request: pytest.FixtureRequest) -> int:
    return int(request.getfixturevalue(f"{request.param}_server").port)


# -- the client side: raw socket in, h11 as a strict parser -----------------------------------


@dataclass
class Reply:
    status: int | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    informational: list[int] = field(default_factory=list)
    complete: bool = False  # its end was framed (h11 EndOfMessage)
    ended_by_close: bool = False  # ... by the connection closing (a close-delimited body)


@dataclass
class Wire:
    data: bytes  # everything received
    closed: bool  # the server closed (else the read timed out)
    replies: list[Reply]


def _request(method: str, target: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: x"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _receive(sock: socket.socket, data: bytes = b"", until: bytes | None = None) -> Wire:
    """Read until the server closes (or ``until`` is in the data, or TIMEOUT)."""
    deadline = time.monotonic() + TIMEOUT
    closed = False
    while time.monotonic() < deadline and (until is None or until not in data):
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return Wire(data, closed, [])


def _read_reply(conn: h11.Connection, closed: bool) -> Reply:
    reply = Reply()
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            if not eof or reply.status is None:
                raise
            return reply  # the connection closed inside the body: cut short
        if event is h11.NEED_DATA:
            if not closed or eof:
                return reply  # nothing more came before the timeout
            conn.receive_data(b"")
            eof = True
        elif isinstance(event, h11.InformationalResponse):
            reply.informational.append(event.status_code)
        elif isinstance(event, h11.Response):
            reply.status = event.status_code
            reply.headers = dict(event.headers)
        elif isinstance(event, h11.Data):
            reply.body += event.data
        elif isinstance(event, h11.EndOfMessage):
            reply.complete = True
            reply.ended_by_close = eof
            return reply
        else:  # ConnectionClosed: never with bytes still to parse
            return reply


def parse(wire: Wire, sent: list[tuple[str, str, bytes]]) -> Wire:
    """Parse ``wire.data`` as the responses to ``sent`` (method, target, body), strictly.

    An h11 client carries one request at a time: each response gets a fresh one, told of its
    request, fed the bytes the previous one left over. Bytes that are no valid response fail.
    """
    data = wire.data
    for method, target, content in sent:
        if not data:
            break
        conn = h11.Connection(h11.CLIENT)
        headers = [("Host", "x")]
        if content:
            headers.append(("Content-Length", str(len(content))))
        conn.send(h11.Request(method=method, target=target, headers=headers))
        if content:
            conn.send(h11.Data(data=content))
        conn.send(h11.EndOfMessage())
        conn.receive_data(data)
        try:
            reply = _read_reply(conn, wire.closed)
        except h11.RemoteProtocolError as exc:
            pytest.fail(f"not a valid response to {method} {target} ({exc}): {data[:120]!r}")
        wire.replies.append(reply)
        if not reply.complete:
            return wire
        data = conn.trailing_data[0]
    assert not data, f"bytes after the responses to all requests: {data[:120]!r}"
    return wire


def exchange(port: int, method: str, target: str, first: bytes | None = None) -> Wire:
    """``method target`` then ``GET /ok`` (Connection: close), pipelined in one send."""
    first = first if first is not None else _request(method, target)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(first + OK)
        wire = _receive(sock)
    return parse(wire, [(method, target, b""), ("GET", "/ok", b"")])


def assert_ok_follows(wire: Wire) -> None:
    """The connection stayed usable: the pipelined GET /ok got its own answer."""
    assert len(wire.replies) == 2, f"no answer to GET /ok: {wire.data[-200:]!r}"
    ok = wire.replies[1]
    assert (ok.status, ok.body, ok.complete) == (200, b"ok", True), wire.data[-200:]


def assert_closed_after_first(wire: Wire) -> None:
    """The server closed after the first response: no answer to GET /ok, no stray byte."""
    assert wire.closed, "the connection stayed open after a response that must close it"
    assert len(wire.replies) == 1, f"GET /ok was answered: {wire.data[-200:]!r}"


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- bodies longer or shorter than declared ---------------------------------------------------


@pytest.mark.parametrize("mode", ["one", "split", "eof"])
def test_body_longer_than_declared_is_cut_and_closed(
    port: int, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    wire = exchange(port, "GET", f"/long/{mode}")
    first = wire.replies[0]
    assert first.status == 200 and first.headers.get(b"content-length") == b"5"
    assert first.body == b"01234" and first.complete
    assert b"56789" not in wire.data
    assert_closed_after_first(wire)
    assert errors_logged(caplog), "nothing logged about the body longer than declared"


def test_body_shorter_than_declared_closes(port: int) -> None:
    wire = exchange(port, "GET", "/short")
    first = wire.replies[0]
    assert first.status == 200 and first.headers.get(b"content-length") == b"5"
    assert first.body == b"012" and not first.complete  # a short body, then EOF
    assert_closed_after_first(wire)


@pytest.mark.parametrize("path", ["/whole", "/whole-wrong-header"])
def test_web_response_computes_its_own_length(web_server: ServerThread, path: str) -> None:
    wire = exchange(web_server.port, "GET", path)
    first = wire.replies[0]
    assert first.status == 200 and first.headers.get(b"content-length") == b"10"
    assert first.body == DIGITS and first.complete
    assert_ok_follows(wire)


def test_issue_pipelined_overlong_body_never_read_as_next_response(
    web_server: ServerThread,
) -> None:
    """The reported bug: content_length=5, 10 bytes written, two pipelined GETs; the client read
    ``56789HTTP/1.1 200 OK`` as the start of the second response."""
    request = _request("GET", "/long/one")
    last = _request("GET", "/long/one", Connection="close")  # (so a wrong answer ends soon)
    with socket.create_connection(("127.0.0.1", web_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request + last)
        wire = _receive(sock)
    assert b"56789HTTP/1.1" not in wire.data and b"56789" not in wire.data
    parse(wire, [("GET", "/long/one", b""), ("GET", "/long/one", b"")])
    first = wire.replies[0]
    assert (first.status, first.body, first.complete) == (200, b"01234", True)
    assert_closed_after_first(wire)


# -- responses that carry no body: HEAD, 204, 304 ---------------------------------------------


@pytest.mark.parametrize("kind", ["whole", "length", "chunked"])
def test_head_drops_the_body(port: int, kind: str) -> None:
    wire = exchange(port, "HEAD", f"/body/{kind}")
    first = wire.replies[0]
    assert (first.status, first.body, first.complete) == (200, b"", True)
    assert_ok_follows(wire)


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("kind", ["whole", "chunked"])
def test_no_body_status_drops_the_body(port: int, status: int, kind: str) -> None:
    wire = exchange(port, "GET", f"/body/{kind}?status={status}")
    first = wire.replies[0]
    assert (first.status, first.body, first.complete) == (status, b"", True)
    assert b"hello" not in wire.data and b"hel" not in wire.data
    assert_ok_follows(wire)


# -- 1xx --------------------------------------------------------------------------------------


def test_100_continue_then_the_answer(port: int) -> None:
    head = _request("POST", "/continue", Expect="100-continue", Content_Length="4")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        interim = _receive(sock, until=b"\r\n\r\n")
        assert interim.data.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.data
        sock.sendall(b"body" + OK)
        wire = _receive(sock, interim.data)
    parse(wire, [("POST", "/continue", b"body"), ("GET", "/ok", b"")])
    first = wire.replies[0]
    assert first.informational == [100]
    assert (first.status, first.body, first.complete) == (200, b"got body", True)
    assert_ok_follows(wire)


# -- HTTP/1.0, streamed -----------------------------------------------------------------------


def test_http10_streamed_response_is_close_delimited(port: int) -> None:
    wire = exchange(port, "GET", "/stream", first=b"GET /stream HTTP/1.0\r\n\r\n")
    first = wire.replies[0]
    assert first.status == 200
    assert b"transfer-encoding" not in first.headers and b"content-length" not in first.headers
    assert first.body == b"part0;part1;" and first.complete and first.ended_by_close
    assert_closed_after_first(wire)


def test_http11_streamed_response_keeps_the_connection(port: int) -> None:
    wire = exchange(port, "GET", "/stream")
    first = wire.replies[0]
    assert (first.status, first.body, first.complete) == (200, b"part0;part1;", True)
    assert not first.ended_by_close
    assert_ok_follows(wire)


# -- a handler that fails once its response started -------------------------------------------


@pytest.mark.parametrize("kind", ["chunked", "length"])
def test_raise_after_the_response_started_cuts_and_closes(port: int, kind: str) -> None:
    wire = exchange(port, "GET", f"/raise/{kind}")
    first = wire.replies[0]
    assert first.status == 200
    assert first.body == b"partial" and not first.complete  # cut short, then EOF
    assert b"HTTP/1.1 500" not in wire.data and wire.data.count(b"HTTP/1.1 ") == 1
    assert_closed_after_first(wire)


# -- the helper itself ------------------------------------------------------------------------


def test_parse_refuses_stray_bytes() -> None:
    """What the bug looks like to the strict client: the overlong tail glued to the next head."""
    ok_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n0123456789" + ok_reply
    with pytest.raises(pytest.fail.Exception, match="56789HTTP"):
        parse(Wire(data, True, []), [("GET", "/a", b""), ("GET", "/ok", b"")])
    wire = parse(Wire(data[: -len(ok_reply) - 5], True, []), [("GET", "/a", b"")])
    assert wire.replies[0].body == b"01234" and wire.replies[0].complete
    short = parse(Wire(data[: -len(ok_reply) - 7], True, []), [("GET", "/a", b"")])
    assert short.replies[0].body == b"012" and not short.replies[0].complete
