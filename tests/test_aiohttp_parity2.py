"""Public-API differences found by aiohttp's own test suite (``make aiohttp-suite``), closed.

Each case runs the same application on aiohttp's server and on squall's, with aiohttp's client,
and compares what the client sees; unit-level cases compare with aiohttp's objects directly.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.test_utils
import aiohttp.web
import pytest

from squall import web
from squall.testing import TestServer, make_mocked_request

from .side_by_side import on_both

# -- request bodies -------------------------------------------------------------------------


def test_has_body_and_loop_are_deprecated_as_in_aiohttp() -> None:
    loop = asyncio.new_event_loop()
    try:
        for make in (aiohttp.test_utils.make_mocked_request, make_mocked_request):
            req = make("GET", "/", loop=loop)
            with pytest.deprecated_call(match=r"^Deprecated, use \.can_read_body #2005$"):
                assert req.has_body is False
            with pytest.deprecated_call(match=r"^request\.loop property is deprecated$"):
                assert req.loop is loop
    finally:
        loop.close()


async def test_has_body_on_a_served_request_warns_and_answers(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                has_body = request.has_body
            kinds = {c.category.__name__ for c in caught}
            return w.Response(text=f"{has_body} {request.can_read_body} {sorted(kinds)}")

        app = w.Application()
        app.router.add_route("*", "/", handler)
        return app

    async def call(client: Any) -> tuple[str, str]:
        async with client.get("/") as empty, client.post("/", data=b"data") as full:
            return await empty.text(), await full.text()

    theirs, ours = await on_both(build, call)
    assert (
        ours
        == theirs
        == (
            "False False ['DeprecationWarning']",
            "True True ['DeprecationWarning']",
        )
    )


async def test_a_custom_expect_handler_writes_100_continue(squall_loop: Any) -> None:
    """aiohttp's documented custom expect handler writes the interim response itself through
    ``request.writer``; squall sends it (once) and the body follows."""

    def build(w: Any) -> Any:
        seen = []

        async def expect_handler(request: Any) -> None:
            seen.append(request.headers.get("Expect"))
            if request.headers.get("X-Refuse"):
                raise w.HTTPForbidden()
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        async def handler(request: Any) -> Any:
            data = await request.post()
            return w.Response(text=f"{data['name']} {seen}")

        app = w.Application()
        app.router.add_post("/", handler, expect_handler=expect_handler)
        return app

    async def call(client: Any) -> list[tuple[int, str]]:
        out = []
        for headers in ({}, {"X-Refuse": "1"}):
            async with client.post(
                "/", data={"name": "123"}, expect100=True, headers=headers
            ) as resp:
                out.append((resp.status, (await resp.text())[:30]))
        return out

    theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours[0] == (200, "123 ['100-continue']")
    assert ours[1][0] == 403


async def test_a_raw_100_continue_over_a_socket_arrives_before_the_body_is_read(
    squall_loop: Any,
) -> None:
    """The 100 goes out when the expect handler writes it, not at the handler's first read."""
    release = asyncio.Event()

    async def expect_handler(request: web.Request) -> None:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_post("/", handler, expect_handler=expect_handler)
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        release.set()
        writer.write(b"ok")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"ok"
        writer.close()


