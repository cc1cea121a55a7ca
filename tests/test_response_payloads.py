"""Response(body=...) with aiohttp's payload types: async iterables, files, BytesIO/StringIO.

Each is checked on the wire against what aiohttp 3.14 sends for the same handler (headers and
framing), on a real server.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import h11
import pytest

from squall import web

from .conftest import ServerThread, raw_request, serve

opened: list[io.IOBase] = []


async def chunks() -> AsyncIterator[bytes]:
    yield b"ab"
    yield b"cd"


def _app(tmp: Path) -> web.Application:
    (tmp / "f.txt").write_text("hello file\n")
    (tmp / "page.html").write_text("<p>hi</p>")

    def keep(f: io.IOBase) -> io.IOBase:
        opened.append(f)
        return f

    async def agen(request: web.Request) -> web.Response:
        return web.Response(body=chunks())

    async def file_bytes(request: web.Request) -> web.Response:
        return web.Response(body=keep(open(tmp / "f.txt", "rb")))

    async def file_text(request: web.Request) -> web.Response:
        return web.Response(body=keep(open(tmp / "page.html")))

    async def bytes_io(request: web.Request) -> web.Response:
        return web.Response(body=io.BytesIO(b"bytesio"))

    async def string_io(request: web.Request) -> web.Response:
        return web.Response(body=io.StringIO("stringio"))

    app = web.Application()
    app.add_routes(
        [
            web.get("/agen", agen),
            web.get("/file-bytes", file_bytes),
            web.get("/file-text", file_text),
            web.get("/bytes-io", bytes_io),
            web.get("/string-io", string_io),
        ]
    )
    return app


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with serve(_app(tmp_path_factory.mktemp("payloads"))) as server:
        yield server


def _get(srv: ServerThread, path: str, method: str = "GET") -> tuple[h11.Response, bytes]:
    out = raw_request(
        srv.port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=path, headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(out)
    conn.receive_data(b"")
    head = conn.next_event()
    assert isinstance(head, h11.Response), out
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return head, body
        else:
            raise AssertionError((event, out))


def _headers(resp: h11.Response) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in resp.headers}


def test_async_generator_is_streamed_chunked(srv: ServerThread) -> None:
    resp, body = _get(srv, "/agen")
    headers = _headers(resp)
    assert resp.status_code == 200 and body == b"abcd"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "application/octet-stream"


def test_binary_file_is_sent_with_its_size_type_and_name(srv: ServerThread) -> None:
    opened.clear()
    resp, body = _get(srv, "/file-bytes")
    headers = _headers(resp)
    assert body == b"hello file\n"
    assert headers["content-length"] == "11" and "transfer-encoding" not in headers
    assert headers["content-type"] == "text/plain"
    assert headers["content-disposition"] == 'attachment; filename="f.txt"'
    assert opened and all(f.closed for f in opened)  # closed once sent, as aiohttp does


def test_text_file_is_encoded_and_typed_with_its_charset(srv: ServerThread) -> None:
    opened.clear()
    resp, body = _get(srv, "/file-text")
    headers = _headers(resp)
    assert body == b"<p>hi</p>" and headers["content-length"] == "9"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert opened and all(f.closed for f in opened)


def test_head_of_a_file_sends_no_body_and_closes_it(srv: ServerThread) -> None:
    opened.clear()
    resp, body = _get(srv, "/file-bytes", method="HEAD")
    assert resp.status_code == 200 and body == b""
    assert _headers(resp)["content-length"] == "11"
    assert opened and all(f.closed for f in opened)


@pytest.mark.parametrize(
    ("path", "body", "ctype"),
    [
        ("/bytes-io", b"bytesio", "application/octet-stream"),
        ("/string-io", b"stringio", "text/plain; charset=utf-8"),
    ],
)
def test_in_memory_files(srv: ServerThread, path: str, body: bytes, ctype: str) -> None:
    resp, got = _get(srv, path)
    headers = _headers(resp)
    assert got == body and headers["content-length"] == str(len(body))
    assert headers["content-type"] == ctype


def test_body_property_gives_back_what_was_set() -> None:
    source = chunks()
    resp = web.Response(body=source)
    assert resp.body is source and resp.content_length is None
    with pytest.raises(TypeError):
        web.Response(body=object())
