"""Public-API differences found by aiohttp's test_web_response.py and test_web_request.py
(``make aiohttp-suite``), closed.

Served cases run the same application on aiohttp's server and on squall's, with aiohttp's
client; unit-level cases compare squall's objects with aiohttp's directly.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import aiohttp.test_utils
import aiohttp.web
import pytest
from multidict import CIMultiDict

from squall import web
from squall.testing import TestServer, make_mocked_request

from .side_by_side import on_both

pytestmark = pytest.mark.usefixtures("squall_loop")


BOTH = pytest.mark.parametrize(
    "w, mocked",
    [(aiohttp.web, aiohttp.test_utils.make_mocked_request), (web, make_mocked_request)],
    ids=["aiohttp", "squall"],
)


# -- served responses -------------------------------------------------------------------------


async def test_an_empty_head_or_304_answer_has_no_content_length(squall_loop: Any) -> None:
    """An empty body says nothing of the length a GET's 200 would have (RFC 9110 8.6)."""

    def build(w: Any) -> Any:
        async def empty(request: Any) -> Any:
            return w.Response(status=int(request.query.get("status", "200")))

        async def full(request: Any) -> Any:
            return w.Response(body=b"12345")

        app = w.Application()
        app.router.add_get("/empty", empty)
        app.router.add_get("/full", full)
        return app

    async def call(client: Any) -> list[Any]:
        seen = []
        for method, path in (("HEAD", "/empty"), ("GET", "/empty?status=304"), ("HEAD", "/full")):
            async with client.request(method, path) as resp:
                seen.append((resp.status, resp.headers.get("Content-Length")))
        return seen

    theirs, ours = await on_both(build, call)
    assert ours == theirs == [(200, None), (304, None), (200, "5")]