async def test_read_bufsize_sets_the_body_buffer_limits(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            limits = request.content.get_read_buffer_limits()
            return w.Response(text=f"{await request.text()} {limits!r}")

        app = w.Application(handler_args={"read_bufsize": 2})
        app.router.add_post("/", handler)
        return app

    async def call(client: Any) -> tuple[int, str]:
        async with client.post("/", data=b"data") as resp:
            return resp.status, await resp.text()

    theirs, ours = await on_both(build, call)
    assert ours == theirs == (200, "data (2, 4)")


# -- payload objects as bodies --------------------------------------------------------------


async def test_aiohttp_payload_objects_as_bodies(tmp_path: Path, squall_loop: Any) -> None:
    """``aiohttp.get_payload(file)`` with a disposition, ``@aiohttp.streamer`` and an async
    generator: each sends its bytes with the same headers as on aiohttp."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789" * 1000)
    with pytest.warns(DeprecationWarning):

        @aiohttp.streamer
        async def stream(writer: Any, name: Path) -> None:
            with name.open("rb") as f:
                while data := f.read(700):
                    await writer.write(data)

    opened: list[Any] = []

    def build(w: Any) -> Any:
        async def file_payload(request: Any) -> Any:
            f = path.open("rb")
            opened.append(f)
            pl = aiohttp.get_payload(f)
            pl.set_content_disposition("inline", filename="test.txt")
            return w.Response(body=pl, headers={"content-type": "text/binary"})

        async def streamed(request: Any) -> Any:
            return w.Response(body=stream(path), headers={"Content-Length": "10000"})

        async def strio(request: Any) -> Any:
            return w.Response(body=io.StringIO("test"))

        app = w.Application()
        app.router.add_get("/file", file_payload)
        app.router.add_get("/streamer", streamed)
        app.router.add_get("/stringio", strio)
        return app

    async def call(client: Any) -> list[tuple[Any, ...]]:
        out = []
        for url in ("/file", "/streamer", "/stringio"):
            async with client.get(url) as resp:
                body = await resp.read()
                out.append(
                    (
                        resp.status,
                        len(body),
                        body[:4],
                        resp.headers.get("Content-Type"),
                        resp.headers.get("Content-Length"),
                        resp.headers.get("Content-Disposition"),
                    )
                )
        return out

    theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours[0] == (200, 10000, b"0123", "text/binary", "10000", 'inline; filename="test.txt"')
    for _ in range(100):  # aiohttp's payload closes its file from a thread, not awaited
        if all(f.closed for f in opened):
            break
        await asyncio.sleep(0.01)
    assert [f.closed for f in opened] == [True, True]


async def test_a_multipart_part_as_a_body_streams_within_client_max_size(squall_loop: Any) -> None:
    """``Response(body=part)`` streams a part larger than ``client_max_size`` (never read
    whole), with the part's name and filename as an attachment, as aiohttp does."""

    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            reader = await request.multipart()
            return w.Response(body=await reader.next())

        app = w.Application(client_max_size=2)
        app.router.add_post("/", handler)
        return app

    async def call(client: Any) -> list[tuple[int, bytes, str | None]]:
        out = []
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(b"test" * 100), filename="a.txt")
        with aiohttp.MultipartWriter() as unnamed:
            unnamed.append(b"test")
        for data in (form, unnamed):
            async with client.post("/", data=data) as resp:
                out.append(
                    (resp.status, await resp.read(), resp.headers.get("Content-Disposition"))
                )
        return out

    theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours[0] == (200, b"test" * 100, 'attachment; name="file"; filename="a.txt"')
    assert ours[1] == (200, b"test", None)


async def test_drain_is_deprecated_as_in_aiohttp(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            resp = w.StreamResponse(headers={"Content-Length": "4"})
            await resp.prepare(request)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await resp.drain()
            await resp.write(b"test")
            await resp.write_eof()
            assert [str(c.message) for c in caught] == [
                "drain method is deprecated, use await resp.write()"
            ]
            return resp

        app = w.Application()
        app.router.add_get("/", handler)
        return app

    async def call(client: Any) -> tuple[int, bytes]:
        async with client.get("/") as resp:
            return resp.status, await resp.read()

    theirs, ours = await on_both(build, call)
    assert ours == theirs == (200, b"test")


# -- ETag and Last-Modified ------------------------------------------------------------------


def _etag_outcome(module: Any, value: Any) -> tuple[str, Any, Any]:
    resp = module.StreamResponse()
    try:
        resp.etag = value
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc).split(":")[0].split(".")[0], None
    got = resp.etag
    return "ok", resp.headers.get("ETag"), None if got is None else (got.value, got.is_weak)


