"""Small public-API gaps found by aiohttp's plugins and its own tests (issues 22 and 28).

Each case is checked side by side with the installed aiohttp where it can be.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import warnings
import zlib
from typing import Any
from unittest import mock

import aiohttp
import aiohttp.http_writer
import aiohttp.test_utils
import aiohttp.web
import pytest

from squall import web
from squall.testing import (
    get_unused_port_socket,
    make_mocked_coro,
    make_mocked_request,
)
from squall.testing.pytest_plugin import SquallClient

COOKIE_HEADERS = [
    'a="1\\054 2"',  # http.cookies' octal escape of ",": aiohttp-session's JSON cookies
    'a="\\012"; b=2',
    'a="\\0541"',
    'a="\\377"',
    'a="\\400"',  # not an octal byte: the backslash goes, the digits stay
    'a="x\\"y"',
    'a="\\q"',
    'a="q\\\\"; b="2"',
    'a="1;2"; b=3',  # a quoted ";" is part of the value
    'a= "1;2" ; b=3',
    'a="x\\";y"; b=1',
    'a="1;2"x; b=3',  # not a whole quoted value: split at ";" as before
    'a="1;2',
    'a=x"1;2"; b=3',
    "a=1\\054 2",
    "a=b; c",
    'a=""; b',
]


@pytest.mark.parametrize("header", COOKIE_HEADERS)
def test_cookies_read_as_aiohttp_reads_them(header: str) -> None:
    ours = make_mocked_request("GET", "/", headers={"Cookie": header}).cookies
    theirs = aiohttp.test_utils.make_mocked_request("GET", "/", headers={"Cookie": header}).cookies
    assert dict(ours) == dict(theirs)


def test_cookie_octal_escape() -> None:
    request = make_mocked_request(
        "GET", "/", headers={"Cookie": 'session="{\\"a\\": 1\\054 \\"b\\": 2}"'}
    )
    assert request.cookies["session"] == '{"a": 1, "b": 2}'


def test_application_call_returns_the_application() -> None:
    for module in (web, aiohttp.web):
        app = module.Application()
        assert app() is app


def test_application_loop_is_deprecated_and_is_the_running_loop() -> None:
    with pytest.warns(DeprecationWarning, match="loop argument is deprecated"):
        aiohttp.web.Application(loop=asyncio.new_event_loop())
    loop = asyncio.new_event_loop()
    try:
        with pytest.warns(DeprecationWarning, match="loop argument is deprecated"):
            app = web.Application(loop=loop)
        with pytest.warns(DeprecationWarning, match="loop property is deprecated"):
            assert app.loop is loop

        async def running() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return web.Application().loop

        assert loop.run_until_complete(running()) is loop
    finally:
        loop.close()


def test_router_frozen() -> None:
    for module in (web, aiohttp.web):
        app = module.Application()
        assert app.router.frozen is False
        app.freeze()
        assert app.router.frozen is True


def test_request_client_max_fields() -> None:
    assert aiohttp.test_utils.make_mocked_request("GET", "/").client_max_fields == 1000
    assert make_mocked_request("GET", "/").client_max_fields == 1000
    app = web.Application(client_max_fields=5)
    request = make_mocked_request("GET", "/", app=app)
    assert request.client_max_fields == 5
    assert request.clone(client_max_fields=7).client_max_fields == 7
    assert request.clone().client_max_fields == 5


@pytest.mark.usefixtures("squall_loop")
async def test_client_max_fields_of_a_clone_limits_post() -> None:
    body = b"&".join(b"f%d=1" % i for i in range(4))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = make_mocked_request("POST", "/", headers=headers, payload=body)
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await request.clone(client_max_fields=3).post()
    request = make_mocked_request("POST", "/", headers=headers, payload=body)
    assert len(await request.clone(client_max_fields=4).post()) == 4


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hi")


async def test_client_requests_are_coroutines(squall_client: SquallClient) -> None:
    app = web.Application()
    app.router.add_get("/", _hello)
    client = await squall_client(app)
    task = asyncio.create_task(client.get("/"))  # aiohttp's _RequestContextManager allows it
    resp = await task
    assert await resp.text() == "hi"
    async with client.get("/") as resp:
        assert resp.status == 200
    pending = client.get("/")
    pending.close()  # never sent: closing the coroutine leaves no "never awaited" warning


def test_port_sockets_and_mocked_coro() -> None:
    with get_unused_port_socket("127.0.0.1") as sock:
        assert sock.family == socket.AF_INET and sock.getsockname()[1] > 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    coro = make_mocked_coro(return_value=3)
    assert asyncio.run(coro(1, x=2)) == 3
    coro.assert_called_once_with(1, x=2)
    failing = make_mocked_coro(raise_exception=ValueError("no"))
    with pytest.raises(ValueError, match="no"):
        asyncio.run(failing())


# -- found by aiohttp's own test_web_functional ------------------------------------------------


async def _probe(request: web.Request) -> web.Response:
    return web.json_response(
        {"scheme": request.scheme, "secure": request.secure, "url": str(request.url)}
    )


async def test_absolute_form_target_does_not_spoof_scheme_or_host(squall_loop: Any) -> None:
    """`GET https://trusted.example/...` on a plain connection is not secure: the scheme comes
    from the connection; the host from the target, the Host field ignored (RFC 9112 3.2.2), as
    aiohttp 3.14 decides (checked side by side in test_aiohttp_parity2)."""
    app = web.Application()
    app.router.add_get("/probe", _probe)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET https://trusted.example/probe?x=1 HTTP/1.1\r\nHost: other.example\r\n"
            b"Connection: close\r\n\r\n"
        )
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        await runner.cleanup()
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1]) == {
        "scheme": "http",
        "secure": False,
        "url": "http://trusted.example/probe?x=1",
    }


async def test_expect_handler_runs_for_a_request_without_body(
    squall_client: Any,
) -> None:
    """The route's expect handler sees every `Expect: 100-continue` request (as in aiohttp),
    body or not, and a response it returns is the answer."""
    seen: list[str] = []

    async def expect(request: web.Request) -> web.Response | None:
        seen.append(request.headers.get("X-Key", ""))
        return web.Response(text="from expect") if request.headers.get("X-Key") else None

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="from handler")

    app = web.Application()
    app.router.add_route("POST", "/", handler, expect_handler=expect)
    client = await squall_client(app)
    async with client.post("/", expect100=True, headers={"X-Key": "k"}) as resp:
        assert resp.status == 200 and await resp.text() == "from expect"
    async with client.post("/", expect100=True) as resp:
        assert resp.status == 200 and await resp.text() == "from handler"
    assert seen == ["k", ""]


@pytest.mark.parametrize("auto", [True, False])
async def test_handler_args_auto_decompress(squall_client: Any, auto: bool) -> None:
    """handler_args={"auto_decompress": False}: the body is read as sent, still compressed."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application(handler_args={"auto_decompress": auto})
    app.router.add_post("/", echo)
    client = await squall_client(app)
    packed = zlib.compress(b"hello " * 10)
    async with client.post("/", data=packed, headers={"Content-Encoding": "deflate"}) as resp:
        got = await resp.read()
    assert got == (b"hello " * 10 if auto else packed)