async def test_prepare_returns_a_writer_the_body_can_be_written_to(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            resp = w.StreamResponse()
            assert resp.keep_alive is None
            writer = await resp.prepare(request)
            assert await resp.prepare(request) is writer
            assert resp.keep_alive is True  # the connection's choice, once prepared
            await writer.write(b"abc")
            await writer.drain()
            await writer.write_eof(b"def")
            assert await resp.prepare(request) is None  # the body is complete
            return resp

        app = w.Application()
        app.router.add_get("/", handler)
        return app

    async def call(client: Any) -> tuple[int, bytes]:
        async with client.get("/") as resp:
            return resp.status, await resp.read()

    theirs, ours = await on_both(build, call)
    assert ours == theirs == (200, b"abcdef")


async def test_writing_through_the_writer_of_a_compressed_response_compresses(
    squall_loop: Any,
) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            resp = w.StreamResponse()
            resp.enable_compression()
            writer = await resp.prepare(request)
            await writer.write(b"x" * 1000)
            await resp.write_eof()
            return resp

        app = w.Application()
        app.router.add_get("/", handler)
        return app

    async def call(client: Any) -> tuple[str | None, bytes]:
        async with client.get("/", headers={"Accept-Encoding": "gzip"}) as resp:
            return resp.headers.get("Content-Encoding"), await resp.read()

    theirs, ours = await on_both(build, call)
    assert ours == theirs == ("gzip", b"x" * 1000)


# -- make_mocked_request's writer -------------------------------------------------------------


@BOTH
async def test_a_mocked_request_has_a_mock_writer_prepare_returns(w: Any, mocked: Any) -> None:
    request = mocked("GET", "/")
    resp = w.StreamResponse()
    writer = await resp.prepare(request)
    assert writer is request.writer
    assert writer.write_headers.called
    status_line, headers = writer.write_headers.call_args.args
    assert status_line == "HTTP/1.1 200 OK" and headers["Transfer-Encoding"] == "chunked"
    await resp.write(b"data")
    writer.write.assert_called_with(b"data")  # the body unframed, as the writer gets it
    with pytest.warns(DeprecationWarning):
        assert resp.output_length
    await resp.write_eof()
    assert writer.write_eof.called


async def test_a_mocked_request_still_records_the_bytes_on_its_transport(
    squall_loop: Any,
) -> None:
    request = make_mocked_request("GET", "/")
    resp = web.Response(text="hi")
    await resp.prepare(request)
    await resp.write_eof()
    assert request.transport is not None
    assert bytes(request.transport.written).endswith(b"\r\n\r\nhi")  # type: ignore[attr-defined]


@BOTH
async def test_the_writer_is_told_of_chunking_and_compression(w: Any, mocked: Any) -> None:
    request = mocked("GET", "/", headers={"Accept-Encoding": "gzip, deflate"})
    resp = w.StreamResponse()
    resp.enable_chunked_encoding()
    resp.enable_compression(w.ContentCoding.gzip)
    writer = await resp.prepare(request)
    assert writer.enable_chunking.called
    writer.enable_compression.assert_called_with("gzip", None)
    assert resp.headers["Content-Encoding"] == "gzip"


@BOTH
async def test_a_whole_body_ends_with_one_write_eof(w: Any, mocked: Any) -> None:
    writer = mock.Mock()
    writer.write_eof = mock.AsyncMock()
    writer.write_headers = mock.AsyncMock()
    request = mocked("GET", "/", writer=writer)
    resp = w.Response(body=b"data")
    await resp.prepare(request)
    await resp.write_eof()
    await resp.write_eof()
    writer.write_eof.assert_called_once_with(b"data")


@BOTH
async def test_compression_of_a_request_with_a_mock_application(w: Any, mocked: Any) -> None:
    app = mock.Mock()
    app._debug = False
    app.on_response_prepare = aiohttp.web.Application().on_response_prepare
    app.on_response_prepare.freeze()
    request = mocked("GET", "/", headers={"Accept-Encoding": "deflate"}, app=app)
    resp = w.StreamResponse()
    resp.enable_compression()
    await resp.prepare(request)
    assert resp.headers["Content-Encoding"] == "deflate"


# -- errors aiohttp raises as assertions ------------------------------------------------------


@BOTH
async def test_misuse_raises_what_aiohttp_raises(w: Any, mocked: Any) -> None:
    resp = w.StreamResponse()
    with pytest.raises(AssertionError):
        await resp.write_eof()
    with pytest.raises(AssertionError):
        await resp.drain()
    await resp.prepare(mocked("GET", "/"))
    with pytest.raises(AssertionError):
        await resp.write(123)
    body = w.Response(body=b"data")
    with pytest.raises(ValueError):
        body.body = 123
    assert body.body == b"data"
    with pytest.raises(AssertionError):
        body.text = b"123"  # type: ignore[assignment]


async def test_squall_misuse_errors_are_the_pythonic_kinds_too(squall_loop: Any) -> None:
    resp = web.StreamResponse()
    with pytest.raises(RuntimeError, match="not been started"):
        await resp.write_eof()
    with pytest.raises(RuntimeError, match="not been started"):
        await resp.drain()
    await resp.prepare(make_mocked_request("GET", "/"))
    with pytest.raises(TypeError, match="byte-ish"):
        await resp.write("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Unsupported body type"):
        web.Response().body = 123
    with pytest.raises(TypeError, match="must be str"):
        web.Response().text = b"123"  # type: ignore[assignment]


# -- Response.text of a payload body ----------------------------------------------------------


async def _chunks() -> AsyncIterator[bytes]:
    yield b"x"  # pragma: no cover


def _bodies() -> list[tuple[Any, str | None]]:
    class OneRead(io.IOBase):
        def __init__(self) -> None:
            self._lines = [b"", b"", b"test"]

        def read(self, size: int = -1) -> bytes:
            return self._lines.pop()

    return [
        (OneRead(), "test"),
        (io.TextIOWrapper(io.BytesIO(b"test")), "test"),
        (io.BufferedReader(io.BytesIO(b"test")), "test"),
        (_chunks(), None),
    ]


@pytest.mark.parametrize("w", [aiohttp.web, web], ids=["aiohttp", "squall"])
def test_text_of_a_payload_body(w: Any) -> None:
    for body, expected in _bodies():
        resp = w.Response(body=body)
        if expected is None:
            with pytest.raises(TypeError):
                _ = resp.text
            body.aclose().close()  # (never iterated)
        else:
            assert resp.text == expected


async def test_text_of_a_file_body_leaves_it_to_be_sent(squall_client: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        resp = web.Response(body=io.BufferedReader(io.BytesIO(b"whole")))
        assert resp.text == "whole"
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    client = await squall_client(app)
    async with client.get("/") as resp:
        assert await resp.read() == b"whole"


# -- requests ---------------------------------------------------------------------------------


@BOTH
def test_message_is_deprecated_and_describes_the_head(w: Any, mocked: Any) -> None:
    request = mocked("POST", "/p?q=1", headers={"Transfer-Encoding": "chunked"})
    with pytest.deprecated_call(match=r"^Request\.message is deprecated$"):
        message = request.message
    assert (message.method, message.path, message.version) == ("POST", "/p?q=1", (1, 1))
    assert message.chunked and not message.should_close and not message.upgrade
    assert str(message.url) == "/p?q=1" and message.headers["Transfer-Encoding"] == "chunked"


def test_task_of_a_mocked_request_outside_a_loop() -> None:
    request = make_mocked_request("GET", "/")
    assert request.task is None


@BOTH
def test_many_invalid_cookies_log_once(
    w: Any, mocked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "bad" + chr(1) + "name"
    cookie = "; ".join(f"{bad}{i}=1" for i in range(300)) + "; good=1"
    request = mocked("GET", "/", headers=CIMultiDict(COOKIE=cookie))
    with caplog.at_level(logging.DEBUG):
        assert dict(request.cookies) == {"good": "1"}
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.DEBUG
    assert "Cannot load cookie" in caplog.records[0].getMessage()


async def test_content_of_a_mocked_request_made_of_bytes(squall_loop: Any) -> None:
    payload = bytes(range(256)) * 4
    request = make_mocked_request("GET", "/", headers={"Range": "bytes=10-19"}, payload=payload)
    assert request.content[request.http_range] == payload[10:20]  # type: ignore[index]
    assert await request.read() == payload  # and still a body to read


def test_mocked_aiohttp_request_content_slicing_is_the_reference() -> None:
    payload = bytearray(range(200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        request = aiohttp.test_utils.make_mocked_request(
            "GET", "/", headers={"Range": "bytes=-50"}, payload=payload
        )
    assert request.content[request.http_range] == payload[-50:]
    ours = make_mocked_request("GET", "/", headers={"Range": "bytes=-50"}, payload=payload)
    assert ours.content[ours.http_range] == payload[-50:]  # type: ignore[index]


# -- squall.testing.aiohttp_plugin ------------------------------------------------------------

FAILING_THEN_PASSING = """
import asyncio
import gc


async def test_fails():
    raise AssertionError("on purpose")


def test_after_it():
    left = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    assert [loop for loop in left if not loop.is_closed()] == []
"""


def test_a_failing_coroutine_test_leaves_no_loop_for_the_next_to_fail_on(
    tmp_path: Path,
) -> None:
    """aiohttp's plugin closes a coroutine test's loop only when the test passes; squall's
    aiohttp plugin closes it after a failure too, so the next test does not fail on the
    unclosed loop's ResourceWarning."""
    (tmp_path / "test_loops.py").write_text(FAILING_THEN_PASSING)
    env = {**os.environ, "PYTHONPATH": str(Path(web.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "squall.testing.aiohttp_plugin",
         "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr


# -- on_response_prepare sees the head's Date and Server ---------------------------------------


async def test_on_response_prepare_can_remove_or_replace_server_and_date(squall_loop: Any) -> None:
    """aiohttp's handlers find Date and Server among the headers (the usual way to hide the
    server's name is ``del response.headers["Server"]`` there)."""

    def build(w: Any) -> Any:
        async def strip(request: Any, response: Any) -> None:
            assert "Date" in response.headers and "Server" in response.headers
            if request.path == "/stream":
                response.headers["Server"] = "custom"
            else:
                del response.headers["Server"]
                if request.path == "/ws":
                    del response.headers["Date"]

        async def whole(request: Any) -> Any:
            return w.Response(text="whole")

        async def stream(request: Any) -> Any:
            resp = w.StreamResponse()
            await resp.prepare(request)
            await resp.write(b"stream")
            return resp

        async def ws(request: Any) -> Any:
            sock = w.WebSocketResponse()
            await sock.prepare(request)
            await sock.close()
            return sock

        app = w.Application()
        app.on_response_prepare.append(strip)
        app.router.add_get("/", whole)
        app.router.add_get("/stream", stream)
        app.router.add_get("/ws", ws)
        return app

    async def call(client: Any) -> list[Any]:
        seen = []
        for path in ("/", "/stream"):
            async with client.get(path) as resp:
                seen.append((await resp.text(), resp.headers.get("Server"), "Date" in resp.headers))
        sock = await client.ws_connect("/ws")
        headers = sock._response.headers
        seen.append(("ws", headers.get("Server"), "Date" in headers))
        await sock.close()
        return seen

    theirs, ours = await on_both(build, call)
    assert (
        ours == theirs == [("whole", None, True), ("stream", "custom", True), ("ws", None, False)]
    )


async def test_an_empty_file_keeps_its_content_length_on_head(
    squall_loop: Any, tmp_path: Path
) -> None:
    """A FileResponse knows its length even when it is 0: HEAD says it, as aiohttp's."""
    (tmp_path / "empty.txt").write_bytes(b"")

    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            return w.FileResponse(tmp_path / "empty.txt")

        app = w.Application()
        app.router.add_route("*", "/", handler)
        return app

    async def call(client: Any) -> list[str | None]:
        seen = []
        for method in ("GET", "HEAD"):
            async with client.request(method, "/") as resp:
                seen.append(resp.headers.get("Content-Length"))
        return seen

    theirs, ours = await on_both(build, call)
    assert ours == theirs == ["0", "0"]


async def test_on_response_prepare_removes_server_over_http2_too(squall_loop: Any) -> None:
    httpx = pytest.importorskip("httpx")

    async def strip(request: web.Request, response: web.StreamResponse) -> None:
        del response.headers["Server"]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="h2")

    app = web.Application()
    app.on_response_prepare.append(strip)
    app.router.add_get("/", handler)
    async with (
        TestServer(app, http2=True) as server,
        httpx.AsyncClient(http1=False, http2=True, timeout=10) as client,
    ):
        resp = await client.get(str(server.make_url("/")))
    assert resp.http_version == "HTTP/2" and resp.text == "h2"
    assert "server" not in resp.headers and "date" in resp.headers


async def test_an_asgi_app_sends_no_server_with_an_empty_one(squall_loop: Any) -> None:
    from squall.asgi import serve

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"server", b""), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"asgi"})

    async with serve(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as session:
        resp = await session.get(f"http://127.0.0.1:{server.port}/")
        assert await resp.text() == "asgi"
        assert "Server" not in resp.headers and "Date" in resp.headers


def test_typed_keys_name_aiohttps_modules_under_the_alias() -> None:
    """Under install_as_aiohttp(), a typed key's repr names squall's classes by the aiohttp
    module the application imports them from; without the alias, by squall's own."""
    code = (
        "from squall import web\n"
        "print(repr(web.AppKey('k', web.Request)))\n"
        "import squall; squall.install_as_aiohttp()\n"
        "from aiohttp import web as aweb\n"
        "from aiohttp.web_response import ResponseKey\n"
        "print(repr(aweb.AppKey('k', aweb.Request)))\n"
        "print(repr(ResponseKey('k', aweb.Response)))\n"
        "print(repr(aweb.AppKey('k', int)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert out == [
        "<AppKey(__main__.k, type=squall.web.request.Request)>",
        "<AppKey(__main__.k, type=aiohttp.web_request.Request)>",
        "<ResponseKey(__main__.k, type=aiohttp.web_response.Response)>",
        "<AppKey(__main__.k, type=int)>",
    ]
