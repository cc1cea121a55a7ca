"""Response compression against a real squall server: aiohttp's client and httpx (both decode
gzip/deflate themselves) and raw sockets for the exact headers and bytes.

What is the same as aiohttp, byte for byte, is checked by the differential app
tests/compat/apps/compression.py; here are squall's own choices (Vary, ``q=0``, responses without
a body) and what a differential run cannot see (executors, pipelining, warnings, signals).
"""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import httpx
import pytest

from squall import web
from squall.web.compression import ContentCoding as CodingEnum
from squall.web.compression import negotiate

from .compat.harness import Req, Response, exchange
from .conftest import ServerThread, raw_request, serve

TEXT = "A line that compresses well, repeated many times over.\n" * 100
BIG = bytes(range(256)) * 64  # 16 KiB


class CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that counts the jobs it is given and the threads that ran them."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.jobs = 0
        self.threads: set[int] = set()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1

        def run() -> Any:
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(run)


EXECUTOR = CountingExecutor()


def make_app() -> web.Application:
    async def text(request: web.Request) -> web.Response:
        response = web.Response(text=TEXT)
        response.enable_compression()
        return response

    async def forced(request: web.Request) -> web.Response:
        response = web.Response(text=TEXT)
        response.enable_compression(CodingEnum[request.query["coding"]])
        return response

    async def forced_bool(request: web.Request) -> web.Response:
        response = web.Response(text=TEXT)
        with pytest.warns(DeprecationWarning):
            response.enable_compression(True)
        return response

    async def forced_str(request: web.Request) -> web.Response:
        response = web.Response(text=TEXT)
        try:
            response.enable_compression("gzip")  # type: ignore[arg-type]
        except AssertionError:
            return web.Response(text="refused")
        return response

    async def json_data(request: web.Request) -> web.Response:
        response = web.json_response({"items": list(range(300))})
        response.enable_compression()
        return response

    async def no_body(request: web.Request) -> web.Response:
        response = web.Response(status=int(request.query["status"]), headers={"ETag": '"e"'})
        response.enable_compression()
        return response

    async def empty_with_text(request: web.Request) -> web.Response:
        response = web.Response(status=int(request.query["status"]), text=TEXT)
        response.enable_compression()
        return response

    async def executor(request: web.Request) -> web.Response:
        size = int(request.query["size"])
        response = web.Response(text=TEXT, zlib_executor_size=size, zlib_executor=EXECUTOR)
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async def default_executor(request: web.Request) -> web.Response:
        response = web.Response(body=BIG)  # above the default 4096 bytes: the loop's executor
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/plain"
        response.enable_compression()
        await response.prepare(request)
        for i in range(20):
            await response.write(f"{i}: {TEXT[:200]}".encode())
            await asyncio.sleep(0)
        await response.write(BIG)
        await response.write_eof()
        return response

    async def exception(request: web.Request) -> web.Response:
        response = web.HTTPNotFound(text=TEXT)
        response.enable_compression()
        return response

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text=TEXT)

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/forced", forced)
    app.router.add_get("/forced-bool", forced_bool)
    app.router.add_get("/forced-str", forced_str)
    app.router.add_get("/json", json_data)
    app.router.add_get("/no-body", no_body)
    app.router.add_get("/empty-with-text", empty_with_text)
    app.router.add_get("/executor", executor)
    app.router.add_get("/default-executor", default_executor)
    app.router.add_get("/stream", stream)
    app.router.add_get("/exception", exception)
    app.router.add_get("/plain", plain)
    return app


def make_signal_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text=TEXT)
        response.enable_compression()
        return response

    async def late(request: web.Request) -> web.Response:
        return web.Response(text=TEXT)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Seen-Encoding"] = response.headers.get("Content-Encoding", "-")
        if request.path == "/late":
            response.enable_compression()  # too late, as in aiohttp: the head is being made

    app = web.Application()
    app.router.add_get("/", handler)
    app.router.add_get("/late", late)
    app.on_response_prepare.append(on_prepare)
    return app


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with serve(make_app(), shutdown_timeout=2.0) as server:
        yield server


def get(srv: ServerThread, path: str, *headers: tuple[str, str], method: str = "GET") -> Response:
    return exchange(srv.port, Req(method, path, headers, timeout=5.0))