async def test_websocket_status_set_before_prepare_becomes_101(squall_client: Any) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        ws.set_status(200)
        assert ws.status == 200
        await ws.prepare(request)
        assert ws.status == 101
        await ws.send_str("ok")
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    client = await squall_client(app)
    ws = await client.ws_connect("/")
    assert (await ws.receive_str()) == "ok"
    await ws.close()


@pytest.mark.parametrize(
    ("returned", "logged"),
    [
        ("abc", "Web-handler should return a response instance, got 'abc'"),
        (None, "Missing return statement on request handler"),
    ],
)
async def test_a_handler_returning_no_response_answers_500(
    squall_client: Any, caplog: pytest.LogCaptureFixture, returned: object, logged: str
) -> None:
    """As aiohttp: a 500, and the error logged in aiohttp's words."""

    async def handler(request: web.Request) -> Any:
        return returned

    app = web.Application()
    app.router.add_get("/", handler)
    client = await squall_client(app)
    with caplog.at_level(logging.ERROR, logger="squall.server"):
        async with client.get("/") as resp:
            assert resp.status == 500
            assert await resp.text() == "500: Internal Server Error"
    assert logged in [r.getMessage() for r in caplog.records if r.name == "squall.server"]


async def test_post_file_fields_are_closed_once_the_handler_returns(squall_client: Any) -> None:
    """As aiohttp: post()'s temporary files are closed after the handler (no descriptor leak),
    also when the handler fails."""
    fields: list[web.FileField] = []

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        field = form["f"]
        assert isinstance(field, web.FileField) and not field.file.closed
        fields.append(field)
        if request.path == "/fail":
            raise RuntimeError("after post()")
        return web.Response(text=field.file.read().decode())

    app = web.Application()
    app.router.add_post("/", handler)
    app.router.add_post("/fail", handler)
    client = await squall_client(app)
    for path, status in (("/", 200), ("/fail", 500)):
        data = aiohttp.FormData()
        data.add_field("f", b"content", filename="f.txt")
        async with client.post(path, data=data) as resp:
            assert resp.status == status
    assert len(fields) == 2 and all(field.file.closed for field in fields)


