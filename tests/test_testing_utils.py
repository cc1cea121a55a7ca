"""squall.testing and its pytest plugin: servers, client, mocked requests, fixtures.

These tests are themselves ``async def`` tests run by the plugin (loaded through its pytest11
entry point), the way users run theirs.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.test_utils
import pytest

from squall import web
from squall.testing import (
    RawTestServer,
    TestClient,
    TestServer,
    loop_context,
    make_mocked_request,
    unused_port,
)
from squall.testing.pytest_plugin import SquallClient, SquallRawServer, SquallServer

TIMEOUT = 10.0
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
KEY = web.AppKey("key", str)

# Async tests that take no squall fixture run on squall_loop too (as docs/testing.md says).
pytestmark = pytest.mark.usefixtures("squall_loop")


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "body": body.decode(),
            "cookie": request.cookies.get("seen", ""),
        }
    )


async def _set_cookie(request: web.Request) -> web.Response:
    resp = web.Response(text="set")
    resp.set_cookie("seen", "yes")
    return resp


def make_app() -> web.Application:
    app = web.Application()
    app[KEY] = "value"
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/cookie", _set_cookie)
    return app


async def client_for(squall_client: SquallClient, app: web.Application) -> TestClient[Any, Any]:
    return await squall_client(app, timeout=aiohttp.ClientTimeout(total=TIMEOUT))


# -- TestClient through the squall_client fixture ----------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
async def test_client_methods(squall_client: SquallClient, method: str) -> None:
    client = await client_for(squall_client, make_app())
    resp = await getattr(client, method)("/echo?x=1", data=b"payload")
    assert resp.status == 200
    assert await resp.json() == {
        "method": method.upper(),
        "path": "/echo",
        "query": {"x": "1"},
        "body": "payload",
        "cookie": "",
    }


async def test_client_head_request_and_context_manager(squall_client: SquallClient) -> None:
    client = await client_for(squall_client, make_app())
    resp = await client.head("/echo")
    assert resp.status == 200
    assert await resp.read() == b""
    async with client.request("PUT", "/echo", data="x") as resp:
        assert resp.status == 200
        assert (await resp.json())["method"] == "PUT"
    assert resp.closed or resp.connection is None  # released on leaving the block
    resp = await client.get("/missing")
    assert resp.status == 404


async def test_client_attributes_and_cookies(squall_client: SquallClient) -> None:
    app = make_app()
    client = await client_for(squall_client, app)
    assert client.app is app
    assert client.app[KEY] == "value"
    assert isinstance(client.server, TestServer)
    assert client.host == "127.0.0.1"
    assert client.port == client.server.port
    assert str(client.make_url("/a?b=1")) == f"http://127.0.0.1:{client.port}/a?b=1"
    assert isinstance(client.session, aiohttp.ClientSession)
    # The session keeps cookies for an IP-address host (an unsafe jar, as aiohttp's).
    await client.get("/cookie")
    resp = await client.get("/echo")
    assert (await resp.json())["cookie"] == "yes"
    # The session itself wants absolute URLs.
    async with client.session.get(client.make_url("/echo")) as resp:
        assert resp.status == 200


async def test_client_given_a_server_and_session_kwargs(
    squall_client: SquallClient, squall_server: SquallServer
) -> None:
    server = await squall_server(make_app())
    client = await squall_client(server, headers={"X-From": "session"})
    assert client.server is server
    async with client.get("/echo") as resp:
        assert resp.request_info.headers["X-From"] == "session"
    with pytest.raises(ValueError, match="Unknown argument type"):
        await squall_client(42)  # type: ignore[call-overload]


async def test_client_server_kwargs(squall_client: SquallClient) -> None:
    port = unused_port()
    client = await squall_client(make_app(), server_kwargs={"port": port})
    assert client.port == port
    assert (await client.get("/echo")).status == 200


async def test_testclient_as_context_manager_closes_everything() -> None:
    server = TestServer(make_app())
    async with TestClient(server) as client:
        resp = await client.get("/echo")
        assert resp.status == 200
        port = client.port
    assert server.closed and client.session.closed
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    await client.close()  # again: nothing happens
    with pytest.raises(TypeError, match="async with"), client:
        pass
    with pytest.raises(TypeError, match="TestServer"):
        TestClient(make_app())  # type: ignore[call-overload]


@pytest.mark.skipif(not hasattr(web, "WebSocketResponse"), reason="WebSockets not in yet")
async def test_client_ws_connect(squall_client: SquallClient) -> None:
    async def ws_echo(request: web.Request) -> Any:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"echo {msg.data}")
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_echo)
    client = await client_for(squall_client, app)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("hi")
        assert await ws.receive_str(timeout=TIMEOUT) == "echo hi"
    ws = await client.ws_connect("/ws")  # left open: client.close() closes it
    await ws.send_str("again")
    assert await ws.receive_str(timeout=TIMEOUT) == "echo again"


async def test_ws_connect_goes_to_the_test_server(squall_client: SquallClient) -> None:
    client = await client_for(squall_client, make_app())
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/echo")
    assert info.value.status == 200  # the request reached /echo, which did not upgrade


# -- TestServer -----------------------------------------------------------------------------


async def test_test_server_lifecycle() -> None:
    events: list[str] = []

    async def on_startup(app: web.Application) -> None:
        events.append("startup")

    async def on_cleanup(app: web.Application) -> None:
        events.append("cleanup")

    app = make_app()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    server = TestServer(app)
    assert not server.started
    async with server:
        assert server.started and not server.closed
        assert events == ["startup"]
        assert server.scheme == "http" and server.port
        assert str(server.make_url("/x")) == f"http://127.0.0.1:{server.port}/x"
        with pytest.raises(AssertionError):
            server.make_url("http://elsewhere/x")
        assert server.handler is server.runner.server
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", server.port), TIMEOUT
        )
        writer.write(b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), TIMEOUT)).startswith(b"HTTP/1.1 200 OK")
        writer.close()
        await server.start_server()  # a second start does nothing
    assert server.closed and events == ["startup", "cleanup"]
    assert server.port is None
    await server.close()
    assert events == ["startup", "cleanup"]


async def test_test_server_cancels_handlers_of_gone_clients() -> None:
    cancelled = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        try:
            await asyncio.sleep(TIMEOUT)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()

    app = web.Application()
    app.router.add_get("/slow", slow)
    async with TestServer(app) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        await asyncio.sleep(0.1)
        writer.close()
        await asyncio.wait_for(cancelled.wait(), TIMEOUT)  # handler_cancellation=True


async def test_test_server_runner_kwargs_and_skip_url_asserts() -> None:
    async with TestServer(make_app(), skip_url_asserts=True, keepalive_timeout=0.5) as server:
        assert str(server.make_url("/a")) == f"http://127.0.0.1:{server.port}/a"
        assert server.handler.limits.keepalive_timeout == 0.5


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
async def test_test_server_on_ipv6(squall_client: SquallClient) -> None:
    client = await squall_client(make_app(), server_kwargs={"host": "::1"})
    assert str(client.make_url("/echo")).startswith("http://[::1]:")
    assert (await client.get("/echo")).status == 200


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("openssl is needed to make a certificate")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_test_server_over_tls(
    squall_client: SquallClient, squall_server: SquallServer, tls_context: ssl.SSLContext
) -> None:
    server = await squall_server(make_app(), ssl=tls_context)
    assert server.scheme == "https"
    client = await squall_client(server)
    resp = await client.get("/echo", ssl=False)
    assert resp.status == 200
    assert resp.url.scheme == "https"


# -- RawTestServer ----------------------------------------------------------------------


async def _raw_handler(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(text=f"{request.method} {request.path_qs} {dict(request.match_info)}")


async def test_raw_server_takes_every_method_and_path(
    squall_raw_server: SquallRawServer, squall_client: SquallClient
) -> None:
    server = await squall_raw_server(_raw_handler)
    client = await squall_client(server)
    assert client.app is None
    for method, path in [("GET", "/"), ("POST", "/a/b?c=d"), ("DELETE", "/x%20y")]:
        resp = await client.request(method, path)
        assert resp.status == 200
        assert await resp.text() == f"{method} {path} {{}}"


async def test_raw_test_server_context_manager() -> None:
    async with RawTestServer(_raw_handler) as server, TestClient(server) as client:
        assert await (await client.get("/z")).text() == "GET /z {}"


# -- fixtures and the plugin ---------------------------------------------------------------


def test_unused_port_fixture(squall_unused_port: Any) -> None:
    port = squall_unused_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_sync_test_with_the_loop(squall_loop: asyncio.AbstractEventLoop) -> None:
    assert not squall_loop.is_running() and not squall_loop.is_closed()

    async def running() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert squall_loop.run_until_complete(running()) is squall_loop


async def test_async_test_runs_on_squall_loop(squall_loop: asyncio.AbstractEventLoop) -> None:
    assert asyncio.get_running_loop() is squall_loop
    assert asyncio.current_task() is not None


@pytest.fixture
async def coroutine_fixture() -> str:
    return f"made on {id(asyncio.get_running_loop())}"


@pytest.fixture
async def generator_fixture() -> AsyncIterator[asyncio.AbstractEventLoop]:
    yield asyncio.get_running_loop()


async def test_async_fixtures_run_on_squall_loop(
    coroutine_fixture: str, generator_fixture: asyncio.AbstractEventLoop, squall_client: Any
) -> None:
    loop = asyncio.get_running_loop()
    assert coroutine_fixture == f"made on {id(loop)}"
    assert generator_fixture is loop


class TestClassFixtures:
    @pytest.fixture
    async def method_fixture(self) -> tuple[Any, asyncio.AbstractEventLoop]:
        return self, asyncio.get_running_loop()

    async def test_method_fixture(
        self, method_fixture: tuple[Any, asyncio.AbstractEventLoop], squall_loop: Any
    ) -> None:
        assert method_fixture == (self, squall_loop)


class TestLoopFactory:
    @pytest.fixture
    def squall_loop_factory(self) -> Any:
        return asyncio.SelectorEventLoop  # asyncio's own loop, as docs/testing.md shows

    async def test_runs_on_the_chosen_loop(self, squall_client: SquallClient) -> None:
        assert type(asyncio.get_running_loop()) is asyncio.SelectorEventLoop
        client = await client_for(squall_client, make_app())
        assert (await client.get("/echo")).status == 200


def test_loop_context() -> None:
    with loop_context() as loop:
        assert asyncio.get_event_loop() is loop

        async def pending() -> None:
            await asyncio.sleep(TIMEOUT)

        task = loop.create_task(pending())
    assert loop.is_closed() and task.cancelled()


# -- make_mocked_request --------------------------------------------------------------------

# Attributes that must be the same on aiohttp's mocked request and squall's.
COMPARED = (
    "method",
    "path",
    "raw_path",
    "path_qs",
    "query_string",
    "rel_url",
    "url",
    "scheme",
    "secure",
    "host",
    "remote",
    "version",
    "keep_alive",
    "content_type",
    "charset",
    "content_length",
    "can_read_body",
    "body_exists",
    "if_modified_since",
)

MOCKED_CASES: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("GET", "/", {"Host": "h"}, {}),
    ("get", "/a/b?x=1&x=2&y=%20z", {"Host": "example.com"}, {}),
    ("POST", "/p%2Fq", [("Host", "h"), ("Content-Type", "text/plain; charset=latin-1")], {}),
    ("GET", "/old", {"Host": "h"}, {"version": aiohttp.HttpVersion10}),
    ("GET", "/closing", {"Host": "h", "Content-Length": "0"}, {"closing": True}),
    ("GET", "/tls", {"Host": "h"}, {"sslcontext": ssl.create_default_context()}),
    ("GET", "/ims", {"Host": "h", "If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}, {}),
]


@pytest.mark.parametrize(("method", "path", "headers", "kwargs"), MOCKED_CASES)
def test_mocked_request_matches_aiohttp(
    method: str, path: str, headers: Any, kwargs: dict[str, Any]
) -> None:
    theirs = aiohttp.test_utils.make_mocked_request(method, path, headers, **kwargs)
    ours = make_mocked_request(method, path, headers, **kwargs)
    assert isinstance(ours, web.Request)
    for name in COMPARED:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert dict(ours.query) == dict(theirs.query)
    assert list(ours.query.items()) == list(theirs.query.items())
    assert list(ours.headers.items()) == list(theirs.headers.items())
    assert ours.raw_headers == theirs.raw_headers


def test_mocked_request_host_without_host_header() -> None:
    """Without Host, aiohttp 3.14 gives the local socket address (was socket.getfqdn())."""
    theirs = aiohttp.test_utils.make_mocked_request("GET", "/")
    assert make_mocked_request("GET", "/").host == theirs.host


def test_mocked_request_match_info_and_app() -> None:
    request = make_mocked_request("GET", "/u/7", match_info={"id": "7"})
    assert request.match_info == {"id": "7"}
    assert isinstance(request.app, web.Application)
    assert request.match_info.apps == (request.app,)
    app = make_app()
    request = make_mocked_request("GET", "/", app=app)
    assert request.app is app and request.config_dict[KEY] == "value"
    assert request.match_info == {}


async def test_mocked_request_body() -> None:
    request = make_mocked_request(
        "POST", "/", {"Content-Type": "application/json"}, payload=b'{"a": [1, 2]}'
    )
    assert request.can_read_body
    assert await request.json() == {"a": [1, 2]}
    stream = web.StreamReader(None)
    stream.feed_data(b"a=1&b=%20")
    stream.feed_eof()
    request = make_mocked_request(
        "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, payload=stream
    )
    assert dict(await request.post()) == {"a": "1", "b": " "}
    small = make_mocked_request("POST", "/", payload=b"x" * 11, client_max_size=10)
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await small.read()


async def test_mocked_request_responses_are_written_to_the_transport() -> None:
    request = make_mocked_request("GET", "/", {"Host": "h"})
    with pytest.deprecated_call():
        assert request.loop is asyncio.get_running_loop()
    resp = web.StreamResponse(headers={"X-Test": "1"})
    await resp.prepare(request)
    await resp.write(b"chunk")
    await resp.write_eof()
    written = bytes(request.transport.written)  # type: ignore[union-attr]
    assert written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-Test: 1\r\n" in written
    assert written.endswith(b"\r\n\r\n5\r\nchunk\r\n0\r\n\r\n")
    assert resp.prepared and resp.body_length == 5


async def test_mocked_request_calls_a_handler_with_middlewares() -> None:
    @web.middleware
    async def tag(request: web.Request, handler: Any) -> web.StreamResponse:
        resp = await handler(request)
        resp.headers["X-Tag"] = request.match_info["name"]
        return resp

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=f"hi {request.match_info['name']}")

    request = make_mocked_request("GET", "/hi/bob", match_info={"name": "bob"})
    resp = await tag(request, handler)
    assert resp.text == "hi bob" and resp.headers["X-Tag"] == "bob"


def test_mocked_request_outside_a_loop() -> None:
    request = make_mocked_request("GET", "/")
    with pytest.raises(RuntimeError), pytest.deprecated_call():
        request.loop  # noqa: B018
    loop = asyncio.new_event_loop()
    try:
        with pytest.deprecated_call():
            assert make_mocked_request("GET", "/", loop=loop).loop is loop
    finally:
        loop.close()


def test_aiohttp_is_imported_only_for_the_client() -> None:
    code = (
        "import sys, squall.testing, squall.testing.pytest_plugin\n"
        "from squall.testing import TestServer, make_mocked_request\n"
        "make_mocked_request('GET', '/')\n"
        "assert 'aiohttp' not in sys.modules\n"
        "from squall.testing import TestClient\n"
        "assert 'aiohttp' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- the plugin seen from outside: a pytest run of its own ------------------------------------


def _doc_example() -> str:
    match = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert match is not None
    return match.group(1)


SCENARIOS = """
import asyncio

