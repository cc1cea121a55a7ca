"""Adversarial review: each test reproduces a confirmed bug (it fails until the bug is fixed)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from squall import web

from .conftest import ServerThread, serve


async def _slow_ignore(request: web.Request) -> web.Response:
    await asyncio.sleep(0.3)
    return web.Response(text="ignored")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0.3")))
    return web.Response(text="slow")


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def _prepare_then_read(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await resp.write(await request.read())
    await resp.write_eof()
    return resp


async def _where(request: web.Request) -> web.Response:
    return web.json_response(
        {"path": request.path, "url": str(request.url), "tail": request.match_info["tail"]}
    )


async def _fail_mid_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_length = 100
    await resp.prepare(request)
    await resp.write(b"x" * 10)
    raise RuntimeError("failed half way")


def _app() -> web.Application:
    app = web.Application()
    app.add_routes(
        [
            web.post("/slow-ignore", _slow_ignore),
            web.get("/slow", _slow),
            web.route("*", "/hello", _hello),
            web.get("/fail-mid-stream", _fail_mid_stream),
            web.get("/where/{tail:.*}", _where),
            web.post("/prepare-then-read", _prepare_then_read),
        ]
    )
    return app


@pytest.fixture
def srv() -> Iterator[ServerThread]:
    with serve(_app(), keepalive_timeout=10.0, header_timeout=1.0) as server:
        yield server


def _connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _read_some(sock: socket.socket, timeout: float, until: bytes | None = None) -> bytes:
    """Read for up to ``timeout`` s (or until ``until`` is seen, or the peer closes)."""
    sock.settimeout(0.1)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if until is not None and until in data:
            break
    return data


def test_unread_body_received_while_handler_suspended_stalls_keep_alive(
    srv: ServerThread,
) -> None:
    """A body over read_high_water arrives whole while its handler sleeps and never reads it.

    The stream pauses the socket (_PAUSE_BODY) at the high-water mark; the body is complete (EOF)
    by the time the handler returns, so _finish skips the unpause and the connection never reads
    the next request.
    """
    body = b"x" * (256 * 1024 + 100)  # just over the default read_high_water
    head = b"POST /slow-ignore HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with _connect(srv) as sock:
        sock.sendall(head + body[:-200])  # below the high-water mark
        time.sleep(0.1)
        sock.sendall(body[-200:])  # crosses it and completes the body in one read
        first = _read_some(sock, 3, until=b"ignored")
        assert first.endswith(b"ignored")
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        second = _read_some(sock, 3, until=b"hello")
        assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"hello")


def test_header_timeout_of_pipelined_request_does_not_answer_in_place_of_active_one(
    srv: ServerThread,
) -> None:
    """While request 1 is being handled, request 2's head is incomplete past header_timeout.

    on_timeout writes the 408 straight away and half-closes, ahead of (in place of) the response
    to request 1, which the client reads as the answer to request 1.
    """
    with _connect(srv) as sock:
        sock.sendall(b"GET /slow?s=2.5 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\n")
        data = _read_some(sock, 5)
    assert data.startswith(b"HTTP/1.1 200 OK"), data[:80]
    first, _, rest = data.partition(b"\r\n\r\nslow")
    assert first and b"408" not in first
    # Request 2's head then timed out: its 408 may follow, after request 1's answer, never before.
    assert rest == b"" or rest.startswith(b"HTTP/1.1 408 ")


def test_head_request_with_content_length_body(srv: ServerThread) -> None:
    """RFC 9112 6.3: a request's body length is its Content-Length, whatever the method.

    aiohttp answers this HEAD with 200 (and reads the 5 bytes as its body); squall feeds them to
    the shared EMPTY_PAYLOAD, whose feed_data raises inside the parser callback, and answers 400.
    """
    with _connect(srv) as sock:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde")
        data = _read_some(sock, 3, until=b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK"), data[:80]


def test_exception_after_prepare_does_not_inject_a_second_response(srv: ServerThread) -> None:
    """A handler fails after prepare() and a partial body: the connection must just close.

    squall builds a fresh 500 response and writes its head and body into the middle of the
    already-started 100-byte body (aiohttp refuses to send a second response and closes).
    """
    with _connect(srv) as sock:
        sock.sendall(b"GET /fail-mid-stream HTTP/1.1\r\nHost: x\r\n\r\n")
        data = _read_some(sock, 3)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"HTTP/1.1 500" not in body, body


def test_target_starting_with_double_slash_is_a_path_not_an_authority(srv: ServerThread) -> None:
    """``GET //evil/where/a%20b``: an origin-form target whose path starts with ``//``.

    aiohttp routes on the path ``//evil/where/a b`` (404 here) and keeps ``Host`` for the URL.
    squall hands the target to ``yarl.URL()``, which takes ``evil`` for an authority: the request
    is routed to ``/where/a b`` and ``request.url`` gets the host ``evil`` (host spoofing).
    """
    with _connect(srv) as sock:
        sock.sendall(b"GET //evil/where/a%20b HTTP/1.1\r\nHost: good\r\nConnection: close\r\n\r\n")
        data = _read_some(sock, 3)
    assert data.startswith(b"HTTP/1.1 404"), data.partition(b"\r\n\r\n")[2]


def test_header_timeout_of_pipelined_head_is_not_extended_to_keepalive(srv: ServerThread) -> None:
    """Request 2's head starts while request 1 is handled, then stalls (header_timeout=1 s here).

    When request 1 finishes, _idle() replaces the head's deadline with the keep-alive one
    (10 s here), so a dribbled head is tolerated for keepalive_timeout instead of header_timeout.
    """
    with _connect(srv) as sock:
        sock.sendall(b"GET /slow?s=0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\n")
        start = time.monotonic()
        data = _read_some(sock, 6, until=b"408 Request Timeout")
        elapsed = time.monotonic() - start
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"HTTP/1.1 408 Request Timeout" in data and elapsed < 4, (elapsed, data[-80:])


def test_shutdown_not_held_up_by_request_queued_behind_last_response() -> None:
    """Shutdown while request 1 runs with request 2 pipelined behind it.

    shutdown() marks both not keep-alive; after request 1 the connection closes and request 2
    is left in _pipeline, so HttpServer.busy() stays True until the 2 s linger ends: shutdown
    takes ~2-3 s instead of the 0.3 s request 1 needs (0.3 s too with no request 2 queued).
    """
    with serve(_app(), shutdown_timeout=10.0) as server, _connect(server) as sock:
        sock.sendall(b"GET /slow?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        time.sleep(0.1)
        start = time.monotonic()
        server.stop()
        elapsed = time.monotonic() - start
        assert _read_some(sock, 1).endswith(b"slow")
    assert elapsed < 1.5, elapsed


def test_expect_100_continue_when_handler_prepares_before_reading(srv: ServerThread) -> None:
    """aiohttp answers ``Expect: 100-continue`` with 100 before running the handler.

    squall sends 100 lazily, on the first body read, and not at all once the response head is
    out: a handler that prepares first then reads leaves the client waiting for a 100 that never
    comes (RFC 9110 10.1.1: the server MUST send an immediate 100 or a final status), while the
    server waits for a body the client holds back; curl-like clients stall 1 s, strict ones hang.
    """
    with _connect(srv) as sock:
        sock.sendall(
            b"POST /prepare-then-read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = _read_some(sock, 1, until=b"\r\n\r\n")
        sock.sendall(b"data")
        rest = _read_some(sock, 2)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
    assert rest.endswith(b"4\r\ndata\r\n0\r\n\r\n"), rest


def test_refused_request_stays_refused_when_the_pipeline_drains(srv: ServerThread) -> None:
    """Requests 1 and 2 are queued when request 3's oversized header field earns a 431.

    _refuse pauses reading with _PAUSE_PIPELINE, the same bit the pipeline uses for "queue full";
    popping request 2 clears it and reading resumes. The next bytes go to the errored parser,
    which fails again without the callback's exception: the pending 431 becomes a 400 "Malformed
    request" and squall logs "Error while parsing a request" (its own-bug path).
    """
    with _connect(srv) as sock:
        sock.sendall(
            b"GET /slow?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n" * 2
            + b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"v" * 9000
            + b"\r\nX-Next: 1\r\n"
        )
        time.sleep(0.45)  # request 1 is answered, 2 runs: reading has resumed
        sock.sendall(b"X-More: 1\r\n\r\n")
        data = _read_some(sock, 3)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"HTTP/1.1 431 " in data, data[-120:]