def ae(value: str) -> tuple[str, str]:
    return ("Accept-Encoding", value)


def decode(resp: Response) -> bytes:
    coding = resp.header("content-encoding")
    if coding == "gzip":
        return zlib.decompress(resp.body, 16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompress(resp.body)
    assert coding is None
    return resp.body


# -- clients that decode by themselves -------------------------------------------------------


def test_aiohttp_client_decodes(srv: ServerThread) -> None:
    async def main() -> tuple[str, str | None, str | None]:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{srv.url}/text") as resp,
        ):
            return await resp.text(), resp.headers.get("Content-Encoding"), resp.headers["Vary"]

    text, coding, vary = asyncio.run(main())
    assert text == TEXT
    assert coding == "deflate"  # aiohttp's client offers "gzip, deflate": deflate comes first
    assert vary == "Accept-Encoding"


@pytest.mark.parametrize("path", ["/text", "/stream", "/json", "/exception"])
def test_httpx_decodes(srv: ServerThread, path: str) -> None:
    with httpx.Client(timeout=5) as client:
        for coding in ("gzip", "deflate"):
            resp = client.get(f"{srv.url}{path}", headers={"Accept-Encoding": coding})
            assert resp.headers["Content-Encoding"] == coding
            if path == "/json":
                assert resp.json() == {"items": list(range(300))}
            elif path == "/stream":
                assert resp.text.startswith("0: A line") and resp.content.endswith(BIG)
            else:
                assert resp.text == TEXT
                assert resp.status_code == (404 if path == "/exception" else 200)


# -- exact headers ---------------------------------------------------------------------------


def test_whole_body_headers(srv: ServerThread) -> None:
    resp = get(srv, "/text", ae("gzip"))
    assert resp.status == 200
    assert resp.header("content-encoding") == "gzip"
    assert resp.header("vary") == "Accept-Encoding"
    assert resp.header("content-length") == str(len(resp.body)) != str(len(TEXT))
    assert resp.header("transfer-encoding") is None
    assert decode(resp) == TEXT.encode()


def test_head_has_the_headers_of_get(srv: ServerThread) -> None:
    got = get(srv, "/text", ae("gzip"))
    head = get(srv, "/text", ae("gzip"), method="HEAD")
    assert head.body == b""
    assert head.headers == got.headers


def test_stream_is_chunked_without_length(srv: ServerThread) -> None:
    resp = get(srv, "/stream", ae("gzip"))
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.header("content-length") is None
    assert resp.header("content-encoding") == "gzip"
    assert decode(resp).endswith(BIG)


def test_stream_to_http10_is_closed_delimited(srv: ServerThread) -> None:
    resp = exchange(srv.port, Req("GET", "/stream", (ae("deflate"),), version="HTTP/1.0"))
    assert resp.header("transfer-encoding") is None and resp.header("content-length") is None
    assert decode(resp).endswith(BIG)


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate", "deflate"),  # aiohttp's order: deflate whenever it is accepted
        ("gzip;q=1, deflate;q=0.1", "deflate"),  # q-values above 0 do not reorder (aiohttp)
        ("gzip;q=0", None),  # refused: aiohttp would still send gzip
        ("gzip; q=0.000, deflate;q=0", None),
        ("deflate;q=0, gzip", "gzip"),
        ("deflate;level=1;q=0, x-gzip", "gzip"),
        ("gzip;q=oops", "gzip"),  # a malformed q-value does not refuse
        ("identity", None),
        ("*", None),  # as aiohttp: "*" never selects a compression
        ("br, zstd", None),  # aiohttp 3.14 does not compress with these
        ("", None),
    ],
)
def test_negotiation(srv: ServerThread, accept: str, coding: str | None) -> None:
    assert negotiate(accept) is (None if coding is None else CodingEnum(coding))
    resp = get(srv, "/text", ae(accept))
    assert resp.header("content-encoding") == coding
    assert resp.header("vary") == "Accept-Encoding"  # negotiated, whatever the outcome
    assert decode(resp) == TEXT.encode()


def test_several_accept_encoding_fields_are_one_list(srv: ServerThread) -> None:
    resp = get(srv, "/text", ae("br"), ae("gzip"))
    assert resp.header("content-encoding") == "gzip"