@pytest.mark.usefixtures("squall_loop")
async def test_mocked_request_writer_gets_the_response_as_aiohttp_gives_it() -> None:
    """make_mocked_request(writer=...): the head and body go to aiohttp's writer interface."""
    got: list[Any] = []
    writer = mock.Mock()

    async def write_headers(status_line: str, headers: Any) -> None:
        got.append((status_line, dict(headers)))

    async def write(data: bytes) -> None:
        got.append(data)

    writer.write_headers.side_effect = write_headers
    writer.write.side_effect = write
    request = make_mocked_request("GET", "/", writer=writer)
    assert request.writer is writer
    resp = web.StreamResponse(headers={"X-A": "1"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"abc")
    await resp.write_eof()
    status_line, headers = got[0]
    assert status_line == "HTTP/1.1 200 OK"
    assert headers["X-A"] == "1" and headers["Transfer-Encoding"] == "chunked"
    # as aiohttp's response hands its writer the body: unframed, the end as write_eof()
    assert got[1:] == [b"abc"]
    assert writer.enable_chunking.called
    writer.write_eof.assert_called_once_with(b"")
    # aiohttp's own mocked StreamWriter (AsyncMock methods) is accepted as well
    spec = mock.create_autospec(aiohttp.http_writer.StreamWriter, spec_set=True, instance=True)
    request = make_mocked_request("HEAD", "/", writer=spec)
    await web.Response(body=b"answer").prepare(request)
    spec.write_headers.assert_awaited_once()
    assert spec.write_headers.call_args.args[1]["Content-Length"] == "6"


async def test_a_served_request_writer_takes_only_an_interim_continue(squall_client: Any) -> None:
    """A served request's ``writer`` frames nothing itself: it takes the 100 Continue that
    aiohttp's custom expect handlers write (test_aiohttp_parity2 covers that), nothing else."""

    async def handler(request: web.Request) -> web.Response:
        with pytest.raises(RuntimeError, match="100 Continue"):
            await request.writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        return web.Response(text=type(request.writer).__name__)

    app = web.Application()
    app.router.add_get("/", handler)
    client = await squall_client(app)
    async with client.get("/") as resp:
        assert await resp.text() == "InterimWriter"


def test_web_main_finds_its_helpers_in_the_web_module() -> None:
    """aiohttp's ``web.main``: the parser, import_module and run_app are looked up in ``web``
    when it runs, so that they can be patched there (aiohttp's own tests do)."""
    app = web.Application()
    module = mock.Mock()
    module.func.return_value = app
    with (
        mock.patch.object(web, "import_module", return_value=module) as import_module,
        mock.patch.object(web, "run_app") as run_app,
        pytest.raises(SystemExit),
    ):
        web.main(["-P", "6666", "alpha.beta:func", "--extra"])
    import_module.assert_called_once_with("alpha.beta")
    module.func.assert_called_once_with(["--extra"])
    run_app.assert_called_once_with(app, host="localhost", port=6666, path=None)