import pytest

async def test_plain_async_is_left_alone():
    pass

async def test_async_with_the_loop(squall_loop):
    pass

@pytest.mark.usefixtures("squall_loop")
async def test_async_marked_with_the_loop():
    pass

def test_sync_is_untouched():
    pass

EVENTS = []

@pytest.fixture
async def resource():
    EVENTS.append("setup")
    yield asyncio.get_running_loop()
    await asyncio.sleep(0)  # the loop is still open during teardown
    EVENTS.append("teardown")

async def test_async_generator_fixture(resource, squall_loop):
    assert resource is squall_loop

def test_async_generator_fixture_was_torn_down():
    assert EVENTS == ["setup", "teardown"]

@pytest.fixture
async def yields_twice():
    yield 1
    yield 2

async def test_fixture_yielding_twice(yields_twice, squall_loop):
    pass
"""


def _pytest(cwd: Path, *args: str) -> tuple[dict[str, str], str]:
    """Run pytest in ``cwd``: each test's outcome, and the output."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.findall(r"^(PASSED|FAILED|ERROR) \S+::(\w+)", result.stdout, re.M)
    # A test whose teardown fails is listed as PASSED, then as ERROR: the later line wins.
    return {test: outcome for outcome, test in found}, result.stdout


def test_the_plugin_in_a_pytest_run_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "test_doc_example.py").write_text(_doc_example())
    (tmp_path / "test_scenarios.py").write_text(textwrap.dedent(SCENARIOS))
    outcomes, output = _pytest(tmp_path)
    assert outcomes == {
        "test_hello": "PASSED",
        "test_hello_without_a_server": "PASSED",
        "test_unused_port": "PASSED",
        "test_plain_async_is_left_alone": "FAILED",  # pytest's "not natively supported"
        "test_async_with_the_loop": "PASSED",
        "test_async_marked_with_the_loop": "PASSED",
        "test_sync_is_untouched": "PASSED",
        "test_async_generator_fixture": "PASSED",
        "test_async_generator_fixture_was_torn_down": "PASSED",
        "test_fixture_yielding_twice": "ERROR",  # at teardown, as pytest's own fixtures
    }
    assert "yields_twice: the fixture yielded more than once" in output
    assert "async def functions are not natively supported" in output
    # -p no:squall: the fixtures are gone.
    outcomes, output = _pytest(tmp_path, "-p", "no:squall", "test_doc_example.py")
    assert "fixture 'squall_loop' not found" in output
    assert outcomes == {
        "test_hello": "ERROR",
        "test_hello_without_a_server": "ERROR",
        "test_unused_port": "ERROR",
    }