def test_forced_coding_ignores_accept_encoding_and_adds_no_vary(srv: ServerThread) -> None:
    resp = get(srv, "/forced?coding=gzip", ae("identity"))
    assert resp.header("content-encoding") == "gzip" and resp.header("vary") is None
    assert decode(resp) == TEXT.encode()
    resp = get(srv, "/forced?coding=identity", ae("gzip"))
    assert resp.header("content-encoding") is None and resp.body == TEXT.encode()


def test_force_true_is_deflate_with_a_deprecation_warning(srv: ServerThread) -> None:
    resp = get(srv, "/forced-bool")
    assert resp.status == 200 and resp.header("content-encoding") == "deflate"


def test_force_must_be_a_content_coding(srv: ServerThread) -> None:
    assert get(srv, "/forced-str", ae("gzip")).body == b"refused"


@pytest.mark.parametrize("status", [204, 304, 200])
def test_responses_without_a_body_are_untouched(srv: ServerThread, status: int) -> None:
    resp = get(srv, f"/no-body?status={status}", ae("gzip"))
    assert resp.status == status
    assert resp.header("content-encoding") is None and resp.header("vary") is None
    assert resp.header("etag") == '"e"'
    assert resp.header("content-length") == ("0" if status == 200 else None)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_drop_the_body_uncompressed(srv: ServerThread, status: int) -> None:
    resp = get(srv, f"/empty-with-text?status={status}", ae("gzip"))
    assert resp.status == status
    assert resp.header("content-encoding") is None and resp.header("vary") is None
    # nothing follows the head: the next request on a fresh connection works as usual
    assert get(srv, "/text", ae("gzip")).status == 200


def test_not_compressed_without_enable_compression(srv: ServerThread) -> None:
    resp = get(srv, "/plain", ae("gzip"))
    assert resp.header("content-encoding") is None and resp.header("vary") is None
    assert resp.body == TEXT.encode()


# -- executors -------------------------------------------------------------------------------


def test_zlib_executor_above_zlib_executor_size(srv: ServerThread) -> None:
    before = EXECUTOR.jobs
    resp = get(srv, f"/executor?size={len(TEXT) - 1}")
    assert EXECUTOR.jobs == before + 1
    assert EXECUTOR.threads and threading.get_ident() not in EXECUTOR.threads
    assert decode(resp) == TEXT.encode()
    resp = get(srv, f"/executor?size={len(TEXT)}")  # not above it: compressed on the loop
    assert EXECUTOR.jobs == before + 1
    assert decode(resp) == TEXT.encode()


def test_default_executor_for_big_bodies(srv: ServerThread) -> None:
    resp = get(srv, "/default-executor", ae("gzip"))
    assert decode(resp) == BIG


def test_pipelined_answers_keep_their_order(srv: ServerThread) -> None:
    """The compressed answer is made after an executor hop; the one behind it must wait."""
    first = b"GET /default-executor HTTP/1.1\r\nHost: t\r\n\r\n"
    second = b"GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    data = raw_request(srv.port, first + second)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert zlib.decompress(rest[:length], 16 + zlib.MAX_WBITS) == BIG
    second_head, _, second_body = rest[length:].partition(b"\r\n\r\n")
    assert second_head.startswith(b"HTTP/1.1 200 OK") and second_body == TEXT.encode()


# -- on_response_prepare ---------------------------------------------------------------------


def test_signal_sees_the_compression_headers() -> None:
    with serve(make_signal_app()) as server:
        resp = get(server, "/", ae("gzip"))
        assert resp.header("x-seen-encoding") == "gzip"  # set before the signal, as in aiohttp
        assert decode(resp) == TEXT.encode()
        late = get(server, "/late", ae("gzip"))
        assert late.header("content-encoding") is None and late.body == TEXT.encode()


def test_compression_property() -> None:
    response = web.StreamResponse()
    assert response.compression is False
    response.enable_compression()
    assert response.compression is True
    # aiohttp's three, then squall's two (used with force= only: tests/test_compression_extra.py)
    assert [c.value for c in web.ContentCoding] == ["deflate", "gzip", "identity", "br", "zstd"]
    assert json.loads(web.json_response([1]).text or "") == [1]