@pytest.mark.parametrize(
    "make",
    [
        lambda etag: "0123-kotik",
        lambda etag: "*",
        lambda etag: etag(value="*"),
        lambda etag: etag(value="w", is_weak=True),
        lambda etag: etag(value="s"),
        lambda etag: '"invalid"',
        lambda etag: "повинен бути ascii",
        lambda etag: etag(value='"invalid"', is_weak=True),
        lambda etag: etag(value="bad ©®"),
        lambda etag: 123,
        lambda etag: etag(value=123, is_weak=True),
    ],
)
def test_etag_set_and_get_as_in_aiohttp(make: Callable[[Any], Any]) -> None:
    import aiohttp.helpers

    from squall.web.headers import ETag

    theirs = _etag_outcome(aiohttp.web, make(aiohttp.helpers.ETag))
    assert _etag_outcome(web, make(ETag)) == theirs
    # aiohttp's ETag objects are taken (and compare equal) too: under install_as_aiohttp()
    # aiohttp.helpers stays aiohttp's
    assert _etag_outcome(web, make(aiohttp.helpers.ETag)) == theirs


@pytest.mark.parametrize("header", ["forgotten quotes", '"∀ x ∉ ascii"', '"a", "b"', 'W/"w"', ""])
def test_etag_read_from_a_header_as_in_aiohttp(header: str) -> None:
    def read(module: Any) -> Any:
        resp = module.StreamResponse()
        resp.headers["ETag"] = header
        got = resp.etag
        return None if got is None else (got.value, got.is_weak)

    assert read(web) == read(aiohttp.web)


def test_an_etag_equals_aiohttps() -> None:
    import aiohttp.helpers

    from squall.web.headers import ETag

    assert ETag("x", True) == aiohttp.helpers.ETag(value="x", is_weak=True)
    assert aiohttp.helpers.ETag(value="x") == ETag("x")
    assert ETag("x") != aiohttp.helpers.ETag(value="x", is_weak=True)
    assert ETag("x") != "x"


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.5,
        1606902662.5,
        datetime.datetime(2020, 12, 2, 9, 51, 2, 500000, datetime.UTC),
        datetime.datetime(2020, 12, 2, 9, 51, 2, 0, datetime.UTC),
        datetime.datetime(2020, 12, 2, 9, 51, 2, 1),  # naive: taken as UTC
        "Mon, 2 Jan 1990 03:04:05 GMT",
        object(),
    ],
)
def test_last_modified_as_in_aiohttp(value: Any) -> None:
    def outcome(module: Any) -> Any:
        resp = module.StreamResponse()
        try:
            resp.last_modified = value
        except TypeError as exc:
            return str(exc)
        return resp.headers["Last-Modified"], resp.last_modified

    assert outcome(web) == outcome(aiohttp.web)


# -- resp.headers after prepare() ------------------------------------------------------------