AIOHTTP_SUITE = """
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request


async def handler(request):
    body = await request.text()
    return web.json_response({"q": request.query.get("q"), "body": body, **request.match_info})


async def raw_handler(request):
    return web.Response(text=request.method)


def make_app():
    app = web.Application()
    app.router.add_route("*", "/items/{id}", handler)
    return app


async def test_client(aiohttp_client):
    client = await aiohttp_client(make_app())
    async with client.get("/items/1?q=a") as resp:
        assert resp.status == 200
        assert await resp.json() == {"q": "a", "body": "", "id": "1"}
    resp = await client.post("/items/2", data="x")
    assert (await resp.json())["body"] == "x"
    assert (await client.get("/nowhere")).status == 404


async def test_server_and_raw_server(aiohttp_server, aiohttp_raw_server, aiohttp_client):
    client = await aiohttp_client(await aiohttp_server(make_app()))
    assert (await client.delete("/items/3")).status == 200
    raw = await aiohttp_client(await aiohttp_raw_server(raw_handler))
    assert await (await raw.patch("/anything")).text() == "PATCH"


async def test_mocked_request(loop):
    request = make_mocked_request("PUT", "/items/4?q=b", match_info={"id": "4"})
    resp = await handler(request)
    assert resp.status == 200 and resp.body == b'{"q": "b", "body": "", "id": "4"}'


async def test_context_managers(aiohttp_unused_port):
    port = aiohttp_unused_port()
    async with TestServer(make_app(), port=port) as server, TestClient(server) as client:
        assert client.port == port
        assert (await client.get("/items/5")).status == 200
"""

# docs/testing.md's table, as replacements of names.
RENAMES = [
    ("from aiohttp import web", "from squall import web"),
    ("aiohttp.test_utils", "squall.testing"),
    ("aiohttp_", "squall_"),
    ("(loop)", "(squall_loop)"),
]


def test_an_aiohttp_suite_moves_over(tmp_path: Path) -> None:
    """The same tests pass under aiohttp's plugin and, names replaced, under squall's."""
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    theirs.mkdir()
    ours.mkdir()
    (theirs / "test_suite.py").write_text(AIOHTTP_SUITE)
    migrated = AIOHTTP_SUITE
    for old, new in RENAMES:
        migrated = migrated.replace(old, new)
    assert "aiohttp" not in migrated
    (ours / "test_suite.py").write_text(migrated)
    expected = {
        name: "PASSED"
        for name in (
            "test_client",
            "test_server_and_raw_server",
            "test_mocked_request",
            "test_context_managers",
        )
    }
    assert _pytest(theirs, "-p", "no:squall", "-p", "aiohttp.pytest_plugin")[0] == expected
    assert _pytest(ours)[0] == expected
