"""Small requests that ask for a lot (issue #9): each costs bounded time and memory, and the
server goes on serving.

Covered elsewhere, not repeated here: the permessage-deflate bomb
(test_websocket_frames.py::test_deflate_bomb_is_stopped_at_max_msg_size), thousands of tiny
multipart parts (test_multipart.py::test_thousands_of_tiny_parts_stream_in_bounded_time), 129
header fields and a 64 KiB head (test_malformed.py), 200 trailer fields and a 70 KB trailer
(test_smuggling.py).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .compat.harness import AppServer, Req, exchange, serve_both
from .conftest import raw_request


def _json_app(web: Any) -> Any:
    async def parse(request: Any) -> Any:
        data = await request.json()
        depth = 0
        while isinstance(data, list) and data:
            data, depth = data[0], depth + 1
        return web.json_response({"depth": depth})

    async def ok(request: Any) -> Any:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/json", parse)
    app.router.add_get("/ok", ok)
    return app


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[AppServer, AppServer]]:
    with serve_both(_json_app) as servers:
        yield servers


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def test_deeply_nested_json_is_a_500_as_on_aiohttp(both: tuple[AppServer, AppServer]) -> None:
    """200,000 levels (400 KB, under client_max_size): json.loads raises RecursionError, which
    the handler lets out. aiohttp answers 500 (so does any invalid JSON there); squall the same,
    promptly, and serves on. A handler that wants 400 catches ValueError and RecursionError."""
    req = Req("POST", "/json", (("Content-Type", "application/json"),), _nested(200_000))
    statuses = []
    for server in both:
        start = time.monotonic()
        statuses.append(exchange(server.port, req).status)
        assert time.monotonic() - start < 3
    assert statuses == [500, 500]
    squall = both[1]
    out = raw_request(squall.port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"ok")


def test_nesting_python_can_parse_is_fine(both: tuple[AppServer, AppServer]) -> None:
    req = Req("POST", "/json", (("Content-Type", "application/json"),), _nested(500))
    for server in both:
        resp = exchange(server.port, req)
        assert (resp.status, resp.body) == (200, b'{"depth": 500}')


def test_ten_thousand_tiny_headers_in_many_reads_are_431(both: tuple[AppServer, AppServer]) -> None:
    head = b"GET /ok HTTP/1.1\r\nHost: x\r\n" + b"".join(b"a%d:\r\n" % i for i in range(10_000))
    pieces = [head[i : i + 1000] for i in range(0, len(head), 1000)] + [b"\r\n"]
    start = time.monotonic()
    out = raw_request(both[1].port, pieces, timeout=3)
    assert out.startswith(b"HTTP/1.1 431 "), out[:100]
    assert time.monotonic() - start < 3


def test_an_endless_trailer_field_is_cut_off(both: tuple[AppServer, AppServer]) -> None:
    """httptools keeps a trailer field whole until it ends: without a bound on the bytes of a
    body message that are not body, one request could fill memory. aiohttp's parser stops it at
    its field size limit; squall at max_head_size (64 KiB) of chunk framing and trailers, and
    answers while the client is still sending (before the fix: no answer, memory growing)."""
    head = b"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", both[1].port), timeout=5) as sock:
        sock.sendall(head + b"3\r\nabc\r\n0\r\nX-Trailer: ")
        for _ in range(32):  # 512 KiB of one field, never ended
            sock.sendall(b"v" * 16384)
        sock.settimeout(3)  # answered now, not after the 60 s body timeout
        out = sock.recv(65536)
    assert out.startswith(b"HTTP/1.1 400 "), out[:100]
    assert raw_request(both[1].port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"ok")