async def test_headers_after_prepare_are_what_was_sent(squall_loop: Any) -> None:
    """After ``prepare()``, ``resp.headers`` hold the head as sent, as aiohttp rewrites them:
    the framing header, Date and Server added; none of Content-Length/Transfer-Encoding for a
    204 or 304, whatever the application set; a HEAD keeps the length a GET would get."""

    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            status = int(request.query.get("status", "200"))
            if request.query.get("stream"):
                resp = w.StreamResponse(status=status)
                resp.enable_chunked_encoding()
            else:
                resp = w.Response(status=status, body=b"answer")
                if status != 200:  # not sent with a 204 or 304, and gone from the headers
                    resp.headers["Transfer-Encoding"] = "chunked"
            resp.set_cookie("c", "1")
            await resp.prepare(request)
            seen = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() not in ("date", "server")  # their values differ between servers
            }
            present = sorted(k.lower() for k in resp.headers if k.lower() in ("date", "server"))
            text = f"{sorted((k.lower(), v) for k, v in seen.items())} {present}"
            text += f" {resp.content_length}"
            request.app["seen"].append(text)
            await resp.write_eof()
            return resp

        app = w.Application()
        app["seen"] = []
        app.router.add_route("*", "/", handler)
        return app

    async def call(client: Any) -> list[str]:
        for method, query in (
            ("GET", ""),
            ("HEAD", ""),
            ("GET", "?status=204"),
            ("GET", "?status=304"),
            ("GET", "?stream=1"),
        ):
            async with client.request(method, "/" + query) as resp:
                await resp.read()
        return list(client.server.app["seen"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (app["seen"]: a str key, on both)
        theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert "('content-length', '6')" in ours[1]  # HEAD
    assert "content-length" not in ours[2] and "transfer-encoding" not in ours[2]  # 204
    assert "('transfer-encoding', 'chunked')" in ours[4]
    assert all("['date', 'server']" in line for line in ours)


# -- reprs and content types -----------------------------------------------------------------


async def test_reprs_as_in_aiohttp(squall_loop: Any) -> None:
    def reprs(module: Any, make: Any) -> list[str]:
        out = [repr(make("GET", "/path/\U0001f415\U0001f308"))]
        for cls in (module.StreamResponse, module.Response):
            resp = cls(reason="foo")
            out.append(repr(resp))
        return out

    assert reprs(web, make_mocked_request) == reprs(
        aiohttp.web, aiohttp.test_utils.make_mocked_request
    )
    assert reprs(web, make_mocked_request)[1] == "<StreamResponse foo not prepared>"

    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            resp = w.StreamResponse()
            seen = [repr(resp)]
            await resp.prepare(request)
            seen.append(repr(resp))
            await resp.write_eof()
            seen.append(repr(resp))
            request.app["seen"].append("|".join(seen))
            return resp

        app = w.Application()
        app["seen"] = []
        app.router.add_get("/a/{x}", handler)
        return app

    async def call(client: Any) -> str:
        async with client.get("/a/%C3%A9") as resp:
            await resp.read()
        seen: str = client.server.app["seen"][0]
        return seen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (app["seen"]: a str key, on both)
        theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours == (
        "<StreamResponse OK not prepared>|<StreamResponse OK GET /a/é >|<StreamResponse OK eof>"
    )


@pytest.mark.parametrize("ctype", ["jpeg", "text/html", "a/b/c", "image/PNG; q=1"])
def test_content_type_without_a_slash_reads_as_octet_stream(ctype: str) -> None:
    def read(module: Any) -> tuple[str, str]:
        resp = module.Response(text="x", content_type=ctype)
        return resp.content_type, resp.headers["Content-Type"]

    assert read(web) == read(aiohttp.web)


# -- deprecations aiohttp warns about --------------------------------------------------------


def test_http_exception_body_is_deprecated_as_in_aiohttp() -> None:
    for module in (aiohttp.web, web):
        with pytest.warns(DeprecationWarning, match="^body argument is deprecated for http web"):
            resp = module.HTTPNotFound(body=b"<p>gone</p>", content_type="text/html")
        assert (resp.status, resp.body, resp.content_type) == (404, b"<p>gone</p>", "text/html")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert module.HTTPNotFound(text="gone").text == "gone"  # text= is not deprecated


def test_chunk_size_is_deprecated_as_in_aiohttp() -> None:
    for module in (aiohttp.web, web):
        resp = module.StreamResponse()
        with pytest.warns(DeprecationWarning, match="^Chunk size is deprecated #1615$"):
            resp.enable_chunked_encoding(chunk_size=8192)
        assert resp.chunked


async def test_returning_an_http_exception_is_deprecated_raising_is_not(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def returned(request: Any) -> Any:
            return w.HTTPForbidden()

        async def raised(request: Any) -> Any:
            raise w.HTTPForbidden()

        app = w.Application()
        app.router.add_get("/returned", returned)
        app.router.add_get("/raised", raised)
        return app

    async def call(client: Any) -> list[tuple[int, list[str]]]:
        out = []
        for path in ("/returned", "/raised"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                async with client.get(path) as resp:
                    await resp.read()
            messages = [str(c.message)[:40] for c in caught if c.category is DeprecationWarning]
            out.append((resp.status, messages))
        return out

    theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours == [(403, ["returning HTTPException object is deprec"]), (403, [])]


# -- small ones -------------------------------------------------------------------------------


async def test_cleanup_after_a_failed_setup_exits_the_started_contexts(squall_loop: Any) -> None:
    async def outcome(module: Any) -> list[str]:
        events: list[str] = []

        async def good(app: Any) -> Any:
            events.append("enter")
            yield
            events.append("exit")

        async def bad(app: Any) -> Any:
            raise ValueError("startup failed")
            yield  # pragma: no cover

        async def on_shutdown(app: Any) -> None:
            events.append("shutdown")

        app = module.Application()
        app.cleanup_ctx.extend([good, bad])
        app.on_shutdown.append(on_shutdown)
        runner = module.AppRunner(app)
        with pytest.raises(ValueError):
            await runner.setup()
        await runner.cleanup()
        return events

    assert await outcome(web) == await outcome(aiohttp.web) == ["enter", "exit"]


def test_typed_keys_sort_before_strings_as_in_aiohttp() -> None:
    def order(module: Any) -> list[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            app = module.Application()
            app["a"] = 0
            app[module.AppKey("b", str)] = 1
            app[module.AppKey("c", str)] = 2
            app["d"] = 4
        return [k if isinstance(k, str) else k._name for k in sorted(app)]

    assert order(web) == order(aiohttp.web)
    assert order(web)[2:] == ["a", "d"]


async def test_clone_after_reading_the_body_raises(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            request.clone()  # before: fine
            await request.read()
            try:
                request.clone()
            except RuntimeError as exc:
                return w.Response(text=str(exc))
            return w.Response(text="cloned")

        app = w.Application()
        app.router.add_post("/", handler)
        return app

    async def call(client: Any) -> str:
        async with client.post("/", data=b"data") as resp:
            text: str = await resp.text()
        return text

    theirs, ours = await on_both(build, call)
    assert ours == theirs == "Cannot clone request after reading its content"


async def test_chunked_prepare_for_http10_raises(squall_loop: Any) -> None:
    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            resp = w.StreamResponse()
            resp.enable_chunked_encoding()
            try:
                await resp.prepare(request)
            except RuntimeError as exc:
                return w.Response(text=str(exc))
            await resp.write(b"chunked")
            return resp

        app = w.Application()
        app.router.add_get("/", handler)
        return app

    async def call(client: Any) -> list[bytes]:
        out = []
        for version in (b"1.0", b"1.1"):
            reader, writer = await asyncio.open_connection(client.host, client.port)
            writer.write(b"GET / HTTP/%b\r\nHost: x\r\nConnection: close\r\n\r\n" % version)
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            status = data.split(b"\r\n", 1)[0].split(b" ", 1)[1]  # (squall answers HTTP/1.1)
            out.append(status + b" " + data.split(b"\r\n\r\n", 1)[1])
        return out

    theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours == [
        b"200 OK Using chunked encoding is forbidden for HTTP/1.0",
        b"200 OK 7\r\nchunked\r\n0\r\n\r\n",
    ]


async def test_an_absolute_form_target_gives_the_host(squall_loop: Any) -> None:
    """RFC 9112 3.2.2: with an absolute-form target the Host header is ignored; the host (and
    ``url``) come from the target, as aiohttp does; the scheme stays the connection's."""

    def build(w: Any) -> Any:
        async def handler(request: Any) -> Any:
            cloned = request.clone(host="foo.test")
            return w.Response(
                text=f"{request.host} {request.url} {request.rel_url} {cloned.host} {cloned.url}"
            )

        app = w.Application()
        app.router.add_get("/path/to", handler)
        return app

    async def call(client: Any) -> bytes:
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            b"GET https://example.com:8443/path/to?a=1 HTTP/1.1\r\nHost: other\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        body: bytes = data.split(b"\r\n\r\n", 1)[1]
        return body

    theirs, ours = await on_both(build, call)
    assert ours == theirs
    assert ours.startswith(b"example.com http://example.com:8443/path/to?a=1 /path/to?a=1 foo.test")
